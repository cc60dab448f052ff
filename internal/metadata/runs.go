package metadata

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The kinds of maintenance run RecordRun keeps.
const (
	RunGC    = "gc"
	RunPrune = "prune"
)

// MaintenanceRun is the record of one gc or prune run, scheduled by berth
// serve or started from the CLI, for the console's status page.
type MaintenanceRun struct {
	// Kind is RunGC or RunPrune.
	Kind              string
	Started, Finished time.Time
	// DryRun: the run only reported what it would remove.
	DryRun bool
	// Blobs and Manifests count what was removed (or would be, on a dry
	// run); Bytes is the blob bytes freed. gc removes blobs, prune
	// manifests (their bytes go at the next gc).
	Blobs, Manifests int
	Bytes            int64
	// Error is why the run failed; empty when it succeeded.
	Error string
}

// Duration is how long the run took.
func (r MaintenanceRun) Duration() time.Duration { return r.Finished.Sub(r.Started) }

// RecordRun records a finished maintenance run.
func (s *Store) RecordRun(ctx context.Context, r MaintenanceRun) error {
	if r.Kind != RunGC && r.Kind != RunPrune {
		return errors.New(`metadata: a maintenance run's kind is "gc" or "prune", not "` + r.Kind + `"`)
	}
	dry := 0
	if r.DryRun {
		dry = 1
	}
	return s.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO maintenance_runs(kind, started, finished, dry_run, blobs, manifests, bytes, error)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Kind, r.Started.UnixNano(), r.Finished.UnixNano(), dry, r.Blobs, r.Manifests, r.Bytes, r.Error)
		return err
	})
}

// LastRun returns the run of kind that finished last (a dry run or a
// failure included); ErrNotFound when none was ever recorded.
func (s *Store) LastRun(ctx context.Context, kind string) (*MaintenanceRun, error) {
	r := MaintenanceRun{Kind: kind}
	var started, finished, dry int64
	err := s.r.QueryRowContext(ctx, `SELECT started, finished, dry_run, blobs, manifests, bytes, error FROM maintenance_runs
		WHERE kind = ? ORDER BY finished DESC, id DESC LIMIT 1`, kind).
		Scan(&started, &finished, &dry, &r.Blobs, &r.Manifests, &r.Bytes, &r.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.Started, r.Finished, r.DryRun = time.Unix(0, started), time.Unix(0, finished), dry != 0
	return &r, nil
}
