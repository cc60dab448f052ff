// Package servertest starts an in-process `berth serve` on a loopback port for
// tests in other packages (conformance, client round trips, mirroring).
package servertest

import "testing"

// Options tweak the test server; the zero value is the embedded default
// (filesystem storage under t.TempDir(), deletes enabled).
type Options struct {
	// Root is the storage directory; empty means a fresh t.TempDir().
	Root string
	// ReadOnly refuses pushes and deletes.
	ReadOnly bool
}

// Start runs berth serve until the test ends and returns its host:port
// (plain HTTP).
func Start(t testing.TB, opts Options) string {
	t.Helper()
	t.Fatal("servertest.Start: berth serve is not wired yet")
	return ""
}
