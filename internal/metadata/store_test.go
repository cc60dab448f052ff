package metadata

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestManifestLifecycle(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	blob := digest.FromString("layer")
	man := Manifest{Repo: "a/b", Digest: digest.FromString("m1"), MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 10}

	var missing *MissingError
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
	if _, err := s.ResolveTag(ctx, "a/b", "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tag survives its manifest's deletion: %v", err)
	}
	if _, err := s.GetManifest(ctx, "a/b", man.Digest); err != nil {
		t.Fatalf("older manifest lost: %v", err)
	}
	if err := s.DeleteManifest(ctx, "a/b", man2.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestListPagination(t *testing.T) {
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

func TestConcurrentTagWrites(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m := Manifest{Repo: "c", Digest: digest.FromString(string(rune('a' + i))), MediaType: "x", Size: 1}
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
