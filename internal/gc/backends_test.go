package gc_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/storage"
	"github.com/berth-registry/berth/internal/testpeer"
	"github.com/opencontainers/go-digest"
)

// TestCollectRecommitBetweenMarkAndSweep re-commits the bytes of a marked
// candidate, with no link (as a push does before it links them), between
// the mark and the sweep: only the blob store's fresh commit time can save
// them. On the memory and object-store backends that is Stat's re-read;
// they have no conditional delete to fall back on.
func TestCollectRecommitBetweenMarkAndSweep(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) storage.Backend
	}{
		{"Filesystem", func(t *testing.T) storage.Backend {
			b, err := storage.NewFilesystem(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"Memory", func(*testing.T) storage.Backend { return storage.NewMemory() }},
		{"S3", func(t *testing.T) storage.Backend {
			m := testpeer.StartMinIO(t)
			b, closer, err := storage.OpenS3(context.Background(), storage.S3Config{
				Bucket: "berth-gc", RegionEndpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closer.Close() })
			return b
		}},
	}
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			ctx := context.Background()
			const grace = time.Second
			e := newEnvOn(t, t.TempDir(), bc.open(t))
			recommitted := e.leftover(t, "re-committed during")
			old := e.leftover(t, "old")
			time.Sleep(2 * grace)

			res, err := gc.Collect(ctx, e.blobs, e.meta, gc.WithAfterMark(gc.Options{Grace: grace}, func() {
				e.leftover(t, "re-committed during")
			}))
			if err != nil {
				t.Fatal(err)
			}
			if got := digests(res.Deleted); !slices.Equal(got, []digest.Digest{old}) {
				t.Fatalf("deleted %v, want only %s", got, old)
			}
			if res.Rescued != 1 {
				t.Errorf("rescued = %d, want 1", res.Rescued)
			}
			if !exists(t, e, recommitted) {
				t.Fatalf("%s, re-committed between mark and sweep, was deleted", recommitted)
			}
			if exists(t, e, old) {
				t.Fatalf("%s is still there", old)
			}
		})
	}
}
