package metadata_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/testpeer"
	"github.com/opencontainers/go-digest"
)

// The console's read queries, on both dialects.
func TestConsoleQueries(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := metadata.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "m.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		consoleQueries(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := testpeer.StartPostgres(t)
		s, err := metadata.OpenPostgres(context.Background(), pg.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		consoleQueries(t, s)
	})
}

func consoleQueries(t *testing.T, s *metadata.Store) {
	ctx := context.Background()
	blob := func(repo, name string, size int64) digest.Digest {
		d := digest.FromString(name)
		if err := s.LinkBlob(ctx, repo, d, size); err != nil {
			t.Fatal(err)
		}
		return d
	}
	put := func(repo, name, tag string, size int64, blobs, children []digest.Digest, subject digest.Digest, at string) digest.Digest {
		d := digest.FromString(name)
		m := metadata.Manifest{Repo: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: size, Subject: subject, ArtifactType: at}
		if err := s.PutManifest(ctx, m, blobs, children, tag); err != nil {
			t.Fatal(err)
		}
		return d
	}
	// app: an index (100 bytes) of two images of 10 bytes, each with a
	// 1000-byte layer; the layer of the second is shared with the first.
	l1, l2 := blob("team/app", "l1", 1000), blob("team/app", "l2", 2000)
	a := put("team/app", "a", "", 10, []digest.Digest{l1}, nil, "", "")
	b := put("team/app", "b", "", 10, []digest.Digest{l1, l2}, nil, "", "")
	idx := put("team/app", "idx", "v1", 100, nil, []digest.Digest{a, b}, "", "")
	put("team/app", "a", "v0", 10, []digest.Digest{l1}, nil, "", "")
	put("team/app", "sig", "", 5, nil, nil, idx, "application/vnd.dev.sigstore.bundle.v0.3+json")
	put("team/app", "b", "v1", 10, []digest.Digest{l1, l2}, nil, "", "") // v1 moves to b
	put("team/web_1", "w", "latest", 7, nil, nil, "", "")
	put("other", "o", "x", 7, nil, nil, "", "")
	put("teamx", "t", "x", 7, nil, nil, "", "")

	list := func(f metadata.RepoFilter, n int) ([]string, bool) {
		got, more, err := s.ConsoleRepositories(ctx, f, n)
		if err != nil {
			t.Fatal(err)
		}
		return got, more
	}
	for _, c := range []struct {
		f    metadata.RepoFilter
		n    int
		want []string
		more bool
	}{
		{metadata.RepoFilter{}, 10, []string{"other", "team/app", "team/web_1", "teamx"}, false},
		{metadata.RepoFilter{}, 2, []string{"other", "team/app"}, true},
		{metadata.RepoFilter{After: "team/app"}, 2, []string{"team/web_1", "teamx"}, false},
		{metadata.RepoFilter{Match: "team/", Prefix: true}, 10, []string{"team/app", "team/web_1"}, false},
		{metadata.RepoFilter{Match: "app", Prefix: true}, 10, nil, false},
		{metadata.RepoFilter{Match: "app"}, 10, []string{"team/app"}, false},
		{metadata.RepoFilter{Match: "TEAM"}, 10, []string{"team/app", "team/web_1", "teamx"}, false},
		{metadata.RepoFilter{Match: "_"}, 10, []string{"team/web_1"}, false}, // not LIKE's any-character
		{metadata.RepoFilter{Match: "%"}, 10, nil, false},
	} {
		got, more := list(c.f, c.n)
		if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) || more != c.more {
			t.Errorf("ConsoleRepositories(%+v, %d) = %v, %v; want %v, %v", c.f, c.n, got, more, c.want, c.more)
		}
	}

	sums, err := s.RepoSummaries(ctx, []string{"team/web_1", "team/app", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[0].Name != "team/web_1" || sums[1].Name != "team/app" {
		t.Fatalf("RepoSummaries order: %+v", sums)
	}
	if app := sums[1]; app.Tags != 2 || app.Size != 1000+2000+10+10+100+5 || app.LastPush.IsZero() {
		t.Errorf("team/app summary: %+v, want 2 tags, %d bytes, a last push", app, 1000+2000+10+10+100+5)
	}

	tags, err := s.RepoTags(ctx, "team/app")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0].Tag != "v0" || tags[0].Digest != a || tags[1].Tag != "v1" || tags[1].Digest != b || tags[1].Pushed.Before(tags[0].Pushed) {
		t.Errorf("RepoTags: %+v", tags)
	}

	hist, err := s.ManifestTagHistory(ctx, "team/app", idx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Tag != "v1" || hist[0].Digest != idx || hist[1].Digest != b {
		t.Errorf("ManifestTagHistory(idx) = %+v", hist)
	}

	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Repositories != 4 || u.Tags != 5 || u.BlobBytes != 3000 {
		t.Errorf("Usage = %+v, want 4 repositories, 5 tags, 3000 blob bytes", u)
	}
}
