package metadata

import (
	"context"
	"fmt"
	"time"
)

// Schema versions. schema.sql is version 0, the schema every database began
// with; each later change is one migration below, applied in order inside a
// write transaction that first re-reads PRAGMA user_version, so two processes
// opening the same database at once (berth serve and berth gc) upgrade it
// exactly once. A migration never rewrites a table: existing databases
// upgrade in place. PostgreSQL databases start at postgresBaseVersion (see
// postgres.go) and run the migrations after it, so every migration from
// there on is written for both dialects (tx.pg tells which it runs on).
var migrations = []func(ctx context.Context, tx *txn) error{
	// 1: repo_blobs.linked, the time a link was made or last refreshed, so
	// gc can spare links younger than its grace period; and the indexes gc
	// needs to ask "is this digest referenced anywhere?".
	func(ctx context.Context, tx *txn) error {
		for _, q := range []string{
			`ALTER TABLE repo_blobs ADD COLUMN linked INTEGER NOT NULL DEFAULT 0`,
			// Links that predate the column get the upgrade time, so they
			// enjoy a full grace period: one of them may belong to a push
			// still in flight.
			fmt.Sprintf(`UPDATE repo_blobs SET linked = %d`, time.Now().UnixNano()),
			`CREATE INDEX IF NOT EXISTS repo_blobs_by_digest ON repo_blobs (digest)`,
			`CREATE INDEX IF NOT EXISTS repo_blobs_by_linked ON repo_blobs (linked)`,
			`CREATE INDEX IF NOT EXISTS manifests_by_digest ON manifests (digest)`,
			`CREATE INDEX IF NOT EXISTS manifest_refs_by_child ON manifest_refs (child, repo)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	},
	// 2: manifests.pulled, the last time a manifest was pulled (0: never
	// since it was stored), so a pull-through cache evicts the least
	// recently pulled first.
	func(ctx context.Context, tx *txn) error {
		typ := "INTEGER"
		if tx.pg {
			typ = "BIGINT"
		}
		for _, q := range []string{
			`ALTER TABLE manifests ADD COLUMN pulled ` + typ + ` NOT NULL DEFAULT 0`,
			`CREATE INDEX IF NOT EXISTS manifests_by_pulled ON manifests (pulled)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	},
	// 3: robot_tokens, the robot tokens berth admin token create signed,
	// so they can be listed and revoked one by one (a token is still
	// verified by its signature; this table only says which are revoked).
	// Times are Unix seconds, as in the token; revoked 0 means not.
	func(ctx context.Context, tx *txn) error {
		typ := "INTEGER"
		if tx.pg {
			typ = "BIGINT"
		}
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS robot_tokens (
				id TEXT PRIMARY KEY,
				subject TEXT NOT NULL,
				created ` + typ + ` NOT NULL,
				expires ` + typ + ` NOT NULL,
				revoked ` + typ + ` NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX IF NOT EXISTS robot_tokens_by_revoked ON robot_tokens (revoked)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	},
	// 4: event_queue, the notifications not yet delivered: one row per
	// event and endpoint, written in the same transaction as the change it
	// describes and deleted once the endpoint acknowledged it; and
	// event_leases, which replica delivers an endpoint's queue, so
	// replicas sharing PostgreSQL do not deliver it twice or out of order.
	// body is the event's JSON, opaque to the store. Times are Unix
	// nanoseconds.
	func(ctx context.Context, tx *txn) error {
		seq, typ := "seq INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"
		if tx.pg {
			seq, typ = "seq BIGSERIAL PRIMARY KEY", "BIGINT"
		}
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS event_queue (
				` + seq + `,
				endpoint TEXT NOT NULL,
				repo TEXT NOT NULL,
				body TEXT NOT NULL,
				created ` + typ + ` NOT NULL
			)`,
			`CREATE INDEX IF NOT EXISTS event_queue_by_endpoint ON event_queue (endpoint, seq)`,
			`CREATE TABLE IF NOT EXISTS event_leases (
				endpoint TEXT PRIMARY KEY,
				holder TEXT NOT NULL,
				expires ` + typ + ` NOT NULL
			)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	},
	// 5: maintenance_runs, the record of gc and prune runs (kind "gc" or
	// "prune") and what each freed, for the console's status page. Times
	// are Unix nanoseconds; error is empty for a run that succeeded.
	func(ctx context.Context, tx *txn) error {
		id, typ := "id INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"
		if tx.pg {
			id, typ = "id BIGSERIAL PRIMARY KEY", "BIGINT"
		}
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS maintenance_runs (
				` + id + `,
				kind TEXT NOT NULL,
				started ` + typ + ` NOT NULL,
				finished ` + typ + ` NOT NULL,
				dry_run ` + typ + ` NOT NULL DEFAULT 0,
				blobs ` + typ + ` NOT NULL DEFAULT 0,
				manifests ` + typ + ` NOT NULL DEFAULT 0,
				bytes ` + typ + ` NOT NULL DEFAULT 0,
				error TEXT NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX IF NOT EXISTS maintenance_runs_by_kind ON maintenance_runs (kind, finished)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	},
}

// SchemaVersion is the version OpenSQLite and OpenPostgres upgrade a
// database to.
var SchemaVersion = len(migrations)

// migrate brings the database up to SchemaVersion.
func migrate(ctx context.Context, w conn) error {
	for {
		done, err := migrateOne(ctx, w)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next pending migration, if any, in its own
// transaction.
func migrateOne(ctx context.Context, w conn) (done bool, err error) {
	sqlTx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	tx := &txn{Tx: sqlTx}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return false, err
	}
	if v > len(migrations) {
		return false, fmt.Errorf("schema version %d is newer than this berth understands (%d)", v, len(migrations))
	}
	if v == len(migrations) {
		return true, tx.Rollback()
	}
	if err := migrations[v](ctx, tx); err != nil {
		return false, fmt.Errorf("migration to schema version %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
		return false, err
	}
	return false, tx.Commit()
}
