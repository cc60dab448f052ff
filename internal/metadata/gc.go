package metadata

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"
)

// Queries for internal/gc: garbage collection and pruning. Every write here
// re-checks its condition inside its own transaction, so a decision taken on
// an earlier read is never applied to rows a concurrent push changed since.

// Link is one repository's link to a blob.
type Link struct {
	Repo   string
	Digest digest.Digest
	Size   int64
}

// staleLinkBatch bounds how many links one transaction removes, so pushes
// waiting for the write lock wait for a batch, not for the whole sweep.
const staleLinkBatch = 500

const staleLinkCond = `linked < ? AND NOT EXISTS (
	SELECT 1 FROM manifest_refs r WHERE r.repo = repo_blobs.repo AND r.child = repo_blobs.digest)`

// StaleLinks returns the blob links made (or last refreshed) before before
// that no manifest of their repository references.
func (s *Store) StaleLinks(ctx context.Context, before time.Time) ([]Link, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT repo, digest, size FROM repo_blobs WHERE `+staleLinkCond+` ORDER BY repo, digest`, before.UnixNano())
	if err != nil {
		return nil, err
	}
	return scanLinks(rows)
}

// RemoveStaleLinks deletes the links StaleLinks would return, in batches,
// each batch re-evaluating the condition in its own write transaction: a
// manifest that starts referencing a link commits either before the batch
// (and the link stays) or after it (and the manifest push is refused for the
// missing blob, never accepted with a dangling reference).
func (s *Store) RemoveStaleLinks(ctx context.Context, before time.Time) ([]Link, error) {
	var out []Link
	for {
		var batch []Link
		err := s.tx(ctx, func(tx *txn) error {
			rows, err := tx.QueryContext(ctx, `DELETE FROM repo_blobs WHERE `+s.rowID()+` IN (
				SELECT `+s.rowID()+` FROM repo_blobs WHERE `+staleLinkCond+` LIMIT ?)
				RETURNING repo, digest, size`, before.UnixNano(), staleLinkBatch)
			if err != nil {
				return err
			}
			batch, err = scanLinks(rows)
			return err
		})
		if err != nil {
			return out, err
		}
		out = append(out, batch...)
		if len(batch) < staleLinkBatch {
			return out, nil
		}
	}
}

func scanLinks(rows *sql.Rows) ([]Link, error) {
	defer rows.Close()
	var out []Link
	for rows.Next() {
		var l Link
		var d string
		if err := rows.Scan(&l.Repo, &d, &l.Size); err != nil {
			return nil, err
		}
		l.Digest = digest.Digest(d)
		out = append(out, l)
	}
	return out, rows.Err()
}

// BlobReferenced tells whether any repository links blob d, holds a manifest
// with digest d (manifest bytes live in the blob store too), or has a
// manifest that references d.
func (s *Store) BlobReferenced(ctx context.Context, d digest.Digest) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 WHERE
		EXISTS (SELECT 1 FROM repo_blobs WHERE digest = ?1) OR
		EXISTS (SELECT 1 FROM manifests WHERE digest = ?1) OR
		EXISTS (SELECT 1 FROM manifest_refs WHERE child = ?1)`, string(d)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// BlobUsage tells which repositories link blob d and whether any manifest is
// d or references it; gc's dry run uses it to foresee the effect of removing
// stale links.
func (s *Store) BlobUsage(ctx context.Context, d digest.Digest) (linkedIn []string, inManifests bool, err error) {
	rows, err := s.r.QueryContext(ctx, `SELECT repo FROM repo_blobs WHERE digest = ? ORDER BY repo`, string(d))
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, false, err
		}
		linkedIn = append(linkedIn, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	var one int
	err = s.r.QueryRowContext(ctx, `SELECT 1 WHERE
		EXISTS (SELECT 1 FROM manifests WHERE digest = ?1) OR
		EXISTS (SELECT 1 FROM manifest_refs WHERE child = ?1)`, string(d)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return linkedIn, false, nil
	}
	return linkedIn, err == nil, err
}

// RepoGraph is a repository's manifests and how they relate, as prune needs
// them. It is read in one transaction, so it is a consistent snapshot.
type RepoGraph struct {
	// Manifests by digest.
	Manifests map[digest.Digest]ManifestNode
	// Children maps a manifest to the manifests it references (an index's
	// entries); blob references are left out.
	Children map[digest.Digest][]digest.Digest
	// Tags maps each tag to the manifest it points at now.
	Tags map[string]digest.Digest
	// History maps each tag to every digest it has pointed at, oldest first.
	History map[string][]digest.Digest
}

// ManifestNode is the part of a manifest prune looks at.
type ManifestNode struct {
	Subject digest.Digest
	Created time.Time
}

// ReadRepoGraph reads repo's RepoGraph.
func (s *Store) ReadRepoGraph(ctx context.Context, repo string) (*RepoGraph, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.pg {
		// One snapshot for all four queries, as SQLite's read transaction
		// gives.
		opts.Isolation = sql.LevelRepeatableRead
	}
	sqlTx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer sqlTx.Rollback()
	tx := &txn{Tx: sqlTx, pg: s.pg}
	g := &RepoGraph{
		Manifests: map[digest.Digest]ManifestNode{},
		Children:  map[digest.Digest][]digest.Digest{},
		Tags:      map[string]digest.Digest{},
		History:   map[string][]digest.Digest{},
	}
	each := func(q string, fn func(a, b string, n int64)) error {
		rows, err := tx.QueryContext(ctx, q, repo)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a, b string
			var n int64
			if err := rows.Scan(&a, &b, &n); err != nil {
				return err
			}
			fn(a, b, n)
		}
		return rows.Err()
	}
	if err := each(`SELECT digest, subject, created FROM manifests WHERE repo = ?`, func(d, subj string, created int64) {
		g.Manifests[digest.Digest(d)] = ManifestNode{Subject: digest.Digest(subj), Created: time.Unix(0, created)}
	}); err != nil {
		return nil, err
	}
	if err := each(`SELECT r.parent, r.child, 0 FROM manifest_refs r JOIN manifests m ON m.repo = r.repo AND m.digest = r.child
		WHERE r.repo = ?1 ORDER BY r.parent, r.child`, func(p, c string, _ int64) {
		g.Children[digest.Digest(p)] = append(g.Children[digest.Digest(p)], digest.Digest(c))
	}); err != nil {
		return nil, err
	}
	if err := each(`SELECT tag, digest, 0 FROM tags WHERE repo = ?`, func(tag, d string, _ int64) {
		g.Tags[tag] = digest.Digest(d)
	}); err != nil {
		return nil, err
	}
	if err := each(`SELECT tag, digest, id FROM tag_history WHERE repo = ? ORDER BY id`, func(tag, d string, _ int64) {
		g.History[tag] = append(g.History[tag], digest.Digest(d))
	}); err != nil {
		return nil, err
	}
	return g, nil
}

// ErrInUse is returned by DeleteManifestIfUnused when a tag points at the
// manifest or another manifest of the repository references it.
var ErrInUse = errors.New("in use")

// DeleteManifestIfUnused deletes manifest d of repo, as DeleteManifest does,
// but only if, at the moment of deleting, no tag points at it and no other
// manifest of repo references it; otherwise it returns ErrInUse.
func (s *Store) DeleteManifestIfUnused(ctx context.Context, repo string, d digest.Digest) error {
	return s.tx(ctx, func(tx *txn) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 WHERE
			EXISTS (SELECT 1 FROM tags WHERE repo = ?1 AND digest = ?2) OR
			EXISTS (SELECT 1 FROM manifest_refs WHERE repo = ?1 AND child = ?2 AND parent != ?2)`, repo, string(d)).Scan(&one)
		if err == nil {
			return ErrInUse
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM manifests WHERE repo = ? AND digest = ?`, repo, string(d))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM manifest_refs WHERE repo = ? AND parent = ?`, repo, string(d))
		return err
	})
}
