package metadata

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Queries for internal/pullthrough. A pull-through cache's repositories are
// those under its prefixes; their content is ordinary content, so these
// only add what a cache needs on top: storing a manifest before what it
// references, the time of the last pull, and eviction.

// PutCachedManifest records a manifest filled from an upstream, as
// PutManifest does, except that the blobs and child manifests it references
// need not be held yet: a cache fetches them when they are asked for. The
// references are recorded all the same, so gc and prune treat them exactly
// as a pushed manifest's.
func (s *Store) PutCachedManifest(ctx context.Context, m Manifest, blobs, children []digest.Digest, tag string) error {
	return s.putManifest(ctx, m, blobs, children, tag, false, nil)
}

// MarkPulled records that manifest d of repo was pulled at at.
func (s *Store) MarkPulled(ctx context.Context, repo string, d digest.Digest, at time.Time) error {
	return s.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE manifests SET pulled = ? WHERE repo = ? AND digest = ? AND pulled < ?`, at.UnixNano(), repo, string(d), at.UnixNano())
		return err
	})
}

// PulledManifest is a cached manifest with the time it was last pulled
// (its creation when it was never pulled since).
type PulledManifest struct {
	Repo       string
	Digest     digest.Digest
	LastPulled time.Time
}

// underPrefixes is a condition on column col: it is one of the repository
// names under the prefixes, matched on whole path components.
func underPrefixes(col string, prefixes []string) (string, []any) {
	if len(prefixes) == 0 {
		return "1 = 0", nil
	}
	var conds []string
	var args []any
	for _, p := range prefixes {
		p = strings.TrimSuffix(p, "/") + "/"
		conds = append(conds, `substr(`+col+`, 1, ?) = ?`)
		args = append(args, len(p), p)
	}
	return "(" + strings.Join(conds, " OR ") + ")", args
}

// LeastRecentlyPulled returns up to n manifests of the repositories under
// prefixes last pulled before before, least recently pulled first.
func (s *Store) LeastRecentlyPulled(ctx context.Context, prefixes []string, before time.Time, n int) ([]PulledManifest, error) {
	cond, args := underPrefixes("repo", prefixes)
	q := `SELECT repo, digest, CASE WHEN pulled > created THEN pulled ELSE created END AS last FROM manifests
		WHERE ` + cond + ` AND (CASE WHEN pulled > created THEN pulled ELSE created END) < ? ORDER BY last, repo, digest LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, before.UnixNano(), n)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PulledManifest
	for rows.Next() {
		var m PulledManifest
		var d string
		var last int64
		if err := rows.Scan(&m.Repo, &d, &last); err != nil {
			return nil, err
		}
		m.Digest, m.LastPulled = digest.Digest(d), time.Unix(0, last)
		out = append(out, m)
	}
	return out, rows.Err()
}

// CachedBytes is the size of what the repositories under prefixes hold:
// each distinct blob they link once, plus their manifests.
func (s *Store) CachedBytes(ctx context.Context, prefixes []string) (int64, error) {
	bc, bargs := underPrefixes("repo", prefixes)
	mc, margs := underPrefixes("repo", prefixes)
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT SUM(size) FROM (SELECT digest, MAX(size) AS size FROM repo_blobs WHERE `+bc+` GROUP BY digest) b), 0) +
		COALESCE((SELECT SUM(size) FROM (SELECT digest, MAX(size) AS size FROM manifests WHERE `+mc+` GROUP BY digest) m), 0)`,
		append(bargs, margs...)...).Scan(&n)
	return n, err
}

// ManifestRefs returns what manifest d of repo references (blobs and child
// manifests).
func (s *Store) ManifestRefs(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT child FROM manifest_refs WHERE repo = ? AND parent = ? ORDER BY child`, repo, string(d))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []digest.Digest
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, digest.Digest(c))
	}
	return out, rows.Err()
}

// EvictManifest removes manifest d of repo, the tags pointing at it, and
// then the repository's blob links no manifest left in it references, all
// in one transaction, but only if the manifest was not pulled at or after
// notPulledSince (a pull that raced the decision keeps it: ErrInUse). It
// returns the links removed; their bytes may still be used elsewhere, which
// the caller checks with BlobReferenced before deleting them. Tag history
// is kept.
func (s *Store) EvictManifest(ctx context.Context, repo string, d digest.Digest, notPulledSince time.Time) ([]Link, error) {
	var out []Link
	err := s.tx(ctx, func(tx *txn) error {
		out = nil
		var pulled int64
		err := tx.QueryRowContext(ctx, `SELECT pulled FROM manifests WHERE repo = ? AND digest = ?`, repo, string(d)).Scan(&pulled)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if pulled >= notPulledSince.UnixNano() {
			return ErrInUse
		}
		for _, q := range []string{
			`DELETE FROM manifests WHERE repo = ? AND digest = ?`,
			`DELETE FROM tags WHERE repo = ? AND digest = ?`,
			`DELETE FROM manifest_refs WHERE repo = ? AND parent = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, repo, string(d)); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, `DELETE FROM repo_blobs WHERE repo = ?1 AND NOT EXISTS (
			SELECT 1 FROM manifest_refs r WHERE r.repo = ?1 AND r.child = repo_blobs.digest)
			RETURNING repo, digest, size`, repo)
		if err != nil {
			return err
		}
		out, err = scanLinks(rows)
		return err
	})
	return out, err
}
