// Package metadatatest is the conformance suite every metadata store
// backend passes (embedded SQLite, PostgreSQL): each backend's test is one
// call to Run.
package metadatatest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

// NewStore opens a fresh, empty store, closed when the test ends.
type NewStore func(t *testing.T) *metadata.Store

// Run runs the suite, each case on its own store from newStore.
func Run(t *testing.T, newStore NewStore) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"ManifestLifecycle", manifestLifecycle},
		{"ListPagination", listPagination},
		{"ConcurrentTagWrites", concurrentTagWrites},
		{"StaleLinksAndConditionalDelete", staleLinksAndConditionalDelete},
		{"ConcurrentPushAndGC", concurrentPushAndGC},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore) })
	}
}

func manifestLifecycle(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	blob := digest.FromString("layer")
	man := metadata.Manifest{Repo: "a/b", Digest: digest.FromString("m1"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 10}

	var missing *metadata.MissingError
	if err := s.PutManifest(ctx, man, []digest.Digest{blob}, nil, "v1"); !errors.As(err, &missing) || len(missing.Digests) != 1 || missing.Digests[0] != blob {
		t.Fatalf("want MissingError for %s, got %v", blob, err)
	}
	if ok, _ := s.RepoExists(ctx, "a/b"); ok {
		t.Fatal("a refused manifest created the repository")
	}
	if err := s.LinkBlob(ctx, "a/b", blob, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(ctx, man, []digest.Digest{blob}, nil, "v1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.ResolveTag(ctx, "a/b", "v1")
	if err != nil || got.Digest != man.Digest || got.Size != 10 {
		t.Fatalf("ResolveTag = %+v, %v", got, err)
	}
	man2 := man
	man2.Digest = digest.FromString("m2")
	if err := s.PutManifest(ctx, man2, []digest.Digest{blob}, nil, "v1"); err != nil {
		t.Fatal(err)
	}
	hist, _ := s.TagHistory(ctx, "a/b", "v1")
	if diff := cmp.Diff([]digest.Digest{man.Digest, man2.Digest}, hist); diff != "" {
		t.Fatalf("tag history (-want +got):\n%s", diff)
	}
	if err := s.DeleteManifest(ctx, "a/b", man2.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveTag(ctx, "a/b", "v1"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("tag survives its manifest's deletion: %v", err)
	}
	if _, err := s.GetManifest(ctx, "a/b", man.Digest); err != nil {
		t.Fatalf("older manifest lost: %v", err)
	}
	if err := s.DeleteManifest(ctx, "a/b", man2.Digest); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func listPagination(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	b := digest.FromString("x")
	for _, r := range []string{"r/c", "r/a", "r/b"} {
		if err := s.LinkBlob(ctx, r, b, 1); err != nil {
			t.Fatal(err)
		}
	}
	got, more, err := s.ListRepositories(ctx, "", 2)
	if err != nil || !more || !cmp.Equal(got, []string{"r/a", "r/b"}) {
		t.Fatalf("page 1 = %v %v %v", got, more, err)
	}
	got, more, _ = s.ListRepositories(ctx, "r/b", 2)
	if more || !cmp.Equal(got, []string{"r/c"}) {
		t.Fatalf("page 2 = %v %v", got, more)
	}
	got, _, _ = s.ListRepositories(ctx, "", 0)
	if len(got) != 0 {
		t.Fatalf("n=0 returned %v", got)
	}
}

func concurrentTagWrites(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m := metadata.Manifest{Repo: "c", Digest: digest.FromString(string(rune('a' + i))), MediaType: "x", Size: 1}
			if err := s.PutManifest(ctx, m, nil, nil, "latest"); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	hist, _ := s.TagHistory(ctx, "c", "latest")
	if len(hist) != 32 {
		t.Fatalf("history has %d entries, want 32", len(hist))
	}
	cur, err := s.ResolveTag(ctx, "c", "latest")
	if err != nil || cur.Digest != hist[len(hist)-1] {
		t.Fatalf("tag %v does not equal the last history entry %v (%v)", cur, hist[len(hist)-1], err)
	}
}

func staleLinksAndConditionalDelete(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	used, unused := digest.FromString("used"), digest.FromString("unused")
	for _, d := range []digest.Digest{used, unused} {
		if err := s.LinkBlob(ctx, "r", d, 1); err != nil {
			t.Fatal(err)
		}
	}
	idx := metadata.Manifest{Repo: "r", Digest: digest.FromString("index"), MediaType: "x", Size: 1}
	child := metadata.Manifest{Repo: "r", Digest: digest.FromString("child"), MediaType: "x", Size: 1}
	if err := s.PutManifest(ctx, child, []digest.Digest{used}, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(ctx, idx, nil, []digest.Digest{child.Digest}, "v1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.StaleLinks(ctx, time.Now().Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("links younger than the cutoff reported stale: %v", got)
	}
	got, err := s.RemoveStaleLinks(ctx, time.Now().Add(time.Second))
	if err != nil || len(got) != 1 || got[0].Digest != unused {
		t.Fatalf("RemoveStaleLinks = %v, %v; want only %s", got, err, unused)
	}
	if ok, _ := s.BlobReferenced(ctx, unused); ok {
		t.Fatal("removed link still referenced")
	}
	for _, d := range []digest.Digest{used, child.Digest, idx.Digest} {
		if ok, _ := s.BlobReferenced(ctx, d); !ok {
			t.Fatalf("%s not referenced", d)
		}
	}
	if err := s.DeleteManifestIfUnused(ctx, "r", child.Digest); !errors.Is(err, metadata.ErrInUse) {
		t.Fatalf("deleting an index child: %v, want ErrInUse", err)
	}
	if err := s.DeleteManifestIfUnused(ctx, "r", idx.Digest); !errors.Is(err, metadata.ErrInUse) {
		t.Fatalf("deleting a tagged manifest: %v, want ErrInUse", err)
	}
	if err := s.DeleteTag(ctx, "r", "v1"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{idx.Digest, child.Digest} {
		if err := s.DeleteManifestIfUnused(ctx, "r", d); err != nil {
			t.Fatalf("delete %s: %v", d, err)
		}
	}
	g, err := s.ReadRepoGraph(ctx, "r")
	if err != nil || len(g.Manifests) != 0 || len(g.History["v1"]) != 1 {
		t.Fatalf("graph after deletes = %+v, %v", g, err)
	}
}

// concurrentPushAndGC races manifest pushes against gc removing the links
// they reference: each push either commits with its blob still linked or is
// refused for the missing blob, never accepted with a dangling reference.
func concurrentPushAndGC(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	for i := 0; i < 20; i++ {
		blob := digest.FromString(fmt.Sprint("layer", i))
		if err := s.LinkBlob(ctx, "race", blob, 1); err != nil {
			t.Fatal(err)
		}
		m := metadata.Manifest{Repo: "race", Digest: digest.FromString(fmt.Sprint("manifest", i)), MediaType: "x", Size: 1}
		var pushErr, gcErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); pushErr = s.PutManifest(ctx, m, []digest.Digest{blob}, nil, "") }()
		go func() {
			defer wg.Done()
			// Staggered so either side may win: both outcomes are legal.
			time.Sleep(time.Duration(i%6) * 500 * time.Microsecond)
			_, gcErr = s.RemoveStaleLinks(ctx, time.Now().Add(time.Hour))
		}()
		wg.Wait()
		if gcErr != nil {
			t.Fatalf("round %d: RemoveStaleLinks: %v", i, gcErr)
		}
		var missing *metadata.MissingError
		switch {
		case pushErr == nil:
			if _, err := s.BlobSize(ctx, "race", blob); err != nil {
				t.Fatalf("round %d: manifest accepted but its blob link is gone: %v", i, err)
			}
		case errors.As(pushErr, &missing):
			if _, err := s.GetManifest(ctx, "race", m.Digest); !errors.Is(err, metadata.ErrNotFound) {
				t.Fatalf("round %d: refused manifest stored: %v", i, err)
			}
		default:
			t.Fatalf("round %d: PutManifest: %v", i, pushErr)
		}
	}
}
