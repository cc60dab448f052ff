package imageset

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	goldenfile "github.com/berth-registry/berth/internal/golden"
)

const goldenDir = "testdata/golden"

// golden compares got with testdata/golden/<name>.golden, or writes it
// with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join(goldenDir, filepath.FromSlash(name)+".golden"), got)
}

// TestNoStaleGoldens: every file under testdata/golden is one a test
// compares with, so a renamed or removed case leaves nothing behind.
func TestNoStaleGoldens(t *testing.T) {
	want := map[string]bool{}
	for _, n := range planGoldenNames() {
		want[n] = true
	}
	for _, n := range resourceGoldenNames(t) {
		want[n] = true
	}
	var stale []string
	err := filepath.WalkDir(goldenDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(goldenDir, p)
		n := strings.TrimSuffix(filepath.ToSlash(rel), ".golden")
		if !want[n] {
			stale = append(stale, p)
		}
		delete(want, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if goldenfile.Update() {
		for _, p := range stale {
			if err := os.Remove(p); err != nil {
				t.Error(err)
			}
		}
		return
	}
	sort.Strings(stale)
	for _, p := range stale {
		t.Errorf("%s: no test compares with it (remove it, or run -update)", p)
	}
	for n := range want {
		t.Errorf("%s.golden is missing (run -update)", n)
	}
}
