package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/server/servertest"
)

// TestGCAndPruneRecorded: berth prune and berth gc on a live serve's root
// record their runs, dry runs as dry runs, and the serve's console status
// page shows them.
func TestGCAndPruneRecorded(t *testing.T) {
	root := t.TempDir()
	base := "http://" + servertest.Start(t, servertest.Options{Root: root})
	for i := range 3 {
		gcPushRevision(t, base, "app", "latest", fmt.Sprintf("recorded config %d", i))
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := runGC(t, "prune", "--root", root, "--keep-tag-revisions", "1", "--keep-younger-than", "50ms"); err != nil {
		t.Fatal(err)
	}
	if _, err := runGC(t, "gc", "--root", root, "--grace", "1ms", "--dry-run"); err != nil {
		t.Fatal(err)
	}
	lines := statusRuns(t, base)
	line := func(kind string) string { return lines[kind] }
	if got := line("prune"); !strings.HasPrefix(got, "last ran at ") || !strings.Contains(got, "removed 2 manifests") {
		t.Errorf("prune's line: %q, want a run that removed 2 manifests", got)
	}
	// The two pruned revisions' manifest and config bytes are garbage now.
	if got := line("gc"); !strings.HasPrefix(got, "last ran as a dry run at ") || !strings.Contains(got, "would have removed 4 blobs (") {
		t.Errorf("gc's line: %q, want a dry run that would have removed 4 blobs", got)
	}
}

var runLineRe = regexp.MustCompile(`(?s)<dd id="run-(gc|prune)">(.*?)</dd>`)

// statusRuns reads the console status page's gc and prune lines as text.
func statusRuns(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := map[string]string{}
	for _, m := range runLineRe.FindAllSubmatch(b, -1) {
		out[string(m[1])] = strings.Join(strings.Fields(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(string(m[2]), "")), " ")
	}
	if len(out) != 2 {
		t.Fatalf("the status page has no gc and prune lines:\n%s", b)
	}
	return out
}

// TestScheduledRunsRecorded: berth serve's scheduled prune and gc record
// each run; the status page shows a prune that removed the old revision
// and a gc that removed its bytes.
func TestScheduledRunsRecorded(t *testing.T) {
	root := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(cfg, []byte("gc:\n  interval: 300ms\n  gracePeriod: 1ms\nprune:\n  enabled: true\n  interval: 300ms\n  keepTagRevisions: 1\n  keepYoungerThan: 1ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := "http://" + startServe(t, root, "--config", cfg).addr
	for i := range 2 {
		gcPushRevision(t, base, "app", "latest", fmt.Sprintf("scheduled config %d", i))
	}
	var prunes, gcs []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		l := statusRuns(t, base)
		prunes, gcs = append(prunes, l["prune"]), append(gcs, l["gc"])
		if slices.ContainsFunc(prunes, removed("removed 1 manifests")) && slices.ContainsFunc(gcs, removed("removed 2 blobs")) {
			return
		}
		time.Sleep(40 * time.Millisecond)
	}
	t.Fatalf("in 20s the status page never showed a prune removing the old revision and a gc removing its 2 blobs;\nprune lines: %v\ngc lines: %v", slices.Compact(prunes), slices.Compact(gcs))
}

func removed(what string) func(string) bool {
	return func(l string) bool { return strings.HasPrefix(l, "last ran at ") && strings.Contains(l, what) }
}
