package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// TestImageBuildRunsInPodman builds Berth's image twice from this checkout
// with `berth image build` (same digest), pushes it into an in-process berth
// serve, runs it with podman, and pushes and pulls an image through the
// containerized registry with crane.
func TestImageBuildRunsInPodman(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the podman run needs root (rootless podman needs a user namespace setup this test does not make)")
	}
	podmanBin := testpeer.Need(t, "podman")
	testpeer.Need(t, "runc")
	craneBin := testpeer.Need(t, "crane")
	testpeer.Need(t, "go")

	// The commit, not the work tree: two builds of one commit, each from
	// its own copy in its own directory (so -trimpath is tested too), with
	// SOURCE_DATE_EPOCH at the commit time.
	checkout, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "-C", checkout, "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		t.Fatalf("git log: %v", err)
	}
	commit, commitTime, _ := strings.Cut(strings.TrimSpace(string(head)), " ")
	t.Setenv("SOURCE_DATE_EPOCH", commitTime)
	snapshot := func(t *testing.T) string {
		t.Helper()
		dir := t.TempDir()
		out, err := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", checkout, commit, dir).CombinedOutput()
		if err != nil {
			t.Fatalf("git archive %s: %v\n%s", commit, err, out)
		}
		return dir
	}

	outer := servertest.Start(t, servertest.Options{})
	id := randomHex(t, 6)
	const ver = "0.0.0-e2e"
	repo := outer + "/berth/berth"
	tag := repo + ":" + id

	// Two builds, the first one pushed.
	var digests []string
	for i, args := range [][]string{
		{"--layout", filepath.Join(t.TempDir(), "one"), "--push", tag, "--insecure"},
		{"--layout", filepath.Join(t.TempDir(), "two")},
	} {
		start := time.Now()
		stdout, stderr, err := runBerth(t, append([]string{"image", "build", "--source", snapshot(t), "--version", ver, "--revision", commit}, args...)...)
		if err != nil {
			t.Fatalf("image build %d: %v\n%s%s", i+1, err, stdout, stderr)
		}
		t.Logf("build %d in %s: %s%s", i+1, time.Since(start).Round(100*time.Millisecond), stdout, stderr)
		f := strings.Fields(stdout)
		if len(f) < 2 || f[0] != "image" || !strings.HasPrefix(f[1], "sha256:") {
			t.Fatalf("image build %d printed %q", i+1, stdout)
		}
		digests = append(digests, f[1])
		if i == 0 && !strings.Contains(stdout, "pushed "+tag+" ("+f[1]+")") {
			t.Errorf("image build did not report the push: %q", stdout)
		}
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds of the same source: %s and %s", digests[0], digests[1])
	}
	digest := digests[0]

	podman := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := exec.Command(podmanBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	crane := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := exec.Command(craneBin, append(args, "--insecure")...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return strings.TrimSpace(string(out))
	}

	byDigest := repo + "@" + digest
	t.Cleanup(func() { _ = exec.Command(podmanBin, "rmi", "--force", "--ignore", byDigest).Run() })
	podman(t, "pull", "--quiet", "--tls-verify=false", byDigest)
	if got := podman(t, "image", "inspect", "--format", "{{.Digest}}", byDigest); got != digest {
		t.Errorf("podman pulled digest %s, want %s", got, digest)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version": ver,
		"org.opencontainers.image.title":   "berth",
		"org.opencontainers.image.source":  "https://github.com/berth-registry/berth",
	} {
		if got := podman(t, "image", "inspect", "--format", `{{index .Labels "`+k+`"}}`, byDigest); got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if rev := podman(t, "image", "inspect", "--format", `{{index .Labels "org.opencontainers.image.revision"}}`, byDigest); rev != commit {
		t.Errorf("revision label %q, want %s", rev, commit)
	}
	secs, _ := strconv.ParseInt(commitTime, 10, 64)
	if got := podman(t, "image", "inspect", "--format", "{{.Created.Unix}}", byDigest); got != commitTime {
		t.Errorf("image created at %s, want the commit time %s (%s)", got, commitTime, time.Unix(secs, 0).UTC())
	}

	runFlags := []string{"--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	// The version linked into the binary, through a command override.
	if got := podman(t, append(append([]string{"run", "--rm"}, runFlags...), byDigest, "version")...); got != "berth "+ver+" ("+commit+")" {
		t.Errorf("berth version in the container = %q, want berth %s (REVISION)", got, ver)
	}

	inner := testpeer.FreeAddr(t)
	cid := podman(t, append(append([]string{"run", "-d"}, runFlags...), "-p", inner+":5000", byDigest)...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(podmanBin, "logs", cid).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		_ = exec.Command(podmanBin, "rm", "--force", "--volumes", cid).Run()
	})
	waitHealthy(t, "http://"+inner+"/healthz", 60*time.Second)
	if got := podman(t, "inspect", "--format", "{{.Config.User}}", cid); got != "65532:65532" {
		t.Errorf("container user %q, want 65532:65532", got)
	}

	// An image of random bytes, pushed with crane and pulled back.
	payload := []byte("pushed through berth in a container, " + id + "\n")
	layerTar := filepath.Join(t.TempDir(), "layer.tar")
	writeTar(t, layerTar, "payload.txt", payload)
	payloadRef := inner + "/e2e/payload:" + id
	crane(t, "append", "--oci-empty-base", "-f", layerTar, "-t", payloadRef)
	pushed := crane(t, "digest", payloadRef)
	pulled := filepath.Join(t.TempDir(), "pulled")
	crane(t, "pull", "--format", "oci", payloadRef, pulled)
	if got := layoutDigest(t, pulled); got != pushed {
		t.Errorf("pulled back %s, pushed %s", got, pushed)
	}
	exported := crane(t, "export", payloadRef, "-")
	if !strings.Contains(exported, string(payload)) {
		t.Errorf("the pulled image lacks payload.txt's bytes")
	}

	// Berth's own image, from the outer registry into the containerized one.
	crane(t, "copy", byDigest, inner+"/berth/berth:"+id)
	if got := crane(t, "digest", inner+"/berth/berth:"+id); got != digest {
		t.Errorf("berth image in the containerized registry: %s, want %s", got, digest)
	}

	// What the registry wrote to its volume belongs to the non-root user.
	src := podman(t, "inspect", "--format", `{{range .Mounts}}{{if eq .Destination "/var/lib/berth"}}{{.Source}}{{end}}{{end}}`, cid)
	if src == "" {
		t.Fatal("the container has no volume at /var/lib/berth")
	}
	files := 0
	err = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 65532 || st.Gid != 65532 {
			t.Errorf("%s is owned by %d:%d, want 65532:65532", p, st.Uid, st.Gid)
		}
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Errorf("the volume holds %d entries: the registry did not store there", files)
	}

	// SIGTERM drains and exits cleanly.
	podman(t, "stop", "--time", "20", cid)
	if code := podman(t, "inspect", "--format", "{{.State.ExitCode}}", cid); code != "0" {
		t.Errorf("berth serve exited with %s after SIGTERM", code)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitHealthy polls url until it answers 200.
func waitHealthy(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = &statusError{resp.Status}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within %s: %v", url, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type statusError struct{ status string }

func (e *statusError) Error() string { return e.status }

func writeTar(t *testing.T, path, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// layoutDigest is the digest of the one image in an OCI layout.
func layoutDigest(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")))
	if err != nil {
		t.Fatalf("the pulled manifest's blob: %v", err)
	}
	if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != idx.Manifests[0].Digest {
		t.Fatalf("the pulled manifest does not hash to %s", idx.Manifests[0].Digest)
	}
	return idx.Manifests[0].Digest
}
