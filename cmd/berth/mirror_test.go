package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror/mirrortest"
)

func mustDigest(t *testing.T, ref string) string {
	t.Helper()
	d, err := mirrortest.HeadDigest(ref)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	return d
}

func TestMirrorImageCommand(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	d1, err := mirrortest.PushImage(src+"/app/one:v1", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := mirrortest.PushImage(src+"/app/two:v2", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mapping := filepath.Join(dir, "map.txt")
	os.WriteFile(mapping, []byte("# two images\n"+src+"/app/one:v1 "+dst+"/m/one\n"+src+"/app/two@"+d2+"="+dst+"/m/two:pinned\n"), 0o644)
	report := filepath.Join(dir, "report.json")

	tests := []struct {
		name  string
		args  []string
		check map[string]string // destination ref → digest
	}{
		{"pair", []string{"mirror", "image", src + "/app/one:v1", dst + "/pair/one", "--progress", "none"}, map[string]string{dst + "/pair/one:v1": d1}},
		{"mapping file with report", []string{"mirror", "image", "-f", mapping, "--report", report, "--progress", "lines"}, map[string]string{dst + "/m/one:v1": d1, dst + "/m/two:pinned": d2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runBerth(t, tc.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			for ref, want := range tc.check {
				if got := mustDigest(t, ref); got != want {
					t.Errorf("%s: %s, want %s", ref, got, want)
				}
				if !strings.Contains(out, want) {
					t.Errorf("stdout does not list %s:\n%s", want, out)
				}
			}
			if !strings.Contains(errOut, "mirror: ") || !strings.Contains(errOut, "MiB/s") {
				t.Errorf("no summary on stderr:\n%s", errOut)
			}
		})
	}
	var rep struct {
		Images  int
		Failed  int
		Results []struct {
			Source, Destination, Digest string
		}
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Images != 2 || rep.Failed != 0 || len(rep.Results) != 2 || rep.Results[1].Digest != d2 {
		t.Errorf("report: %s", raw)
	}
}

func TestMirrorImageFailureExitCode(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	if _, err := mirrortest.PushImage(src+"/app/ok:v1", 9); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mapping := filepath.Join(dir, "map.txt")
	os.WriteFile(mapping, []byte(src+"/app/ok:v1 "+dst+"/ok\n"+src+"/app/gone:v1 "+dst+"/gone\n"), 0o644)
	_, _, err := runBerth(t, "mirror", "image", "-f", mapping, "--progress", "none", "--retries", "1")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitImagesFailed {
		t.Fatalf("err = %v, want exit status %d", err, exitImagesFailed)
	}
	if !strings.Contains(err.Error(), "app/gone:v1") || strings.Contains(err.Error(), "app/ok:v1 ->") {
		t.Errorf("error should list exactly the failed image: %v", err)
	}
}

func TestMirrorUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("just-one-field\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mirror", "image", "a"}, "want SRC DST"},
		{[]string{"mirror", "image", "-f", bad}, "bad.txt:1"},
		{[]string{"mirror", "image", "--to-dir", dir, "--from-dir", dir, "x"}, "exclude each other"},
		{[]string{"mirror", "image", "a/b:1", "c/d", "--platform", "linux"}, "os/arch"},
		{[]string{"mirror", "release", "--from", "a/b:1"}, "--to"},
		{[]string{"mirror", "release", "--to", "a/b"}, "--from"},
		{[]string{"mirror", "image", "a/b:1", "c/d", "--authfile", filepath.Join(dir, "missing.json")}, "--authfile"},
	} {
		_, _, err := runBerth(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func TestMirrorReleaseCommand(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	other := mirrortest.StartRegistry(t)
	rel, err := mirrortest.PushRelease(context.Background(), src, mirrortest.ReleaseSpec{Version: "4.18.3", Components: 6, MultiArchEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()

	t.Run("dry-run copies nothing", func(t *testing.T) {
		out, _, err := runBerth(t, "mirror", "release", "--from", rel.Ref, "--to", dst+"/ocp/release", "--dry-run")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, " "+dst+"/ocp/release:4.18.3-x86_64"); n != 7 {
			t.Errorf("plan lists %d destinations, want 7:\n%s", n, out)
		}
		if !strings.Contains(out, "imageContentSources:") {
			t.Errorf("no install-config snippet:\n%s", out)
		}
		if _, err := mirrortest.HeadDigest(dst + "/ocp/release:4.18.3-x86_64"); err == nil {
			t.Error("--dry-run copied the release image")
		}
	})

	check := func(t *testing.T, repo string) {
		t.Helper()
		if got := mustDigest(t, repo+":4.18.3-x86_64"); got != rel.Digest {
			t.Errorf("release image %s, want %s", got, rel.Digest)
		}
		for _, c := range rel.Components {
			if got := mustDigest(t, repo+":4.18.3-x86_64-"+c.Name); got != c.Digest {
				t.Errorf("%s: %s, want %s", c.Name, got, c.Digest)
			}
		}
	}

	t.Run("registry to registry", func(t *testing.T) {
		mdir := filepath.Join(work, "manifests")
		out, errOut, err := runBerth(t, "mirror", "release", "--from", rel.Ref, "--to", dst+"/ocp/release", "--manifests-dir", mdir, "--progress", "none")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		check(t, dst+"/ocp/release")
		for _, s := range []string{"imageContentSources:", "source: " + src + "/openshift-release-dev/ocp-v4.0-art-dev", "- " + dst + "/ocp/release"} {
			if !strings.Contains(out, s) {
				t.Errorf("stdout lacks %q:\n%s", s, out)
			}
		}
		idms, err := os.ReadFile(filepath.Join(mdir, "idms.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(idms), "kind: ImageDigestMirrorSet") || !strings.Contains(string(idms), "source: "+src+"/openshift-release-dev/ocp-release") {
			t.Errorf("idms.yaml:\n%s", idms)
		}
		if _, err := os.Stat(filepath.Join(mdir, "icsp.yaml")); err != nil {
			t.Error(err)
		}
	})

	t.Run("through a directory", func(t *testing.T) {
		dir := filepath.Join(work, "usb")
		if _, errOut, err := runBerth(t, "mirror", "release", "--from", rel.Ref, "--to", "mirror.invalid/ocp/release", "--to-dir", dir, "--progress", "none"); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		out, errOut, err := runBerth(t, "mirror", "release", "--from-dir", dir, "--to", other+"/disconnected/release", "--manifests-dir", t.TempDir(), "--progress", "none")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		check(t, other+"/disconnected/release")
		if !strings.Contains(out, "source: "+src+"/openshift-release-dev/ocp-release") || !strings.Contains(out, other+"/disconnected/release") {
			t.Errorf("from-dir output does not map the original sources to the new mirror:\n%s", out)
		}
	})
}

// --to-dir with --archive-size, then --from-dir on the archives: the push
// happens only from a verified unpack; a missing archive is named and
// nothing is pushed.
func TestMirrorArchivesCommand(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	rel, err := mirrortest.PushRelease(context.Background(), src, mirrortest.ReleaseSpec{Version: "4.18.4", Components: 4, MultiArchEvery: 2, LayerSize: 40 << 10})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	layout, archives := filepath.Join(work, "bundle"), filepath.Join(work, "dvd")
	if _, errOut, err := runBerth(t, "mirror", "release", "--from", rel.Ref, "--to", "mirror.invalid/ocp/release", "--to-dir", layout,
		"--archive-size", "32KiB", "--archive-dir", archives, "--progress", "none"); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	} else if !strings.Contains(errOut, "packed") {
		t.Errorf("no packing summary:\n%s", errOut)
	}
	tars, _ := filepath.Glob(filepath.Join(archives, "berth-archive-*.tar"))
	if len(tars) < 3 {
		t.Fatalf("%d archives, want several", len(tars))
	}

	t.Run("missing archive pushes nothing", func(t *testing.T) {
		broken := filepath.Join(work, "broken")
		os.MkdirAll(broken, 0o755)
		for _, p := range append(tars[:1:1], append(tars[2:], filepath.Join(archives, "berth-archives.json"))...) {
			b, _ := os.ReadFile(p)
			os.WriteFile(filepath.Join(broken, filepath.Base(p)), b, 0o644)
		}
		_, _, err := runBerth(t, "mirror", "release", "--from-dir", broken, "--to", dst+"/broken/release", "--manifests-dir", t.TempDir(), "--progress", "none")
		if err == nil || !strings.Contains(err.Error(), filepath.Base(tars[1])) || !strings.Contains(err.Error(), "nothing was pushed") {
			t.Fatalf("err = %v, want it to name %s", err, filepath.Base(tars[1]))
		}
		if _, err := mirrortest.HeadDigest(dst + "/broken/release:4.18.4-x86_64"); err == nil {
			t.Error("the release image was pushed from an incomplete set")
		}
	})
	t.Run("from-dir on archives", func(t *testing.T) {
		out, errOut, err := runBerth(t, "mirror", "release", "--from-dir", archives, "--to", dst+"/ocp/release", "--manifests-dir", t.TempDir(), "--progress", "none")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if !strings.Contains(errOut, "verified as they are pushed") || !strings.Contains(out, "imageContentSources:") {
			t.Errorf("stderr:\n%s\nstdout:\n%s", errOut, out)
		}
		if got := mustDigest(t, dst+"/ocp/release:4.18.4-x86_64"); got != rel.Digest {
			t.Errorf("release image %s, want %s", got, rel.Digest)
		}
		for _, c := range rel.Components {
			if got := mustDigest(t, dst+"/ocp/release:4.18.4-x86_64-"+c.Name); got != c.Digest {
				t.Errorf("%s: %s, want %s", c.Name, got, c.Digest)
			}
		}
	})
	t.Run("unpack command", func(t *testing.T) {
		into := filepath.Join(work, "unpacked")
		out, _, err := runBerth(t, "mirror", "unpack", "--from-dir", archives, "--to-dir", into)
		if err != nil || !strings.Contains(out, "every digest verified") {
			t.Fatalf("%v: %s", err, out)
		}
		if _, err := os.Stat(filepath.Join(into, "index.json")); err != nil {
			t.Error(err)
		}
	})
}

func TestMirrorArchiveUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mirror", "image", "a/b:1", "c/d", "--archive-size", "1GiB"}, "--to-dir"},
		{[]string{"mirror", "image", "--to-dir", dir, "a/b:1", "--archive-size", "lots"}, "700MiB"},
		{[]string{"mirror", "image", "--to-dir", dir, "a/b:1", "--archive-size", "1000"}, "16KiB"},
		{[]string{"mirror", "image", "--to-dir", dir, "a/b:1", "--archive-dir", dir}, "--archive-size"},
		{[]string{"mirror", "unpack", "--from-dir", dir, "--to-dir", dir}, "berth-archives.json"},
	} {
		_, _, err := runBerth(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

// berth mirror state --registry / -f prints the same JSON as --from-dir,
// and --since with it keeps what the registry has out of the directory.
func TestMirrorStateRegistryCommand(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	d1, err := mirrortest.PushImage(src+"/app/one:v1", 31, 32)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mirrortest.PushImage(src+"/app/one:v2", 31, 33); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	mapping := filepath.Join(work, "map.txt")
	os.WriteFile(mapping, []byte(src+"/app/one:v1 "+dst+"/m/one\n"), 0o644)
	if _, errOut, err := runBerth(t, "mirror", "image", "-f", mapping, "--progress", "none"); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	// The same content in a directory gives the same state.
	dir := filepath.Join(work, "dir")
	if _, errOut, err := runBerth(t, "mirror", "image", "--to-dir", dir, src+"/app/one:v1", "--progress", "none"); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	fromDir, _, err := runBerth(t, "mirror", "state", "--from-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"mirror", "state", "--registry", dst + "/m/one"},
		{"mirror", "state", "--registry", dst + "/m/one:v1", "--registry", dst + "/m/absent"},
		{"mirror", "state", "-f", mapping},
	} {
		out, errOut, err := runBerth(t, args...)
		if err != nil {
			t.Fatalf("%q: %v\n%s", args, err, errOut)
		}
		if out != fromDir || !strings.Contains(out, d1) {
			t.Errorf("%q:\n%s\nwant the directory's state:\n%s", args, out, fromDir)
		}
	}
	state := filepath.Join(work, "state.json")
	os.WriteFile(state, []byte(fromDir), 0o644)
	next := filepath.Join(work, "next")
	if _, errOut, err := runBerth(t, "mirror", "image", "--to-dir", next, src+"/app/one:v2", "--since", state, "--progress", "none"); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	nextState, _, err := runBerth(t, "mirror", "state", "--from-dir", next)
	if err != nil {
		t.Fatal(err)
	}
	var a, b struct{ Blobs []string }
	json.Unmarshal([]byte(fromDir), &a)
	json.Unmarshal([]byte(nextState), &b)
	for _, d := range b.Blobs {
		for _, old := range a.Blobs {
			if d == old {
				t.Errorf("%s shipped again", d)
			}
		}
	}
	if _, _, err := runBerth(t, "mirror", "state", "--registry", "not a ref"); err == nil || !strings.Contains(err.Error(), "HOST[:PORT]/REPO") {
		t.Errorf("bad --registry: %v", err)
	}
}

// Images copied by tag get an ImageTagMirrorSet, images by digest stay in
// IDMS/ICSP, and berth policy check accepts the lot.
func TestMirrorImageTagMirrorSet(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	dst := mirrortest.StartRegistry(t)
	if _, err := mirrortest.PushImage(src+"/app/tagged:v1", 41); err != nil {
		t.Fatal(err)
	}
	d2, err := mirrortest.PushImage(src+"/app/pinned:v1", 42)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mirrortest.PushImage(src+"/app/renamed:v1", 43); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	mapping := filepath.Join(work, "map.txt")
	os.WriteFile(mapping, []byte(src+"/app/tagged:v1 "+dst+"/m/tagged\n"+src+"/app/pinned@"+d2+" "+dst+"/m/pinned\n"+src+"/app/renamed:v1 "+dst+"/m/renamed:other\n"), 0o644)

	check := func(t *testing.T, mdir string) {
		t.Helper()
		itms, err := os.ReadFile(filepath.Join(mdir, "itms.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		idms, err := os.ReadFile(filepath.Join(mdir, "idms.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			doc, want string
			present   bool
		}{
			{string(itms), "kind: ImageTagMirrorSet", true},
			{string(itms), "source: " + src + "/app/tagged", true},
			{string(itms), "source: " + src + "/app/pinned", false},
			{string(itms), "source: " + src + "/app/renamed", false},
			{string(idms), "source: " + src + "/app/pinned", true},
			{string(idms), "source: " + src + "/app/tagged", false},
		} {
			if strings.Contains(c.doc, c.want) != c.present {
				t.Errorf("%q present = %v, want %v in:\n%s", c.want, !c.present, c.present, c.doc)
			}
		}
		out, errOut, err := runBerth(t, "policy", "check", mdir)
		if err != nil || !strings.Contains(out, "ok") {
			t.Errorf("policy check %s: %v\n%s%s", mdir, err, out, errOut)
		}
	}
	t.Run("registry to registry", func(t *testing.T) {
		mdir := filepath.Join(work, "manifests")
		_, errOut, err := runBerth(t, "mirror", "image", "-f", mapping, "--manifests-dir", mdir, "--progress", "none")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if !strings.Contains(errOut, "no ImageTagMirrorSet entry") {
			t.Errorf("no warning for the renamed tag:\n%s", errOut)
		}
		check(t, mdir)
	})
	t.Run("from a directory", func(t *testing.T) {
		dir := filepath.Join(work, "dir")
		if _, errOut, err := runBerth(t, "mirror", "image", "--to-dir", dir, src+"/app/tagged:v1", src+"/app/pinned@"+d2, "--progress", "none"); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		other := mirrortest.StartRegistry(t)
		mdir := filepath.Join(work, "manifests2")
		if _, errOut, err := runBerth(t, "mirror", "image", "--from-dir", dir, other+"/m", "--manifests-dir", mdir, "--progress", "none"); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		itms, _ := os.ReadFile(filepath.Join(mdir, "itms.yaml"))
		if !strings.Contains(string(itms), "- "+other+"/m/app/tagged") {
			t.Errorf("itms.yaml does not point at the disconnected registry:\n%s", itms)
		}
		out, _, err := runBerth(t, "policy", "check", mdir)
		if err != nil || !strings.Contains(out, "ok") {
			t.Errorf("policy check: %v\n%s", err, out)
		}
	})
	if _, _, err := runBerth(t, "mirror", "image", "--to-dir", work, "a/b:1", "--manifests-dir", work); err == nil || !strings.Contains(err.Error(), "--manifests-dir") {
		t.Errorf("--manifests-dir with --to-dir: %v", err)
	}
}
