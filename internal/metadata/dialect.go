package metadata

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Every query is written once, in the SQL both engines share, with SQLite's
// placeholders (? or ?N); conn and txn rebind them to PostgreSQL's $N when
// the store is on PostgreSQL. The few real differences (rowid, LIMIT for
// "all", isolation) are switched on Store.pg where they occur.

// conn is a database handle speaking the store's dialect.
type conn struct {
	*sql.DB
	pg bool
}

func (c conn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.DB.ExecContext(ctx, bind(c.pg, q), args...)
}

func (c conn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.DB.QueryContext(ctx, bind(c.pg, q), args...)
}

func (c conn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return c.DB.QueryRowContext(ctx, bind(c.pg, q), args...)
}

// txn is a transaction speaking the store's dialect.
type txn struct {
	*sql.Tx
	pg bool
}

func (t *txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, bind(t.pg, q), args...)
}

func (t *txn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, bind(t.pg, q), args...)
}

func (t *txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, bind(t.pg, q), args...)
}

// bind rewrites ? and ?N placeholders as $N for PostgreSQL. The queries
// hold no ? inside string literals.
func bind(pg bool, q string) string {
	if !pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		b.WriteByte('$')
		if i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
			continue // ?N keeps its number
		}
		n++
		b.WriteString(itoa(n))
	}
	return b.String()
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// rowID names the physical row identifier DELETE ... WHERE id IN (SELECT id
// ... LIMIT n) batches by.
func (s *Store) rowID() string {
	if s.pg {
		return "ctid"
	}
	return "rowid"
}

// maxAttempts bounds how often a PostgreSQL transaction is retried after a
// serialization failure; each retry waits a little longer, with jitter, so
// a crowd of writers on one tag drains instead of colliding in lockstep.
const maxAttempts = 64

// tx runs fn in a write transaction and commits it.
//
// SQLite has one writer (one connection, BEGIN IMMEDIATE): transactions are
// serial by construction. PostgreSQL has many writers in many processes, so
// its transactions run SERIALIZABLE, which promises the same outcome as some
// serial order: "check references, then insert" in PutManifest and the
// re-checked conditional deletes of gc (RemoveStaleLinks,
// DeleteManifestIfUnused) cannot both commit on a stale view of each other;
// one fails with SQLSTATE 40001 and is run again from the start here, now
// seeing the other's commit. fn must therefore be safe to run more than once
// (it only reads its arguments and the database).
func (s *Store) tx(ctx context.Context, fn func(*txn) error) error {
	if !s.pg {
		sqlTx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		return runTx(&txn{Tx: sqlTx}, fn)
	}
	for attempt := 1; ; attempt++ {
		sqlTx, err := s.w.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
		if err != nil {
			return err
		}
		err = runTx(&txn{Tx: sqlTx, pg: true}, fn)
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		wait := time.Duration(min(attempt, 20)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait/2 + rand.N(wait)):
		}
	}
}

func runTx(tx *txn, fn func(*txn) error) error {
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// retryable tells whether err is a PostgreSQL serialization failure or
// deadlock, after which the transaction may simply be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}
