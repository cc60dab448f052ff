package selfimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/mirror/selfimage"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

var (
	staticOnce sync.Once
	staticBin  string
	staticErr  error
)

// staticBinary builds a small statically linked Go program once: the image
// builder cares only that it is a static ELF, and building berth itself is
// the job of cmd/berth's end-to-end test.
func staticBinary(t *testing.T) string {
	t.Helper()
	staticOnce.Do(func() {
		dir, err := os.MkdirTemp("", "selfimage-test-")
		if err != nil {
			staticErr = err
			return
		}
		src := "package main\n\nfunc main() { println(\"berth stand-in\") }\n"
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			staticErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module standin\n\ngo 1.22\n"), 0o644); err != nil {
			staticErr = err
			return
		}
		staticBin = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", staticBin, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = &buildError{err, out}
		}
	})
	if staticErr != nil {
		t.Fatalf("build a static stand-in binary: %v", staticErr)
	}
	return staticBin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

func TestMain(m *testing.M) {
	code := m.Run()
	if staticBin != "" {
		os.RemoveAll(filepath.Dir(staticBin))
	}
	os.Exit(code)
}

func digestOf(t *testing.T, cfg selfimage.Config) v1.Hash {
	t.Helper()
	img, err := selfimage.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildIsReproducible(t *testing.T) {
	bin := staticBinary(t)
	base := selfimage.Config{Binary: bin, Version: "1.2.3", Revision: "0123456789abcdef0123456789abcdef01234567", Created: time.Unix(1700000000, 0)}
	first := digestOf(t, base)

	// A copy of the binary elsewhere, with another mtime and mode, is the
	// same input: only its bytes count.
	other := filepath.Join(t.TempDir(), "elsewhere")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	same := base
	same.Binary = other
	same.Created = base.Created.Add(999 * time.Millisecond) // truncated to the second
	if got := digestOf(t, same); got != first {
		t.Errorf("second build %s, first %s", got, first)
	}

	// Layouts written twice hold the same bytes.
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		img, err := selfimage.Build(base)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := selfimage.WriteLayout(dir, img, "1.2.3"); err != nil || d != first {
			t.Fatalf("WriteLayout = %s, %v; want %s", d, err, first)
		}
	}
	if a, b := treeOf(t, dirs[0]), treeOf(t, dirs[1]); !cmp.Equal(a, b) {
		t.Errorf("two layouts differ: %s", cmp.Diff(a, b))
	}

	for name, change := range map[string]func(*selfimage.Config){
		"created":  func(c *selfimage.Config) { c.Created = c.Created.Add(time.Second) },
		"version":  func(c *selfimage.Config) { c.Version = "1.2.4" },
		"revision": func(c *selfimage.Config) { c.Revision = "" },
		"licenses": func(c *selfimage.Config) { c.Licenses = "Apache-2.0" },
	} {
		c := base
		change(&c)
		if digestOf(t, c) == first {
			t.Errorf("changing %s left the digest at %s", name, first)
		}
	}
}

// treeOf maps every file under dir to its contents.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestImageShape(t *testing.T) {
	bin := staticBinary(t)
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	img, err := selfimage.Build(selfimage.Config{Binary: bin, Version: "1.2.3", Revision: "abc123", Licenses: "Apache-2.0", Created: created, CABundle: ca})
	if err != nil {
		t.Fatal(err)
	}

	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("manifest %s, config %s: want the OCI media types", m.MediaType, m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("layers %+v: want one OCI gzip layer", m.Layers)
	}
	wantLabels := map[string]string{
		selfimage.LabelTitle:    "berth",
		selfimage.LabelVersion:  "1.2.3",
		selfimage.LabelRevision: "abc123",
		selfimage.LabelSource:   selfimage.DefaultSource,
		selfimage.LabelLicenses: "Apache-2.0",
	}
	wantAnns := map[string]string{selfimage.LabelCreated: "2025-06-01T12:00:00Z"}
	for k, v := range wantLabels {
		wantAnns[k] = v
	}
	if diff := cmp.Diff(wantAnns, m.Annotations); diff != "" {
		t.Errorf("manifest annotations (-want +got):\n%s", diff)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := v1.Config{
		User:         "65532:65532",
		Entrypoint:   []string{"/usr/bin/berth"},
		Cmd:          []string{"serve", "--root", "/var/lib/berth", "--addr", ":5000"},
		WorkingDir:   "/var/lib/berth",
		Env:          []string{"PATH=/usr/bin", "HOME=/var/lib/berth"},
		ExposedPorts: map[string]struct{}{"5000/tcp": {}},
		Volumes:      map[string]struct{}{"/var/lib/berth": {}},
		Labels:       wantLabels,
		StopSignal:   "SIGTERM",
	}
	if diff := cmp.Diff(wantCfg, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Time.Equal(created) {
		t.Errorf("config os %q arch %q created %s", cf.OS, cf.Architecture, cf.Created.Time)
	}
	if len(cf.History) != 1 || !cf.History[0].Created.Time.Equal(created) {
		t.Errorf("history %+v", cf.History)
	}

	layer, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	gz, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	// RFC 1952: bytes 4-7 are MTIME, byte 9 is OS.
	if !bytes.Equal(gz[4:8], []byte{0, 0, 0, 0}) || gz[9] != 255 || gz[3] != 0 {
		t.Errorf("gzip header % x: want no mtime, no name, OS unknown", gz[:10])
	}

	type file struct {
		Name     string
		Type     byte
		Mode     int64
		UID, GID int
		Body     string
	}
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nberth:x:65532:65532:berth:/var/lib/berth:/sbin/nologin\n"
	group := "root:x:0:\nberth:x:65532:\n"
	caBody, _ := os.ReadFile(ca)
	want := []file{
		{"etc/", tar.TypeDir, 0o755, 0, 0, ""},
		{"etc/group", tar.TypeReg, 0o644, 0, 0, group},
		{"etc/passwd", tar.TypeReg, 0o644, 0, 0, passwd},
		{"etc/ssl/", tar.TypeDir, 0o755, 0, 0, ""},
		{"etc/ssl/certs/", tar.TypeDir, 0o755, 0, 0, ""},
		{"etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644, 0, 0, string(caBody)},
		{"tmp/", tar.TypeDir, 0o1777, 0, 0, ""},
		{"usr/", tar.TypeDir, 0o755, 0, 0, ""},
		{"usr/bin/", tar.TypeDir, 0o755, 0, 0, ""},
		{"usr/bin/berth", tar.TypeReg, 0o755, 0, 0, string(binBytes)},
		{"var/", tar.TypeDir, 0o755, 0, 0, ""},
		{"var/lib/", tar.TypeDir, 0o755, 0, 0, ""},
		{"var/lib/berth/", tar.TypeDir, 0o755, 65532, 65532, ""},
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var got []file
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(created) || h.Format != tar.FormatUSTAR || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %s, format %s, owner names %q/%q", h.Name, h.ModTime, h.Format, h.Uname, h.Gname)
		}
		body, _ := io.ReadAll(tr)
		got = append(got, file{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, string(body)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		// Keep the binary out of the diff.
		t.Errorf("layer entries (-want +got):\n%s", strings.ReplaceAll(diff, string(binBytes), "<binary>"))
	}
}

func TestBuildRefuses(t *testing.T) {
	dynamic := "/bin/ls" // linked against libc on every Linux distribution we run on
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := staticBinary(t)
	for _, tc := range []struct {
		name string
		cfg  selfimage.Config
		want string
	}{
		{"no binary", selfimage.Config{}, "no berth binary"},
		{"missing binary", selfimage.Config{Binary: filepath.Join(t.TempDir(), "nope")}, "no such file"},
		{"not ELF", selfimage.Config{Binary: notELF}, "not an ELF executable"},
		{"dynamically linked", selfimage.Config{Binary: dynamic}, "dynamically linked"},
		{"other arch", selfimage.Config{Binary: bin, Arch: "mips"}, "not mips"},
		{"missing CA bundle", selfimage.Config{Binary: bin, CABundle: filepath.Join(t.TempDir(), "nope.pem")}, "CA bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := selfimage.Build(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteLayoutReplacesByName(t *testing.T) {
	bin := staticBinary(t)
	dir := t.TempDir()
	var digests []v1.Hash
	for _, ver := range []string{"1.0.0", "1.0.0", "2.0.0"} {
		img, err := selfimage.Build(selfimage.Config{Binary: bin, Version: ver, Revision: ver})
		if err != nil {
			t.Fatal(err)
		}
		d, err := selfimage.WriteLayout(dir, img, ver)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	got := map[string]v1.Hash{}
	for _, d := range idx.Manifests {
		got[d.Annotations["org.opencontainers.image.ref.name"]] = d.Digest
	}
	want := map[string]v1.Hash{"1.0.0": digests[0], "2.0.0": digests[2]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("index.json names (-want +got):\n%s", diff)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Image(digests[2]); err != nil {
		t.Errorf("layout cannot read back %s: %v", digests[2], err)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	for _, tc := range []struct {
		val    string
		want   time.Time
		ok     bool
		hasErr bool
	}{
		{"", time.Time{}, false, false},
		{"0", time.Unix(0, 0).UTC(), true, false},
		{"1700000000", time.Unix(1700000000, 0).UTC(), true, false},
		{"-1", time.Time{}, false, true},
		{"2024-01-01", time.Time{}, false, true},
	} {
		got, ok, err := selfimage.SourceDateEpoch(func(string) string { return tc.val })
		if !got.Equal(tc.want) || ok != tc.ok || (err != nil) != tc.hasErr {
			t.Errorf("SOURCE_DATE_EPOCH=%q: %s, %v, %v", tc.val, got, ok, err)
		}
	}
}

func TestRevisionLabel(t *testing.T) {
	for _, tc := range []struct {
		rev  selfimage.Revision
		want string
	}{
		{selfimage.Revision{}, ""},
		{selfimage.Revision{Commit: "abc"}, "abc"},
		{selfimage.Revision{Commit: "abc", Dirty: true}, "abc-dirty"},
	} {
		if got := tc.rev.Label(); got != tc.want {
			t.Errorf("%+v.Label() = %q, want %q", tc.rev, got, tc.want)
		}
	}
}
