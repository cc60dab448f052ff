package metadata

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed schema_postgres.sql
var schemaPostgres string

// postgresBaseVersion is the schema version schema_postgres.sql creates:
// PostgreSQL support began at this version, so a PostgreSQL database never
// runs the migrations before it.
const postgresBaseVersion = 1

// postgresMigrateLock is the advisory lock key that serialises schema setup
// and upgrades between replicas starting at once ("berth" in ASCII).
const postgresMigrateLock = 0x6265727468

// OpenPostgres connects to the PostgreSQL database dsn names (a URL like
// postgres://user:pass@host:5432/db?sslmode=require, or key=value pairs),
// creating or upgrading the schema. Several processes may share the
// database: that is what it is for.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, errors.New("metadata: the PostgreSQL DSN is not a valid connection string (want postgres://user:password@host:5432/database?sslmode=...)")
	}
	where := fmt.Sprintf("PostgreSQL database %q on %s:%d", cfg.Database, cfg.Host, cfg.Port)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	c := conn{DB: db, pg: true}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("metadata: connect to %s: %w", where, err)
	}
	if err := migratePostgres(ctx, c); err != nil {
		db.Close()
		return nil, fmt.Errorf("metadata: set up schema in %s: %w", where, err)
	}
	return &Store{w: c, r: c, pg: true}, nil
}

// migratePostgres creates the schema in an empty database, or applies the
// pending migrations, in one transaction holding an advisory lock, so
// replicas starting together do it exactly once. The version lives in the
// one-row table schema_version (PostgreSQL has no PRAGMA user_version).
func migratePostgres(ctx context.Context, c conn) error {
	sqlTx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	tx := &txn{Tx: sqlTx, pg: true}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(postgresMigrateLock)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, schemaPostgres); err != nil {
			return err
		}
		v = postgresBaseVersion
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES(?)`, v); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this berth understands (%d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if err := migrations[v](ctx, tx); err != nil {
			return fmt.Errorf("migration to schema version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}
