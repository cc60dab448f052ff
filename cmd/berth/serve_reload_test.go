package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeReloadOnSIGHUP runs `berth serve --config` as a child process,
// flips readOnly in the file and sends SIGHUP: new pushes get 405
// UNSUPPORTED; a file that no longer parses is refused with its line in the
// log and the running config kept; a gc change is logged as needing a
// restart; the process survives all of it.
func TestServeReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "registry.yaml")
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("readOnly: false\n")
	p := startServe(t, root, "--config", cfg)
	base := "http://" + p.addr
	startUpload := func() int {
		t.Helper()
		resp, err := http.Post(base+"/v2/app/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	logs := func() string { p.mu.Lock(); defer p.mu.Unlock(); return p.log.String() }
	hangup := func(wantLog string) {
		t.Helper()
		n := strings.Count(logs(), wantLog)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(logs(), wantLog) == n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log after SIGHUP:\n%s", wantLog, logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if s := startUpload(); s != http.StatusAccepted {
		t.Fatalf("push before: %d", s)
	}

	write("readOnly: true\ngc: {interval: 6h}\n")
	hangup(`"msg":"config reloaded"`)
	if s := startUpload(); s != http.StatusMethodNotAllowed {
		t.Fatalf("push after reload to readOnly: %d, want 405", s)
	}
	if l := logs(); !strings.Contains(l, `"needsRestart":["gc"]`) {
		t.Fatalf("the gc change is not reported as needing a restart:\n%s", l)
	}

	write("readOnly: false\nreadonly: true\n")
	hangup(`"msg":"config reload refused; the running config is kept"`)
	if l := logs(); !strings.Contains(l, "line 2: field readonly not found") {
		t.Fatalf("the refusal does not give the reason:\n%s", l)
	}
	if s := startUpload(); s != http.StatusMethodNotAllowed {
		t.Fatalf("push after a refused reload: %d, want 405 (still read-only)", s)
	}
	write("readOnly: false\n")
	hangup(`"msg":"config reloaded"`)
	if s := startUpload(); s != http.StatusAccepted {
		t.Fatalf("push after reload to writable: %d", s)
	}
}
