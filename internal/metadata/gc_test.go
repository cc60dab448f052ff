package metadata

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestMigrateFromVersion0 builds a database as the first release did (the
// version 0 schema, with content), then opens it with this code: it upgrades
// in place, keeps every row, gives old links the upgrade time, and a second
// open is a no-op.
func TestMigrateFromVersion0(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw := sql.OpenDB(connector{"file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=journal_mode(WAL)"})
	if _, err := raw.ExecContext(ctx, schema); err != nil {
		t.Fatal(err)
	}
	old := digest.FromString("old layer")
	for _, q := range []string{
		`INSERT INTO repositories(name, created) VALUES('a', 1)`,
		`INSERT INTO repo_blobs(repo, digest, size) VALUES('a', '` + string(old) + `', 9)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	before := time.Now()
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := s.r.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("user_version = %d (%v), want %d", v, err, SchemaVersion)
	}
	if n, err := s.BlobSize(ctx, "a", old); err != nil || n != 9 {
		t.Fatalf("old link lost: %d %v", n, err)
	}
	if stale, _ := s.StaleLinks(ctx, before); len(stale) != 0 {
		t.Fatalf("a pre-upgrade link did not get the upgrade time: %v", stale)
	}
	if stale, _ := s.StaleLinks(ctx, time.Now().Add(time.Second)); len(stale) != 1 {
		t.Fatalf("stale links after the grace = %v, want the old link", stale)
	}
	if err := s.LinkBlob(ctx, "a", digest.FromString("new"), 3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopening a migrated database: %v", err)
	}
	defer s.Close()
	if ok, _ := s.BlobReferenced(ctx, old); !ok {
		t.Fatal("old link not seen after reopen")
	}
}
