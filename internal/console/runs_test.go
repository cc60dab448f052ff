package console_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/api"
	"github.com/berth-registry/berth/internal/console"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
)

// storeConsole serves a console over a real SQLite metadata store and a
// memory blob store, with ups as its pull-through upstreams, and returns
// its URL and the stores.
func storeConsole(t *testing.T, ups ...console.Upstream) (string, *metadata.Store, *registry.Registry) {
	t.Helper()
	meta, err := metadata.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	reg := registry.New(storage.NewMemory(), meta, registry.Options{})
	h, err := console.New(console.Options{API: api.NewHandler(reg, slog.New(slog.DiscardHandler), api.Options{}), Registry: reg, Meta: meta, Storage: "memory", Upstreams: ups})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, meta, reg
}

var tagRe = regexp.MustCompile(`<[^>]+>`)

// runLine is the status page's text for one kind of run.
func runLine(t *testing.T, body, kind string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<dd id="run-` + kind + `">(.*?)</dd>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the status page has no line for %s:\n%s", kind, body)
	}
	return strings.Join(strings.Fields(tagRe.ReplaceAllString(m[1], "")), " ")
}

// TestStatusRuns: the status page says "never run" until a run is
// recorded, then the last run of each kind: when, how long, what it freed
// (or would have, on a dry run), or its error.
func TestStatusRuns(t *testing.T) {
	base, meta, _ := storeConsole(t)
	c := newClient(t)
	_, body := get(t, c, base+"/status")
	for _, k := range []string{"gc", "prune"} {
		if got := runLine(t, body, k); got != "never run" {
			t.Errorf("%s before any run: %q, want never run", k, got)
		}
	}
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, r := range []metadata.MaintenanceRun{
		{Kind: metadata.RunGC, Started: at.Add(-time.Hour), Finished: at.Add(-time.Hour + time.Second), Blobs: 1, Bytes: 1},
		{Kind: metadata.RunGC, Started: at.Add(-1500 * time.Millisecond), Finished: at, Blobs: 12, Bytes: 3 << 20},
		{Kind: metadata.RunPrune, Started: at.Add(-2 * time.Minute), Finished: at, Error: "prune: listing repositories: database is locked"},
	} {
		if err := meta.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	_, body = get(t, c, base+"/status")
	for _, tc := range []struct{ kind, want string }{
		{"gc", "last ran at 2026-03-04 05:06:07 UTC, taking 1.5s; removed 12 blobs (3 MiB)"},
		{"prune", "failed at 2026-03-04 05:06:07 UTC, taking 2m0s; error: prune: listing repositories: database is locked"},
	} {
		if got := runLine(t, body, tc.kind); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.kind, got, tc.want)
		}
	}
	later := at.Add(time.Hour)
	if err := meta.RecordRun(ctx, metadata.MaintenanceRun{Kind: metadata.RunPrune, Started: later.Add(-40 * time.Millisecond), Finished: later, DryRun: true, Manifests: 4}); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, c, base+"/status")
	want := "last ran as a dry run at 2026-03-04 06:06:07 UTC, taking 40ms; would have removed 4 manifests (their bytes go at the next garbage collection)"
	if got := runLine(t, body, "prune"); got != want {
		t.Errorf("prune after a dry run:\n got %q\nwant %q", got, want)
	}
}
