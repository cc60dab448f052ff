package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/metadata/metadatatest"
	"github.com/berth-registry/berth/internal/testpeer"
	"github.com/opencontainers/go-digest"
)

func TestSQLite(t *testing.T) {
	metadatatest.Run(t, func(t *testing.T) *metadata.Store {
		s, err := metadata.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "m.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPostgres(t *testing.T) {
	pg := testpeer.StartPostgres(t)
	metadatatest.Run(t, func(t *testing.T) *metadata.Store {
		s, err := metadata.OpenPostgres(context.Background(), pg.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPostgresSharedDatabase is the scale-out shape: several stores (as in
// several berth processes) open one database at once, so the schema is set
// up exactly once, and pushes on one race gc on another without a manifest
// ever committing with a dangling reference.
func TestPostgresSharedDatabase(t *testing.T) {
	ctx := context.Background()
	dsn := testpeer.StartPostgres(t).DSN
	stores := make([]*metadata.Store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() { defer wg.Done(); stores[i], errs[i] = metadata.OpenPostgres(ctx, dsn) }()
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
	}
	pusher, collector := stores[1], stores[3]
	accepted := 0
	for i := 0; i < 30; i++ {
		blob := digest.FromString(fmt.Sprint("layer", i))
		if err := stores[0].LinkBlob(ctx, "shared", blob, 1); err != nil {
			t.Fatal(err)
		}
		m := metadata.Manifest{Repo: "shared", Digest: digest.FromString(fmt.Sprint("m", i)), MediaType: "x", Size: 1}
		var pushErr, gcErr error
		wg.Add(2)
		go func() { defer wg.Done(); pushErr = pusher.PutManifest(ctx, m, []digest.Digest{blob}, nil, "latest") }()
		go func() {
			defer wg.Done()
			// Staggered so either side may win: both outcomes are legal.
			time.Sleep(time.Duration(i%6) * 500 * time.Microsecond)
			_, gcErr = collector.RemoveStaleLinks(ctx, time.Now().Add(time.Hour))
		}()
		wg.Wait()
		if gcErr != nil {
			t.Fatal(gcErr)
		}
		var missing *metadata.MissingError
		switch {
		case pushErr == nil:
			accepted++
			if _, err := stores[2].BlobSize(ctx, "shared", blob); err != nil {
				t.Fatalf("round %d: manifest accepted, blob link gone: %v", i, err)
			}
			if got, err := stores[2].ResolveTag(ctx, "shared", "latest"); err != nil || got.Digest != m.Digest {
				t.Fatalf("round %d: another store resolves latest to %v (%v), want %s", i, got, err, m.Digest)
			}
		case !errors.As(pushErr, &missing):
			t.Fatalf("round %d: PutManifest: %v", i, pushErr)
		}
	}
	t.Logf("%d of 30 racing pushes won against gc", accepted)
}
