package catalog

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-registry/berth/internal/golden"
)

// TestMain fails the run when a golden file under testdata/ belongs to no
// case any more (after a full run; -run selects a subset and skips this).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" {
		stale, _ := filepath.Glob(filepath.Join("testdata", "*", "*.golden"))
		for _, f := range stale {
			if goldenSeen[filepath.ToSlash(f)] {
				continue
			}
			if golden.Update() {
				os.Remove(f)
				continue
			}
			fmt.Fprintf(os.Stderr, "stale golden file %s: no test case writes it (run with -update to remove it)\n", f)
			code = 1
		}
	}
	os.Exit(code)
}
