package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/server"
)

func TestAdminEvents(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "registry.yaml")
	writeFile(t, cfgPath, "storage: {filesystem: {rootDirectory: "+filepath.Join(dir, "data")+"}}\nnotifications:\n  endpoints:\n  - {name: ci, url: 'http://127.0.0.1:1/hook'}\n  - {name: audit, url: 'http://127.0.0.1:1/hook'}\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := server.OpenMetadata(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"ci", "ci", "old-ci"} {
		if err := meta.Enqueue(context.Background(), metadata.Event{Endpoint: e, Repo: "a", Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	meta.Close()

	out, _, err := runBerth(t, "admin", "events", "list", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ENDPOINT") {
		t.Fatalf("list:\n%s", out)
	}
	for i, want := range [][]string{{"ci", "yes", "2"}, {"audit", "yes", "0", "-"}, {"old-ci", "no", "1"}} {
		if f := strings.Fields(lines[i+1]); len(f) != 4 || !slicesHavePrefix(f, want) {
			t.Errorf("row %d = %q, want it to begin %q", i+1, lines[i+1], want)
		}
	}
	out, _, err = runBerth(t, "admin", "events", "list", "--config", cfgPath, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Endpoint   string
		Configured bool
		Pending    int64
		Oldest     *string
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 || rows[2].Endpoint != "old-ci" || rows[2].Configured || rows[2].Oldest == nil || rows[1].Oldest != nil {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}

	if _, _, err := runBerth(t, "admin", "events", "drop", "--config", cfgPath, "ci"); err == nil || !strings.Contains(err.Error(), `endpoint "ci" is in `) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("dropping a configured endpoint's queue: %v", err)
	}
	if out, _, err := runBerth(t, "admin", "events", "drop", "--config", cfgPath, "old-ci"); err != nil || strings.TrimSpace(out) != "dropped 1 events queued for old-ci" {
		t.Fatalf("drop old-ci: %q, %v", out, err)
	}
	if out, _, err := runBerth(t, "admin", "events", "drop", "--config", cfgPath, "--force", "ci"); err != nil || strings.TrimSpace(out) != "dropped 2 events queued for ci" {
		t.Fatalf("drop --force ci: %q, %v", out, err)
	}
	out, _, _ = runBerth(t, "admin", "events", "list", "--config", cfgPath)
	if strings.Contains(out, "old-ci") || strings.Count(out, " 0 ") < 2 {
		t.Fatalf("after the drops:\n%s", out)
	}
	if _, _, err := runBerth(t, "admin", "events", "list"); err == nil || !strings.Contains(err.Error(), "--config is required: notification queues") {
		t.Fatalf("without --config: %v", err)
	}
}

func slicesHavePrefix(got, want []string) bool {
	for i, w := range want {
		if i >= len(got) || got[i] != w {
			return false
		}
	}
	return true
}
