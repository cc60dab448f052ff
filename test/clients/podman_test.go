package clients_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestPodman builds an image FROM scratch with podman, pushes it, removes
// it locally and pulls it back, by tag and by digest. podman runs as root
// with its default storage driver.
func TestPodman(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the podman round trip runs as root (rootless podman needs a user namespace setup this test does not make)")
	}
	eachTarget(t, false, func(t *testing.T, host string) {
		podman := func(t *testing.T, args ...string) string {
			t.Helper()
			return strings.TrimSpace(run(t, nil, "podman", args...))
		}
		id := strings.ToLower(randomTag())
		name := host + "/podman/" + id + ":v1"
		t.Cleanup(func() { _, _ = runErr(t, nil, "podman", "rmi", "--force", "--ignore", name) })

		payload := []byte("built by podman for " + id + "\n")
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "payload.txt"), payload, 0o644); err != nil {
			t.Fatal(err)
		}
		containerfile := "FROM scratch\nCOPY payload.txt /payload.txt\nLABEL org.example.run=" + id + "\n"
		if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		podman(t, "build", "--quiet", "--tag", name, "--file", filepath.Join(dir, "Containerfile"), dir)

		digestFile := filepath.Join(t.TempDir(), "digest")
		podman(t, "push", "--tls-verify=false", "--digestfile", digestFile, name)
		b, err := os.ReadFile(digestFile)
		if err != nil {
			t.Fatal(err)
		}
		pushed, err := v1.NewHash(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("digest file %q: %v", b, err)
		}
		wantDigest(t, host, "podman/"+id, "v1", pushed)
		wantPayload(t, host, "podman/"+id, pushed.String(), "payload.txt", payload)

		podman(t, "rmi", name)
		if _, err := runErr(t, nil, "podman", "image", "exists", name); err == nil {
			t.Fatalf("%s still present after rmi", name)
		}
		podman(t, "pull", "--quiet", "--tls-verify=false", name)
		if got := podman(t, "image", "inspect", "--format", "{{.Digest}}", name); got != pushed.String() {
			t.Errorf("pulled image digest %s, want %s", got, pushed)
		}
		var repoDigests []string
		if err := json.Unmarshal([]byte(podman(t, "image", "inspect", "--format", "{{json .RepoDigests}}", name)), &repoDigests); err != nil {
			t.Fatal(err)
		}
		byDigest := host + "/podman/" + id + "@" + pushed.String()
		if !slices.Contains(repoDigests, byDigest) {
			t.Errorf("RepoDigests %q lack %s", repoDigests, byDigest)
		}
		if got := podman(t, "image", "inspect", "--format", `{{index .Labels "org.example.run"}}`, name); got != id {
			t.Errorf("label after pull = %q, want %q", got, id)
		}

		podman(t, "rmi", name)
		podman(t, "pull", "--quiet", "--tls-verify=false", byDigest)
		t.Cleanup(func() { _, _ = runErr(t, nil, "podman", "rmi", "--force", "--ignore", byDigest) })
		if got := podman(t, "image", "inspect", "--format", "{{.Digest}}", byDigest); got != pushed.String() {
			t.Errorf("image pulled by digest has digest %s, want %s", got, pushed)
		}
	})
}

// wantPayload reads the image's single layer straight from the registry and
// requires file to hold want.
func wantPayload(t *testing.T, host, repo, ref, file string, want []byte) {
	t.Helper()
	raw, _ := registryManifest(t, host, repo, ref)
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("manifest has %d layers, want 1", len(m.Layers))
	}
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/blobs/" + m.Layers[0].Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	blob, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(blob)); got != m.Layers[0].Digest {
		t.Fatalf("layer %s reads back as %s", m.Layers[0].Digest, got)
	}
	var r io.Reader = bytes.NewReader(blob)
	if strings.HasSuffix(string(m.Layers[0].MediaType), "gzip") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("layer has no %s: %v", file, err)
		}
		if strings.TrimPrefix(h.Name, "/") == file {
			got, _ := io.ReadAll(tr)
			if !bytes.Equal(got, want) {
				t.Errorf("%s in the layer = %q, want %q", file, got, want)
			}
			return
		}
	}
}
