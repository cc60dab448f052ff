package testpeer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SQL runs one statement with psql, from the same PostgreSQL installation as
// the server, as the cluster's superuser on the database "berth", and
// returns its unaligned, tuples-only output (a single value prints as just
// that value).
func (pg *Postgres) SQL(t testing.TB, statement string) string {
	t.Helper()
	psql := filepath.Join(pg.bin, "psql")
	if _, err := os.Stat(psql); err != nil {
		t.Fatalf("peer PostgreSQL: %s has the server but no psql", pg.bin)
	}
	out, err := pg.command(psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", pg.DSN, "-c", statement).CombinedOutput()
	if err != nil {
		t.Fatalf("peer PostgreSQL: psql %q: %v\n%s", statement, err, out)
	}
	return strings.TrimSpace(string(out))
}
