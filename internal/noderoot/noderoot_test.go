package noderoot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-registry/berth/internal/policy"
)

// rootA and rootB differ in which files they hold as well as in content, so
// a mix of the two is always visible.
func rootA() map[string][]byte {
	files := map[string][]byte{
		policy.RegistriesConfPath: []byte("# A\n"),
		policy.PolicyJSONPath:     []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`),
	}
	for i := 0; i < 4; i++ {
		files[fmt.Sprintf("%s/a%d.example.com/ca.crt", policy.DockerCertsDir, i)] = bytes.Repeat([]byte{'a'}, 32<<10)
	}
	return files
}

func rootB() map[string][]byte {
	files := map[string][]byte{
		policy.RegistriesConfPath:       []byte("# B\n"),
		policy.PolicyJSONPath:           []byte(`{"default":[{"type":"reject"}]}`),
		"etc/crio/policies/team-a.json": []byte(`{"default":[{"type":"reject"}]}`),
		policy.SigstoreRegistriesPath:   []byte("docker: {}\n"),
	}
	for i := 0; i < 4; i++ {
		files[fmt.Sprintf("%s/b%d.example.com/ca.crt", policy.ContainersCertsDir, i)] = bytes.Repeat([]byte{'b'}, 32<<10)
	}
	return files
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		got[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func noExchange(a, b string) error { return errNoExchange }

var swaps = []struct {
	name     string
	exchange func(a, b string) error
}{
	{"exchange", exchange},
	{"two renames", noExchange},
}

func TestWriteReplacesTheWholeRoot(t *testing.T) {
	for _, s := range swaps {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "node")
			for i, want := range []map[string][]byte{rootA(), rootB(), rootA()} {
				if err := write(root, want, s.exchange); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				if diff := cmp.Diff(want, readTree(t, root)); diff != "" {
					t.Fatalf("write %d: root differs (-want +got):\n%s", i, diff)
				}
				entries, _ := os.ReadDir(dir)
				if len(entries) != 1 {
					t.Fatalf("write %d left %d entries beside the root", i, len(entries))
				}
			}
		})
	}
}

func TestWriteRefusesAPathOutsideTheRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "node")
	if err := Write(root, rootA()); err != nil {
		t.Fatal(err)
	}
	bad := rootB()
	bad["../escaped"] = []byte("x")
	err := Write(root, bad)
	if err == nil || !strings.Contains(err.Error(), `refusing to write "../escaped" outside the root`) {
		t.Fatalf("err = %v", err)
	}
	if diff := cmp.Diff(rootA(), readTree(t, root)); diff != "" {
		t.Fatalf("a refused write changed the root:\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "escaped")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("escaped file written: %v", err)
	}
}

func TestPrevious(t *testing.T) {
	base := policy.Base{RegistriesConf: []byte("stock conf"), PolicyJSON: []byte("stock policy")}
	stock := map[string][]byte{policy.RegistriesConfPath: base.RegistriesConf, policy.PolicyJSONPath: base.PolicyJSON}
	dir := t.TempDir()

	got, err := Previous(filepath.Join(dir, "absent"), base)
	if err != nil || !cmp.Equal(stock, got) {
		t.Fatalf("absent root: %v %v", got, err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if got, err := Previous(empty, base); err != nil || !cmp.Equal(stock, got) {
		t.Fatalf("empty root: %v %v", got, err)
	}
	root := filepath.Join(dir, "node")
	if err := Write(root, rootB()); err != nil {
		t.Fatal(err)
	}
	if got, err := Previous(root, base); err != nil || !cmp.Equal(rootB(), got) {
		t.Fatalf("previous render: %v", err)
	}
	os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("x"), 0o644)
	_, err = Previous(root, base)
	if err == nil || !strings.Contains(err.Error(), "holds etc/hosts, which berth policy render did not write") {
		t.Fatalf("foreign file: err = %v", err)
	}
}

func TestRendered(t *testing.T) {
	for rel, want := range map[string]bool{
		policy.RegistriesConfPath:                              true,
		policy.SearchDropInPath:                                true,
		policy.PolicyJSONPath:                                  true,
		"etc/docker/certs.d/quay.io/ca.crt":                    true,
		"etc/containers/certs.d/host..5000/ca.crt":             true,
		"etc/containers/certs.d/quay.io/client.key":            false,
		"etc/containers/certs.d/a/b/ca.crt":                    false,
		"etc/containers/registries.d/sigstore-registries.yaml": true,
		"etc/containers/registries.d/other.yaml":               false,
		"etc/crio/policies/team-a.json":                        true,
		"etc/crio/policies/.json":                              false,
		"etc/crio/policies/a/b.json":                           false,
		"etc/containers/registries.conf.d/99-mine.conf":        false,
		"etc/hosts": false,
	} {
		if got := Rendered(rel); got != want {
			t.Errorf("Rendered(%q) = %v, want %v", rel, got, want)
		}
	}
}

// A swap the fallback left half-done is finished or rolled back, and read
// meanwhile from where the old root waits.
func TestInterruptedFallbackSwap(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "node")
	if err := Write(root, rootA()); err != nil {
		t.Fatal(err)
	}
	// Crash between the two renames: the old root aside, no root.
	if err := os.Rename(root, oldPath(root)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(File(root, policy.RegistriesConfPath)); err != nil {
		t.Fatalf("File does not find the old root: %v", err)
	}
	if _, err := Previous(root, policy.StockBase()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rootA(), readTree(t, root)); diff != "" {
		t.Fatalf("old root not put back:\n%s", diff)
	}
	// Crash after the second rename: new root in place, the old one still aside.
	os.Mkdir(oldPath(root), 0o755)
	os.WriteFile(filepath.Join(oldPath(root), "leftover"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, ".node.tmp-123"), 0o755)
	if err := Write(root, rootB()); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("leftovers stay beside the root: %v", entries)
	}
}

// TestCrashLeavesOldOrNewRoot kills a process that renders two different
// roots in turn, at random instants, many times: afterwards the root (once
// an interrupted fallback swap is recovered) is always exactly one of them.
func TestCrashLeavesOldOrNewRoot(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for _, s := range swaps {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "node")
			start := time.Now()
			if err := Write(root, rootA()); err != nil {
				t.Fatal(err)
			}
			// Kill instants spread over a few renders' time, this machine's.
			span := 3 * time.Since(start)
			sawA, sawB := false, false
			for i := 0; i < 10; i++ {
				cmd := exec.Command(self)
				cmd.Env = append(os.Environ(), "NODEROOT_CRASH_HELPER="+root, "NODEROOT_CRASH_SWAP="+s.name)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5*time.Millisecond + time.Duration(rng.Int63n(int64(span))))
				_ = cmd.Process.Kill()
				if err := cmd.Wait(); err == nil || strings.Contains(out.String(), "FAIL") {
					t.Fatalf("helper was not killed while rendering: %v\n%s", err, out.String())
				}
				if s.name == "exchange" {
					if _, err := os.Stat(root); err != nil {
						t.Fatalf("kill %d: no root after a crash with the atomic exchange: %v", i, err)
					}
				}
				if err := recoverRoot(root); err != nil {
					t.Fatal(err)
				}
				got := readTree(t, root)
				switch {
				case cmp.Equal(got, rootA()):
					sawA = true
				case cmp.Equal(got, rootB()):
					sawB = true
				default:
					t.Fatalf("kill %d left a root that is neither A nor B: %d files", i, len(got))
				}
			}
			t.Logf("kills left A %v, B %v", sawA, sawB)
		})
	}
}

// TestMain runs the process TestCrashLeavesOldOrNewRoot kills, when asked:
// it renders B and A in turn until killed.
func TestMain(m *testing.M) {
	root := os.Getenv("NODEROOT_CRASH_HELPER")
	if root == "" {
		os.Exit(m.Run())
	}
	ex := exchange
	if os.Getenv("NODEROOT_CRASH_SWAP") != "exchange" {
		ex = noExchange
	}
	for {
		for _, files := range []map[string][]byte{rootB(), rootA()} {
			if err := write(root, files, ex); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL:", err)
				os.Exit(2)
			}
		}
	}
}
