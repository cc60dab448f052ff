package metadata

import (
	"context"
	"database/sql"
	"database/sql/driver"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"modernc.org/sqlite"
)

//go:embed schema.sql
var schema string

// ErrNotFound is returned when a manifest, tag, blob link or upload does not
// exist.
var ErrNotFound = errors.New("not found")

// MissingError lists the references a manifest names that the repository
// does not hold.
type MissingError struct{ Digests []digest.Digest }

func (e *MissingError) Error() string { return fmt.Sprintf("unknown references: %v", e.Digests) }

// Store is the metadata store, on embedded SQLite (OpenSQLite) or on
// PostgreSQL (OpenPostgres). On SQLite writes go through one connection
// (SQLite has one writer; serialising in Go avoids busy retries), reads
// through a pool that runs alongside them thanks to WAL. On PostgreSQL both
// are one pool and every write transaction is SERIALIZABLE, retried on a
// serialization failure (see tx).
type Store struct {
	w, r conn
	pg   bool
}

// Manifest is one stored manifest.
type Manifest struct {
	Repo         string
	Digest       digest.Digest
	MediaType    string
	Size         int64
	ArtifactType string
	Subject      digest.Digest
	Annotations  map[string]string
	Created      time.Time
}

// OpenSQLite opens (creating if needed) the database file at path; ":memory:"
// gives a private throw-away database.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	memory := path == ":memory:"
	dsn := func(extra string) string {
		if memory {
			// A shared-cache in-memory database visible to both pools.
			return "file:berth-" + fmt.Sprint(time.Now().UnixNano()) + "?mode=memory&cache=shared&_pragma=busy_timeout(10000)" + extra
		}
		p, _ := filepath.Abs(path)
		return "file:" + (&url.URL{Path: p}).EscapedPath() +
			"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)" + extra
	}
	name := dsn("&_txlock=immediate")
	w := sql.OpenDB(connector{name})
	w.SetMaxOpenConns(1)
	wc := conn{DB: w}
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("metadata: create schema in %s: %w", path, err)
	}
	if err := migrate(ctx, wc); err != nil {
		w.Close()
		return nil, fmt.Errorf("metadata: upgrade schema in %s: %w", path, err)
	}
	rname := dsn("&_pragma=query_only(1)")
	if memory {
		rname = name
	}
	r := sql.OpenDB(connector{rname})
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return &Store{w: wc, r: conn{DB: r}}, nil
}

// connector opens SQLite connections with the driver passed explicitly
// rather than looked up by name.
type connector struct{ dsn string }

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.Driver().Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return &sqlite.Driver{} }

// Close releases the database.
func (s *Store) Close() error {
	if s.pg {
		return s.w.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

func ensureRepo(ctx context.Context, tx *txn, repo string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO repositories(name, created) VALUES(?, ?) ON CONFLICT DO NOTHING`, repo, time.Now().UnixNano())
	return err
}

// LinkBlob records that repo may serve blob d (its bytes are already durable).
// Linking again refreshes the link time, which gc's grace period counts from.
// The events describing the link (a push or a mount) are queued with it.
func (s *Store) LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64, events ...Event) error {
	return s.tx(ctx, func(tx *txn) error {
		if err := ensureRepo(ctx, tx, repo); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO repo_blobs(repo, digest, size, linked) VALUES(?, ?, ?, ?)
			ON CONFLICT(repo, digest) DO UPDATE SET linked = excluded.linked`, repo, string(d), size, time.Now().UnixNano()); err != nil {
			return err
		}
		return enqueue(ctx, tx, events)
	})
}

// BlobSize returns the size of blob d if repo may serve it.
func (s *Store) BlobSize(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT size FROM repo_blobs WHERE repo = ? AND digest = ?`, repo, string(d)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return n, err
}

// UnlinkBlob removes repo's link to blob d; ErrNotFound if there was none.
// The events describing the delete are queued with it.
func (s *Store) UnlinkBlob(ctx context.Context, repo string, d digest.Digest, events ...Event) error {
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM repo_blobs WHERE repo = ? AND digest = ?`, repo, string(d))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return enqueue(ctx, tx, events)
	})
}

// PutManifest records a manifest whose bytes are durable, after checking in
// the same transaction that every blob and child manifest it references is
// held by the repository; if tag is set the tag is moved to it and the move
// kept in the tag's history. The events describing the push are queued with
// it, also when the push changed nothing (the same manifest under the same
// tag), as a registry's receivers expect.
func (s *Store) PutManifest(ctx context.Context, m Manifest, blobs, children []digest.Digest, tag string, events ...Event) error {
	return s.putManifest(ctx, m, blobs, children, tag, true, events)
}

func (s *Store) putManifest(ctx context.Context, m Manifest, blobs, children []digest.Digest, tag string, checkRefs bool, events []Event) error {
	ann := ""
	if len(m.Annotations) > 0 {
		b, _ := json.Marshal(m.Annotations)
		ann = string(b)
	}
	now := time.Now().UnixNano()
	return s.tx(ctx, func(tx *txn) error {
		var missing []digest.Digest
		mustHoldBlobs, mustHoldChildren := blobs, children
		if !checkRefs {
			// A cached manifest: its references come when asked for, but
			// are recorded below all the same, so gc keeps them.
			mustHoldBlobs, mustHoldChildren = nil, nil
		}
		for _, d := range mustHoldBlobs {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM repo_blobs WHERE repo = ? AND digest = ?`, m.Repo, string(d)).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				missing = append(missing, d)
			} else if err != nil {
				return err
			}
		}
		for _, d := range mustHoldChildren {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM manifests WHERE repo = ? AND digest = ?`, m.Repo, string(d)).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				missing = append(missing, d)
			} else if err != nil {
				return err
			}
		}
		if len(missing) > 0 {
			return &MissingError{Digests: missing}
		}
		if err := ensureRepo(ctx, tx, m.Repo); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO manifests(repo, digest, media_type, size, artifact_type, subject, annotations, created)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			m.Repo, string(m.Digest), m.MediaType, m.Size, m.ArtifactType, string(m.Subject), ann, now); err != nil {
			return err
		}
		for _, list := range [][]digest.Digest{blobs, children} {
			for _, d := range list {
				if _, err := tx.ExecContext(ctx, `INSERT INTO manifest_refs(repo, parent, child) VALUES(?, ?, ?) ON CONFLICT DO NOTHING`, m.Repo, string(m.Digest), string(d)); err != nil {
					return err
				}
			}
		}
		if err := enqueue(ctx, tx, events); err != nil {
			return err
		}
		if tag == "" {
			return nil
		}
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT digest FROM tags WHERE repo = ? AND tag = ?`, m.Repo, tag).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if cur == string(m.Digest) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags(repo, tag, digest, updated) VALUES(?, ?, ?, ?)
			ON CONFLICT(repo, tag) DO UPDATE SET digest = excluded.digest, updated = excluded.updated`, m.Repo, tag, string(m.Digest), now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tag_history(repo, tag, digest, at) VALUES(?, ?, ?, ?)`, m.Repo, tag, string(m.Digest), now)
		return err
	})
}

const manifestCols = `digest, media_type, size, artifact_type, subject, annotations, created`

func scanManifest(repo string, row interface{ Scan(...any) error }) (*Manifest, error) {
	var m Manifest
	var d, subj, ann string
	var created int64
	if err := row.Scan(&d, &m.MediaType, &m.Size, &m.ArtifactType, &subj, &ann, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	m.Repo, m.Digest, m.Subject, m.Created = repo, digest.Digest(d), digest.Digest(subj), time.Unix(0, created)
	if ann != "" {
		_ = json.Unmarshal([]byte(ann), &m.Annotations)
	}
	return &m, nil
}

// GetManifest returns the manifest d of repo.
func (s *Store) GetManifest(ctx context.Context, repo string, d digest.Digest) (*Manifest, error) {
	return scanManifest(repo, s.r.QueryRowContext(ctx, `SELECT `+manifestCols+` FROM manifests WHERE repo = ? AND digest = ?`, repo, string(d)))
}

// ResolveTag returns the manifest tag points at in repo.
func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (*Manifest, error) {
	return scanManifest(repo, s.r.QueryRowContext(ctx, `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, m.created
		FROM tags t JOIN manifests m ON m.repo = t.repo AND m.digest = t.digest WHERE t.repo = ? AND t.tag = ?`, repo, tag))
}

// DeleteManifest removes manifest d and every tag pointing at it (tag history
// is kept), queuing the events describing the delete with it.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest, events ...Event) error {
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM manifests WHERE repo = ? AND digest = ?`, repo, string(d))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE repo = ? AND digest = ?`, repo, string(d)); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM manifest_refs WHERE repo = ? AND parent = ?`, repo, string(d)); err != nil {
			return err
		}
		return enqueue(ctx, tx, events)
	})
}

// DeleteTag removes a tag (the manifest stays), queuing the events
// describing the delete with it.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string, events ...Event) error {
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE repo = ? AND tag = ?`, repo, tag)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return enqueue(ctx, tx, events)
	})
}

// RepoExists tells whether repo has ever held content.
func (s *Store) RepoExists(ctx context.Context, repo string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM repositories WHERE name = ?`, repo).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ListTags returns up to n tags of repo after last in lexical order
// (n < 0: all), and whether more follow.
func (s *Store) ListTags(ctx context.Context, repo, last string, n int) ([]string, bool, error) {
	return s.list(ctx, `SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?`, []any{repo, last}, n)
}

// ListRepositories returns up to n repository names after last (n < 0: all),
// and whether more follow.
func (s *Store) ListRepositories(ctx context.Context, last string, n int) ([]string, bool, error) {
	return s.list(ctx, `SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?`, []any{last}, n)
}

func (s *Store) list(ctx context.Context, q string, args []any, n int) ([]string, bool, error) {
	var limit any = n + 1
	if n < 0 {
		limit = -1 // SQLite: no limit
		if s.pg {
			limit = nil // PostgreSQL: LIMIT NULL is no limit
		}
	}
	rows, err := s.r.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, false, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if n >= 0 && len(out) > n {
		return out[:n], true, nil
	}
	return out, false, nil
}

// Referrers returns the manifests of repo whose subject is d, oldest first.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest) ([]Manifest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+manifestCols+` FROM manifests WHERE repo = ? AND subject = ? ORDER BY created, digest`, repo, string(d))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Manifest
	for rows.Next() {
		m, err := scanManifest(repo, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	return out, rows.Err()
}

// TagHistory returns every digest tag has pointed at, oldest first.
func (s *Store) TagHistory(ctx context.Context, repo, tag string) ([]digest.Digest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT digest FROM tag_history WHERE repo = ? AND tag = ? ORDER BY id`, repo, tag)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []digest.Digest
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, digest.Digest(d))
	}
	return out, rows.Err()
}

// CreateUpload records a new upload session for repo.
func (s *Store) CreateUpload(ctx context.Context, id, repo string) error {
	return s.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO uploads(id, repo, created) VALUES(?, ?, ?)`, id, repo, time.Now().UnixNano())
		return err
	})
}

// UploadRepo returns the repository an upload session belongs to.
func (s *Store) UploadRepo(ctx context.Context, id string) (string, error) {
	var repo string
	err := s.r.QueryRowContext(ctx, `SELECT repo FROM uploads WHERE id = ?`, id).Scan(&repo)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return repo, err
}

// DeleteUpload forgets an upload session.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id)
		return err
	})
}
