package console_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/api"
	"github.com/berth-registry/berth/internal/console"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/storage"
)

// TestStatusQueues: the status page shows each notification endpoint's
// queue (up to date, or how many events wait and since when) and the
// queues endpoints no longer configured left behind.
func TestStatusQueues(t *testing.T) {
	ctx := context.Background()
	meta, err := metadata.OpenSQLite(ctx, filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	reg := registry.New(storage.NewMemory(), meta, registry.Options{})
	serve := func(endpoints ...string) string {
		h, err := console.New(console.Options{API: api.NewHandler(reg, slog.New(slog.DiscardHandler), api.Options{}), Registry: reg, Meta: meta, Storage: "memory", Endpoints: endpoints})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	c := newClient(t)
	if _, body := get(t, c, serve()+"/status"); !strings.Contains(body, "No webhook endpoint is configured") {
		t.Fatalf("without endpoints:\n%s", body)
	}
	for _, e := range []metadata.Event{
		{Endpoint: "ci", Repo: "a", Body: []byte(`{}`)},
		{Endpoint: "ci", Repo: "a", Body: []byte(`{}`)},
		{Endpoint: "ci", Repo: "b", Body: []byte(`{}`)},
		{Endpoint: "old", Repo: "a", Body: []byte(`{}`)},
	} {
		if err := meta.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	_, body := get(t, c, serve("ci", "audit")+"/status")
	for _, tc := range []struct{ id, want string }{
		{"queue-ci", "3 events waiting, the oldest since "},
		{"queue-audit", "up to date: no event waiting"},
		{"queue-old", "not configured any more; 1 event waiting, the oldest since "},
	} {
		i := strings.Index(body, `id="`+tc.id+`"`)
		if i < 0 {
			t.Fatalf("no %s on the status page:\n%s", tc.id, body)
		}
		line, _, _ := strings.Cut(body[i:], "</dd>")
		if text := strings.Join(strings.Fields(tagRe.ReplaceAllString(line[strings.Index(line, ">")+1:], "")), " "); !strings.HasPrefix(text, tc.want) {
			t.Errorf("%s: %q, want it to begin %q", tc.id, text, tc.want)
		}
	}
	if strings.Index(body, `id="queue-audit"`) > strings.Index(body, `id="queue-old"`) {
		t.Error("a left-behind queue is listed before a configured endpoint")
	}
}
