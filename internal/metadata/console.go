package metadata

import (
	"context"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// The read queries of the web console (internal/console). They only read,
// and each is written once for both dialects, like every query here.

// RepoFilter selects repository names for ConsoleRepositories.
type RepoFilter struct {
	// Match is the text to look for in the name; empty matches every name.
	Match string
	// Prefix matches names that begin with Match instead of containing it.
	Prefix bool
	// After is the keyset cursor: only names after it, in name order.
	After string
}

// likeEscape quotes LIKE's wildcards so Match is matched literally.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ConsoleRepositories returns up to n repository names after f.After that
// match f, in name order, and whether more follow. Keyset pagination on the
// primary key: a page costs the same wherever it is in a long list.
func (s *Store) ConsoleRepositories(ctx context.Context, f RepoFilter, n int) ([]string, bool, error) {
	q := `SELECT name FROM repositories WHERE name > ?`
	args := []any{f.After}
	if f.Match != "" {
		pat := likeEscape(f.Match) + "%"
		if !f.Prefix {
			pat = "%" + pat
		}
		// Repository names are lower case (the grammar allows nothing
		// else), so LIKE's case rules (SQLite folds ASCII, PostgreSQL does
		// not) cannot differ on them once the query is lower-cased too.
		q += ` AND name LIKE ? ESCAPE '\'`
		args = append(args, strings.ToLower(pat))
	}
	return s.list(ctx, q+` ORDER BY name LIMIT ?`, args, n)
}

// RepoSummary is what the console's repository list shows of one repository.
type RepoSummary struct {
	Name string
	// Tags is the number of tags.
	Tags int
	// Size is the bytes of the blobs the repository holds (each counted
	// once), plus its manifests.
	Size int64
	// LastPush is the newest manifest's or tag move's time; zero if none.
	LastPush time.Time
}

// RepoSummaries returns the summaries of the named repositories, in the
// order given. Each aggregate is one lookup on a primary-key prefix, so a
// page of names costs the same however large the registry is.
func (s *Store) RepoSummaries(ctx context.Context, names []string) ([]RepoSummary, error) {
	out := make([]RepoSummary, 0, len(names))
	if len(names) == 0 {
		return out, nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := s.r.QueryContext(ctx, `SELECT r.name,
			(SELECT COUNT(*) FROM tags t WHERE t.repo = r.name),
			(SELECT COALESCE(SUM(b.size), 0) FROM repo_blobs b WHERE b.repo = r.name),
			(SELECT COALESCE(SUM(m.size), 0) FROM manifests m WHERE m.repo = r.name),
			(SELECT COALESCE(MAX(m.created), 0) FROM manifests m WHERE m.repo = r.name),
			(SELECT COALESCE(MAX(t.updated), 0) FROM tags t WHERE t.repo = r.name)
		FROM repositories r WHERE r.name IN (`+ph+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byName := map[string]RepoSummary{}
	for rows.Next() {
		var rs RepoSummary
		var blobs, manifests, created, updated int64
		if err := rows.Scan(&rs.Name, &rs.Tags, &blobs, &manifests, &created, &updated); err != nil {
			return nil, err
		}
		rs.Size = blobs + manifests
		if last := max(created, updated); last > 0 {
			rs.LastPush = time.Unix(0, last)
		}
		byName[rs.Name] = rs
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if rs, ok := byName[n]; ok {
			out = append(out, rs)
		}
	}
	return out, nil
}

// TagInfo is one tag.
type TagInfo struct {
	Tag    string
	Digest digest.Digest
	// Pushed is when the tag last moved.
	Pushed time.Time
}

// RepoTags returns every tag of repo, in tag order: one range of the tags
// primary key.
func (s *Store) RepoTags(ctx context.Context, repo string) ([]TagInfo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT tag, digest, updated FROM tags WHERE repo = ? ORDER BY tag`, repo)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TagInfo
	for rows.Next() {
		var ti TagInfo
		var d string
		var at int64
		if err := rows.Scan(&ti.Tag, &d, &at); err != nil {
			return nil, err
		}
		ti.Digest, ti.Pushed = digest.Digest(d), time.Unix(0, at)
		out = append(out, ti)
	}
	return out, rows.Err()
}

// TagMove is one entry of a tag's history.
type TagMove struct {
	Tag    string
	Digest digest.Digest
	At     time.Time
}

// ManifestTagHistory returns the history of every tag of repo that has ever
// pointed at d, by tag and then oldest first.
func (s *Store) ManifestTagHistory(ctx context.Context, repo string, d digest.Digest) ([]TagMove, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT tag, digest, at FROM tag_history
		WHERE repo = ? AND tag IN (SELECT tag FROM tag_history WHERE repo = ? AND digest = ?)
		ORDER BY tag, id`, repo, repo, string(d))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TagMove
	for rows.Next() {
		var m TagMove
		var dg string
		var at int64
		if err := rows.Scan(&m.Tag, &dg, &at); err != nil {
			return nil, err
		}
		m.Digest, m.At = digest.Digest(dg), time.Unix(0, at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// Usage is what the metadata says the registry holds.
type Usage struct {
	Repositories, Manifests, Tags int64
	// BlobBytes is the size of the distinct blobs linked anywhere (a blob
	// in several repositories is stored once, and counted once).
	BlobBytes int64
}

// Usage counts the registry's content.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM repositories),
		(SELECT COUNT(*) FROM manifests),
		(SELECT COUNT(*) FROM tags),
		(SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM repo_blobs GROUP BY digest) AS d)`).
		Scan(&u.Repositories, &u.Manifests, &u.Tags, &u.BlobBytes)
	return u, err
}
