package clients_test

import (
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestCrane pushes, pulls and copies an image and a multi-platform index
// with crane, checking digests against the registry's own answers.
func TestCrane(t *testing.T) {
	eachTarget(t, false, func(t *testing.T, host string) {
		crane := func(t *testing.T, args ...string) string {
			t.Helper()
			return strings.TrimSpace(run(t, nil, "crane", append([]string{"--insecure"}, args...)...))
		}

		t.Run("Image", func(t *testing.T) {
			img := ociImage(t, "amd64")
			want := digestOf(t, img)
			dir := writeLayout(t, filepath.Join(t.TempDir(), "src"), map[string]v1.Image{"v1": img}, nil)

			crane(t, "push", dir, host+"/crane/image:v1")
			wantDigest(t, host, "crane/image", "v1", want)
			if got := crane(t, "digest", host+"/crane/image:v1"); got != want.String() {
				t.Errorf("crane digest = %s, want %s", got, want)
			}

			out := filepath.Join(t.TempDir(), "pulled")
			crane(t, "pull", "--format", "oci", host+"/crane/image:v1", out)
			if got := layoutDigest(t, out, ""); got != want {
				t.Errorf("pulled layout holds %s, want %s", got, want)
			}

			crane(t, "copy", host+"/crane/image:v1", host+"/crane/copy/of/image:v2")
			wantDigest(t, host, "crane/copy/of/image", "v2", want)
			wantDigest(t, host, "crane/copy/of/image", want.String(), want)

			// Every layer reads back byte for byte under its digest.
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				d := digestOf(t, l)
				blob := run(t, nil, "crane", "--insecure", "blob", host+"/crane/copy/of/image@"+d.String())
				got, _, _ := v1.SHA256(strings.NewReader(blob))
				if got != d {
					t.Errorf("blob %s reads back as %s", d, got)
				}
			}
		})

		t.Run("MultiArchIndex", func(t *testing.T) {
			idx := ociIndex(t, "amd64", "arm64", "s390x")
			want := digestOf(t, idx)
			dir := writeLayout(t, filepath.Join(t.TempDir(), "src"), nil, map[string]v1.ImageIndex{"v1": idx})

			crane(t, "push", dir, host+"/crane/multi:v1")
			wantDigest(t, host, "crane/multi", "v1", want)
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range im.Manifests {
				wantDigest(t, host, "crane/multi", d.Digest.String(), d.Digest)
				got := crane(t, "digest", "--platform", "linux/"+d.Platform.Architecture, host+"/crane/multi:v1")
				if got != d.Digest.String() {
					t.Errorf("crane digest --platform linux/%s = %s, want %s", d.Platform.Architecture, got, d.Digest)
				}
			}

			crane(t, "copy", host+"/crane/multi:v1", host+"/crane/multi-copy:v1")
			wantDigest(t, host, "crane/multi-copy", "v1", want)
			for _, d := range im.Manifests {
				wantDigest(t, host, "crane/multi-copy", d.Digest.String(), d.Digest)
			}

			out := filepath.Join(t.TempDir(), "pulled")
			crane(t, "pull", "--format", "oci", host+"/crane/multi-copy:v1", out)
			if got := layoutDigest(t, out, ""); got != want {
				t.Errorf("pulled layout holds %s, want %s", got, want)
			}

			tags := crane(t, "ls", host+"/crane/multi-copy")
			if tags != "v1" {
				t.Errorf("crane ls = %q, want v1", tags)
			}
		})
	})
}
