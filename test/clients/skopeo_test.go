package clients_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// skopeoFor returns a runner for skopeo with a policy that accepts anything
// and plain HTTP towards registries.
func skopeoFor(t *testing.T) func(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir, "REGISTRY_AUTH_FILE=" + filepath.Join(dir, "auth.json")}
	return func(t *testing.T, args ...string) string {
		t.Helper()
		return run(t, env, "skopeo", append([]string{"--policy", policy}, args...)...)
	}
}

// TestSkopeo copies OCI layouts to the registry and back with skopeo
// (digests preserved), inspects, lists tags and deletes.
func TestSkopeo(t *testing.T) {
	eachTarget(t, false, func(t *testing.T, host string) {
		skopeo := skopeoFor(t)
		copyArgs := []string{"copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"}
		img := ociImage(t, "amd64")
		idx := ociIndex(t, "amd64", "arm64")
		src := writeLayout(t, filepath.Join(t.TempDir(), "src"),
			map[string]v1.Image{"v1": img}, map[string]v1.ImageIndex{"multi": idx})
		want := digestOf(t, img)
		repo := "skopeo/image"

		t.Run("CopyLayoutToRegistryAndBack", func(t *testing.T) {
			skopeo(t, append(copyArgs, "oci:"+src+":v1", "docker://"+host+"/"+repo+":v1")...)
			wantDigest(t, host, repo, "v1", want)
			out := filepath.Join(t.TempDir(), "out")
			skopeo(t, append(copyArgs, "docker://"+host+"/"+repo+":v1", "oci:"+out+":v1")...)
			if got := layoutDigest(t, out, "v1"); got != want {
				t.Errorf("layout copied back holds %s, want %s", got, want)
			}
		})

		t.Run("CopyIndex", func(t *testing.T) {
			wantIdx := digestOf(t, idx)
			skopeo(t, append(copyArgs, "--all", "oci:"+src+":multi", "docker://"+host+"/skopeo/multi:v1")...)
			wantDigest(t, host, "skopeo/multi", "v1", wantIdx)
			out := filepath.Join(t.TempDir(), "out")
			skopeo(t, append(copyArgs, "--all", "docker://"+host+"/skopeo/multi:v1", "oci:"+out+":v1")...)
			if got := layoutDigest(t, out, "v1"); got != wantIdx {
				t.Errorf("layout copied back holds %s, want %s", got, wantIdx)
			}
		})

		t.Run("RegistryToRegistry", func(t *testing.T) {
			skopeo(t, append(copyArgs, "docker://"+host+"/"+repo+":v1", "docker://"+host+"/skopeo/copy:v2")...)
			wantDigest(t, host, "skopeo/copy", "v2", want)
		})

		t.Run("Inspect", func(t *testing.T) {
			var info struct {
				Digest       string
				Architecture string
				Os           string
				Layers       []string
			}
			out := skopeo(t, "inspect", "--tls-verify=false", "docker://"+host+"/"+repo+":v1")
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if info.Digest != want.String() || info.Architecture != "amd64" || info.Os != "linux" {
				t.Errorf("inspect: digest %s arch %s os %s, want %s amd64 linux", info.Digest, info.Architecture, info.Os, want)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			var layers []string
			for _, l := range m.Layers {
				layers = append(layers, l.Digest.String())
			}
			if !slices.Equal(info.Layers, layers) {
				t.Errorf("inspect layers %q, want %q", info.Layers, layers)
			}
			raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+host+"/"+repo+":v1")
			if got, _, _ := v1.SHA256(strings.NewReader(raw)); got != want {
				t.Errorf("inspect --raw hashes to %s, want %s", got, want)
			}
		})

		t.Run("ListTags", func(t *testing.T) {
			img2 := ociImage(t, "arm64")
			l2 := writeLayout(t, filepath.Join(t.TempDir(), "l2"), map[string]v1.Image{"v2": img2}, nil)
			skopeo(t, append(copyArgs, "oci:"+l2+":v2", "docker://"+host+"/"+repo+":v2")...)
			var tl struct {
				Repository string
				Tags       []string
			}
			out := skopeo(t, "list-tags", "--tls-verify=false", "docker://"+host+"/"+repo)
			if err := json.Unmarshal([]byte(out), &tl); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			slices.Sort(tl.Tags)
			if !slices.Equal(tl.Tags, []string{"v1", "v2"}) {
				t.Errorf("list-tags = %q, want [v1 v2]", tl.Tags)
			}
		})

		t.Run("Delete", func(t *testing.T) {
			skopeo(t, "delete", "--tls-verify=false", "docker://"+host+"/skopeo/copy:v2")
			resp, err := http.Head("http://" + host + "/v2/skopeo/copy/manifests/" + want.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("manifest after skopeo delete → %d, want 404", resp.StatusCode)
			}
			// Deleting in one repository leaves the other copy alone.
			wantDigest(t, host, repo, "v1", want)
			if _, err := runErr(t, nil, "skopeo", "inspect", "--tls-verify=false", "docker://"+host+"/skopeo/copy:v2"); err == nil {
				t.Error("skopeo inspect of a deleted image succeeded")
			}
		})
	})
}
