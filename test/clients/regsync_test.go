package clients_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestRegsync mirrors one repository (images and a multi-platform index)
// to another with regsync, twice, and requires every tag to resolve to the
// same digest on both sides.
func TestRegsync(t *testing.T) {
	eachTarget(t, false, func(t *testing.T, host string) {
		const src, dst = "regsync/source", "regsync/mirror/of/source"
		push := func(t *testing.T, tag string, img v1.Image, idx v1.ImageIndex) v1.Hash {
			t.Helper()
			var dir string
			if idx != nil {
				dir = writeLayout(t, filepath.Join(t.TempDir(), "l"), nil, map[string]v1.ImageIndex{tag: idx})
			} else {
				dir = writeLayout(t, filepath.Join(t.TempDir(), "l"), map[string]v1.Image{tag: img}, nil)
			}
			run(t, nil, "crane", "--insecure", "push", dir, host+"/"+src+":"+tag)
			if idx != nil {
				return digestOf(t, idx)
			}
			return digestOf(t, img)
		}
		idx := ociIndex(t, "amd64", "arm64")
		want := map[string]v1.Hash{
			"v1":    push(t, "v1", ociImage(t, "amd64"), nil),
			"v2":    push(t, "v2", ociImage(t, "arm64"), nil),
			"multi": push(t, "multi", nil, idx),
		}

		home := t.TempDir()
		cfg := filepath.Join(home, "regsync.yml")
		config := fmt.Sprintf(`version: 1
creds:
  - registry: %[1]s
    tls: disabled
sync:
  - source: %[1]s/%[2]s
    target: %[1]s/%[3]s
    type: repository
`, host, src, dst)
		if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		sync := func(t *testing.T) {
			t.Helper()
			run(t, []string{"HOME=" + home}, "regsync", "once", "--config", cfg)
		}
		check := func(t *testing.T) {
			t.Helper()
			var tags []string
			for tag, d := range want {
				tags = append(tags, tag)
				wantDigest(t, host, dst, tag, d)
			}
			slices.Sort(tags)
			if got := registryTags(t, host, dst); !slices.Equal(got, tags) {
				t.Errorf("mirror tags %q, want %q", got, tags)
			}
		}

		t.Run("Mirror", func(t *testing.T) {
			sync(t)
			check(t)
			// The index's children came along, by digest.
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range im.Manifests {
				wantDigest(t, host, dst, d.Digest.String(), d.Digest)
			}
		})

		t.Run("IncrementalWithMovedTag", func(t *testing.T) {
			want["v3"] = push(t, "v3", ociImage(t, "amd64"), nil)
			want["v1"] = push(t, "v1", ociImage(t, "s390x"), nil)
			sync(t)
			check(t)
		})
	})
}
