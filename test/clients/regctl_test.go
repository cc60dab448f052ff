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

// regctlFor returns a runner for regctl with its own configuration (HOME)
// in which host is plain HTTP.
func regctlFor(t *testing.T, host string) func(t *testing.T, args ...string) string {
	t.Helper()
	env := []string{"HOME=" + t.TempDir()}
	run(t, env, "regctl", "registry", "set", "--tls", "disabled", host)
	return func(t *testing.T, args ...string) string {
		t.Helper()
		return run(t, env, "regctl", args...)
	}
}

// TestRegctl copies images and indexes to and from OCI layouts with regctl,
// and puts and gets artifacts (with referrers where the registry has the
// API).
func TestRegctl(t *testing.T) {
	eachTarget(t, false, func(t *testing.T, host string) {
		regctl := regctlFor(t, host)
		img := ociImage(t, "amd64")
		idx := ociIndex(t, "amd64", "arm64")
		src := writeLayout(t, filepath.Join(t.TempDir(), "src"),
			map[string]v1.Image{"v1": img}, map[string]v1.ImageIndex{"multi": idx})

		for _, tc := range []struct {
			name, tag string
			want      v1.Hash
		}{{"Image", "v1", digestOf(t, img)}, {"Index", "multi", digestOf(t, idx)}} {
			t.Run("OCIDirRoundTrip/"+tc.name, func(t *testing.T) {
				ref := host + "/regctl/" + strings.ToLower(tc.name) + ":" + tc.tag
				regctl(t, "image", "copy", "ocidir://"+src+":"+tc.tag, ref)
				wantDigest(t, host, "regctl/"+strings.ToLower(tc.name), tc.tag, tc.want)
				if got := strings.TrimSpace(regctl(t, "image", "digest", ref)); got != tc.want.String() {
					t.Errorf("regctl image digest = %s, want %s", got, tc.want)
				}
				out := filepath.Join(t.TempDir(), "out")
				regctl(t, "image", "copy", ref, "ocidir://"+out+":"+tc.tag)
				if got := layoutDigest(t, out, tc.tag); got != tc.want {
					t.Errorf("layout copied back holds %s, want %s", got, tc.want)
				}
			})
		}

		t.Run("Artifact", func(t *testing.T) {
			payload := []byte("artifact payload " + host)
			file := filepath.Join(t.TempDir(), "payload.txt")
			if err := os.WriteFile(file, payload, 0o644); err != nil {
				t.Fatal(err)
			}
			ref := host + "/regctl/artifact:v1"
			regctl(t, "artifact", "put", "--artifact-type", "application/vnd.berth.test", "-f", file, ref)
			if got := regctl(t, "artifact", "get", ref); got != string(payload) {
				t.Errorf("artifact get = %q, want %q", got, payload)
			}
			raw, _ := registryManifest(t, host, "regctl/artifact", "v1")
			var m struct {
				ArtifactType string `json:"artifactType"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if m.ArtifactType != "application/vnd.berth.test" {
				t.Errorf("stored manifest artifactType %q", m.ArtifactType)
			}
			got, _, _ := v1.SHA256(strings.NewReader(string(raw)))
			if d := strings.TrimSpace(regctl(t, "image", "digest", ref)); d != got.String() {
				t.Errorf("regctl image digest = %s, registry serves %s", d, got)
			}
		})
	})
}

// TestRegctlReferrers attaches an SBOM to an image with regctl and finds it
// through the registry's referrers API (not the tag fallback), also after a
// copy with --referrers.
func TestRegctlReferrers(t *testing.T) {
	eachTarget(t, true, func(t *testing.T, host string) {
		regctl := regctlFor(t, host)
		img := ociImage(t, "amd64")
		want := digestOf(t, img)
		src := writeLayout(t, filepath.Join(t.TempDir(), "src"), map[string]v1.Image{"v1": img}, nil)
		subject := host + "/regctl/signed:v1"
		regctl(t, "image", "copy", "ocidir://"+src+":v1", subject)

		sbom := []byte(`{"spdxVersion":"SPDX-2.3","name":"berth-test"}`)
		file := filepath.Join(t.TempDir(), "sbom.json")
		if err := os.WriteFile(file, sbom, 0o644); err != nil {
			t.Fatal(err)
		}
		regctl(t, "artifact", "put", "--artifact-type", "application/spdx+json", "-f", file,
			"--annotation", "org.example.kind=sbom", "--subject", subject)

		got := regctl(t, "artifact", "get", "--subject", subject, "--filter-artifact-type", "application/spdx+json")
		if got != string(sbom) {
			t.Errorf("artifact get --subject = %q, want %q", got, sbom)
		}

		refs := referrersOf(t, host, "regctl/signed", want.String())
		if len(refs) != 1 || refs[0].ArtifactType != "application/spdx+json" || refs[0].Annotations["org.example.kind"] != "sbom" {
			t.Fatalf("referrers API lists %+v, want the one SBOM", refs)
		}
		listed := strings.Fields(regctl(t, "artifact", "list", subject, "--format", `{{range .Descriptors}}{{println .Digest}}{{end}}`))
		if !slices.Equal(listed, []string{refs[0].Digest.String()}) {
			t.Errorf("regctl artifact list = %q, want [%s]", listed, refs[0].Digest)
		}
		// regctl used the API: no fallback tag was pushed.
		for _, tag := range registryTags(t, host, "regctl/signed") {
			if strings.HasPrefix(tag, "sha256-") {
				t.Errorf("referrers tag-schema fallback %q was used", tag)
			}
		}

		regctl(t, "image", "copy", "--referrers", subject, host+"/regctl/signed-copy:v1")
		wantDigest(t, host, "regctl/signed-copy", "v1", want)
		copied := referrersOf(t, host, "regctl/signed-copy", want.String())
		if len(copied) != 1 || copied[0].Digest != refs[0].Digest {
			t.Errorf("referrers after copy --referrers: %+v, want %s", copied, refs[0].Digest)
		}
	})
}

// referrersOf reads the referrers API over HTTP.
func referrersOf(t *testing.T, host, repo, dgst string) []v1.Descriptor {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/referrers/" + dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("referrers %s/%s@%s → %d", host, repo, dgst, resp.StatusCode)
	}
	var im v1.IndexManifest
	if err := json.NewDecoder(resp.Body).Decode(&im); err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}
