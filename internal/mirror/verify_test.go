package mirror_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Pushing a layout hashes every blob this process did not verify itself
// (see doc.go), and reads no blob the destination already has.
func TestLayoutPushVerifies(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	img := pushImage(t, src+"/app/one:v1", 71, 72)
	layer, err := mirrortest.Layer(71, 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layer.Digest()
	c := newClient(t)
	push := func(t *testing.T, l *mirror.Layout, dst string) error {
		t.Helper()
		jobs, err := c.LayoutJobs(l, dst+"/mirror")
		if err != nil {
			t.Fatal(err)
		}
		return mirror.NewCopier(mirror.Options{Retry: mirror.RetryPolicy{Attempts: 1}}).Run(context.Background(), jobs).Err()
	}
	reopen := func(t *testing.T, dir string) *mirror.Layout {
		t.Helper()
		l, err := mirror.OpenLayout(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	corrupt := func(t *testing.T, dir string) {
		t.Helper()
		p := filepath.Join(dir, "blobs", "sha256", ld.Hex)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40 // same size: only the hash can tell
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// prepare returns the layout to push, given the one just written.
		prepare func(t *testing.T, dir string, written *mirror.Layout, dst string) *mirror.Layout
		wantErr string
	}{
		{"written by this process", func(t *testing.T, dir string, l *mirror.Layout, dst string) *mirror.Layout {
			return l
		}, ""},
		{"reopened, intact", func(t *testing.T, dir string, l *mirror.Layout, dst string) *mirror.Layout {
			return reopen(t, dir)
		}, ""},
		{"reopened, a layer changed on disk", func(t *testing.T, dir string, l *mirror.Layout, dst string) *mirror.Layout {
			corrupt(t, dir)
			return reopen(t, dir)
		}, mirror.ErrDigestMismatch.Error()},
		{"changed on disk, but the destination has it", func(t *testing.T, dir string, l *mirror.Layout, dst string) *mirror.Layout {
			if err := push(t, reopen(t, dir), dst); err != nil {
				t.Fatal(err)
			}
			corrupt(t, dir)
			return reopen(t, dir)
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := mirrortest.StartRegistry(t)
			dir := t.TempDir()
			l, err := mirror.OpenLayout(dir, true)
			if err != nil {
				t.Fatal(err)
			}
			j, err := c.DirJob(img.ref, l, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := mirror.NewCopier(mirror.Options{}).Run(context.Background(), []mirror.Job{j}).Err(); err != nil {
				t.Fatal(err)
			}
			err = push(t, tc.prepare(t, dir, l, dst), dst)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("push: %v, want an error saying %q", err, tc.wantErr)
			case tc.wantErr == "":
				if got := headDigest(t, dst+"/mirror/app/one:v1"); got != img.digest {
					t.Errorf("pushed %s, want %s", got, img.digest)
				}
			}
		})
	}
}

// corruptingSource serves one blob with a byte flipped.
type corruptingSource struct {
	mirror.Source
	bad v1.Hash
}

func (c corruptingSource) OpenBlob(ctx context.Context, repo string, d v1.Descriptor) (io.ReadCloser, error) {
	rc, err := c.Source.OpenBlob(ctx, repo, d)
	if err != nil || d.Digest != c.bad {
		return rc, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	b[len(b)/2] ^= 0x40
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Bytes hashed once on the way into a layout still keep a wrong blob out:
// it never gets its digest name, and no temporary file is left.
func TestLayoutRejectsWrongBytes(t *testing.T) {
	src := mirrortest.StartRegistry(t)
	pushImage(t, src+"/app/one:v1", 81, 82)
	layer, err := mirrortest.Layer(81, 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := layer.Digest()
	reg, err := newClient(t).Registry(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := mirror.OpenLayout(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	j := mirror.Job{Source: corruptingSource{reg, ld}, SrcRepo: "app/one", SrcRef: "v1", Target: l, DstRepo: "app/one", DstTag: "v1"}
	err = mirror.NewCopier(mirror.Options{Retry: mirror.RetryPolicy{Attempts: 1}}).Run(context.Background(), []mirror.Job{j}).Err()
	if err == nil || !strings.Contains(err.Error(), mirror.ErrDigestMismatch.Error()) {
		t.Fatalf("copy: %v, want a digest mismatch", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	for _, f := range left {
		if filepath.Base(f) == ld.Hex || strings.HasPrefix(filepath.Base(f), ".tmp-") {
			t.Errorf("%s left in the layout", filepath.Base(f))
		}
	}
	// Direct writes of anything else are hashed by the layout itself.
	err = l.PutBlob(context.Background(), "app/one", v1.Descriptor{Digest: ld, Size: 4}, strings.NewReader("nope"))
	if err == nil || !strings.Contains(err.Error(), mirror.ErrDigestMismatch.Error()) {
		t.Errorf("PutBlob of wrong bytes: %v, want a digest mismatch", err)
	}
}
