package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
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
	resp, err := http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	line := func(kind string) string {
		m := regexp.MustCompile(`(?s)<dd id="run-` + kind + `">(.*?)</dd>`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("the status page has no %s line:\n%s", kind, b)
		}
		return strings.Join(strings.Fields(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(string(m[1]), "")), " ")
	}
	if got := line("prune"); !strings.HasPrefix(got, "last ran at ") || !strings.Contains(got, "removed 2 manifests") {
		t.Errorf("prune's line: %q, want a run that removed 2 manifests", got)
	}
	// The two pruned revisions' manifest and config bytes are garbage now.
	if got := line("gc"); !strings.HasPrefix(got, "last ran as a dry run at ") || !strings.Contains(got, "would have removed 4 blobs (") {
		t.Errorf("gc's line: %q, want a dry run that would have removed 4 blobs", got)
	}
}
