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
		{"CachedManifestsAndEviction", cachedManifestsAndEviction},
		{"RobotTokens", robotTokens},
		{"EventQueue", eventQueue},
		{"MaintenanceRuns", maintenanceRuns},
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

// cachedManifestsAndEviction: a cached manifest is stored before what it
// references, which stays referenced for gc; eviction goes least recently
// pulled first, keeps blobs another manifest still references, and yields
// to a pull that raced it.
func cachedManifestsAndEviction(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	shared, onlyA, onlyB := digest.FromString("shared"), digest.FromString("only-a"), digest.FromString("only-b")
	a := metadata.Manifest{Repo: "quay.io/x/app", Digest: digest.FromString("ma"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 100}
	b := metadata.Manifest{Repo: "quay.io/x/app", Digest: digest.FromString("mb"), MediaType: a.MediaType, Size: 200}
	if err := s.PutCachedManifest(ctx, a, []digest.Digest{shared, onlyA}, nil, "a"); err != nil {
		t.Fatalf("a cached manifest must not need its blobs yet: %v", err)
	}
	if ok, err := s.BlobReferenced(ctx, onlyA); err != nil || !ok {
		t.Fatalf("a cached manifest's blob is not referenced for gc: %v %v", ok, err)
	}
	if err := s.PutCachedManifest(ctx, b, []digest.Digest{shared, onlyB}, nil, "b"); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		d digest.Digest
		n int64
	}{{shared, 1000}, {onlyA, 10}, {onlyB, 20}} {
		if err := s.LinkBlob(ctx, "quay.io/x/app", l.d, l.n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LinkBlob(ctx, "pushed/app", onlyA, 10); err != nil {
		t.Fatal(err)
	}
	prefixes := []string{"quay.io", "docker.io"}
	if n, err := s.CachedBytes(ctx, prefixes); err != nil || n != 1000+10+20+100+200 {
		t.Fatalf("CachedBytes = %d, %v", n, err)
	}
	now := time.Now()
	if err := s.MarkPulled(ctx, a.Repo, a.Digest, now); err != nil {
		t.Fatal(err)
	}
	lru, err := s.LeastRecentlyPulled(ctx, prefixes, now.Add(time.Hour), 10)
	if err != nil || len(lru) != 2 || lru[0].Digest != b.Digest || lru[1].Digest != a.Digest {
		t.Fatalf("LeastRecentlyPulled = %+v, %v (want b, then a)", lru, err)
	}
	if lru, _ := s.LeastRecentlyPulled(ctx, []string{"quay"}, now.Add(time.Hour), 10); len(lru) != 0 {
		t.Fatalf("prefix matched part of a path component: %+v", lru)
	}
	if _, err := s.EvictManifest(ctx, a.Repo, a.Digest, now); !errors.Is(err, metadata.ErrInUse) {
		t.Fatalf("evicting a manifest pulled since the decision: %v, want ErrInUse", err)
	}
	links, err := s.EvictManifest(ctx, b.Repo, b.Digest, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Digest != onlyB {
		t.Fatalf("evicting b unlinked %+v, want only %s (shared is a's too)", links, onlyB)
	}
	if _, err := s.ResolveTag(ctx, b.Repo, "b"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("evicted manifest's tag survives: %v", err)
	}
	if n, _ := s.BlobSize(ctx, a.Repo, shared); n != 1000 {
		t.Fatal("a blob another cached image uses was unlinked")
	}
	links, err = s.EvictManifest(ctx, a.Repo, a.Digest, now.Add(time.Minute))
	if err != nil || len(links) != 2 {
		t.Fatalf("evicting a: %+v, %v", links, err)
	}
	if ok, _ := s.BlobReferenced(ctx, onlyA); !ok {
		t.Fatal("a blob a pushed repository links counts as unreferenced")
	}
	if ok, _ := s.BlobReferenced(ctx, shared); ok {
		t.Fatal("a blob nothing uses any more is still referenced")
	}
}

// robotTokens: recorded tokens list oldest first; a revocation is all or
// none, keeps its first time, and only unexpired revoked ids are in the
// set serve keeps.
func robotTokens(t *testing.T, open NewStore) {
	ctx := context.Background()
	s := open(t)
	now := time.Now().Truncate(time.Second)
	toks := []metadata.RobotToken{
		{ID: "a1", Subject: "ci-bot", Created: now.Add(-2 * time.Hour), Expires: now.Add(time.Hour)},
		{ID: "b2", Subject: "ci-bot", Created: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
		{ID: "c3", Subject: "old-bot", Created: now.Add(-3 * time.Hour), Expires: now.Add(-2 * time.Hour)},
	}
	for _, tok := range toks {
		if err := s.RecordToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordToken(ctx, toks[0]); err == nil {
		t.Fatal("a token id was recorded twice")
	}
	got, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []metadata.RobotToken{toks[2], toks[0], toks[1]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ListTokens (-want +got):\n%s", diff)
	}
	var unknown *metadata.UnknownTokensError
	if err := s.RevokeTokens(ctx, []string{"a1", "zz"}, now); !errors.As(err, &unknown) || !cmp.Equal(unknown.IDs, []string{"zz"}) {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	if ids, err := s.RevokedTokens(ctx, now); err != nil || len(ids) != 0 {
		t.Fatalf("a refused revocation revoked %v (%v)", ids, err)
	}
	if err := s.RevokeTokens(ctx, []string{"a1", "c3"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeTokens(ctx, []string{"a1"}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ids, err := s.RevokedTokens(ctx, now)
	if err != nil || !cmp.Equal(ids, []string{"a1"}) {
		t.Fatalf("RevokedTokens = %v (%v), want [a1] (c3 has expired)", ids, err)
	}
	got, _ = s.ListTokens(ctx)
	if !got[1].Revoked.Equal(now) || !got[2].Revoked.IsZero() || !got[0].Revoked.Equal(now) {
		t.Fatalf("revocation times: %+v", got)
	}
}
