package testpeer

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildBerth builds this module's ./cmd/berth into dir with the
// environment's build settings (scripts/test's CGO_ENABLED and GOFLAGS),
// so the build cache the other packages' tests filled serves it; without
// symbols and DWARF, which only cost link time. Test packages that run
// berth as a process call it once, from TestMain.
func BuildBerth(dir string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	bin := filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-ldflags", "-s -w", "-o", bin, "./cmd/berth")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	DieWithTest(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/berth: %w\n%s", err, out)
	}
	return bin, nil
}

// BerthBuild is a build of berth running in the background while a test
// package's first tests start their peers: TestMain starts it, tests ask
// for the binary, TestMain closes it.
type BerthBuild struct {
	dir  string
	done chan struct{}
	bin  string
	err  error
}

// StartBerthBuild starts BuildBerth into a new temporary directory.
func StartBerthBuild() (*BerthBuild, error) {
	dir, err := os.MkdirTemp("", "berth-build-")
	if err != nil {
		return nil, err
	}
	b := &BerthBuild{dir: dir, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.bin, b.err = BuildBerth(dir)
	}()
	return b, nil
}

// Bin waits for the build and returns the binary, failing t if it failed.
func (b *BerthBuild) Bin(t testing.TB) string {
	t.Helper()
	<-b.done
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// Close waits for the build and removes it.
func (b *BerthBuild) Close() {
	<-b.done
	os.RemoveAll(b.dir)
}

// BerthProcess is one `berth serve` process. It keeps its address and
// config across a kill and a restart, as a pod restarted in place does.
type BerthProcess struct {
	Name, Addr string
	Bin        string   // the berth binary (BuildBerth)
	Config     string   // the config file passed to serve --config
	LogPath    string   // where its output goes (appended across restarts)
	Env        []string // its environment; nil: this process's

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs the process and waits until it answers /healthz.
func (p *BerthProcess) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.Bin, "serve", "--config", p.Config)
	cmd.Env = p.Env
	DieWithTest(cmd)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("%s: start: %v", p.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it became healthy: %v\n%s", p.Name, cmd.ProcessState, p.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 30s: %v\n%s", p.Name, err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill is kill -9: no drain, no deferred cleanup, connections reset.
func (p *BerthProcess) Kill(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: kill -9: %v", p.Name, err)
	}
	<-exited
}

// Alive says whether the process is running.
func (p *BerthProcess) Alive() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s); for
// t.Cleanup.
func (p *BerthProcess) Stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Log is the end of the process's output, for failure messages.
func (p *BerthProcess) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}
