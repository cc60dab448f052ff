package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/testpeer"
)

// TestMain lets the test binary act as the berth command, so tests can run
// `berth serve` as a real process and kill it.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_TEST_AS_MAIN") == "1" {
		os.Args = append([]string{"berth"}, strings.Fields(os.Getenv("BERTH_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type serveProc struct {
	cmd  *exec.Cmd
	addr string
	log  *bytes.Buffer
	mu   *sync.Mutex
}

// startServe runs `berth serve` as a child process on root.
func startServe(t *testing.T, root string, extra ...string) *serveProc {
	t.Helper()
	addr := testpeer.FreeAddr(t)
	args := append([]string{"serve", "--addr", addr, "--root", root}, extra...)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_TEST_AS_MAIN=1", "BERTH_TEST_ARGS="+strings.Join(args, " "))
	var buf bytes.Buffer
	mu := &sync.Mutex{}
	cmd.Stderr = lockedWriter{&buf, mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, addr: addr, log: &buf, mu: mu}
	t.Cleanup(func() { p.kill() })
	testpeer.WaitHTTP(t, "http://"+addr+"/v2/", 20*time.Second)
	return p
}

func (p *serveProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func sha(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

// pushBlob pushes b monolithically or in chunks; it reports whether the
// registry acknowledged it (201).
func pushBlob(hc *http.Client, base, repo string, b []byte, chunked bool) bool {
	d := sha(b)
	if !chunked {
		resp, err := hc.Post(base+"/v2/"+repo+"/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(b))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusCreated
	}
	resp, err := hc.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	half := len(b) / 2
	for i, part := range [][]byte{b[:half], b[half:]} {
		off := 0
		if i == 1 {
			off = half
		}
		req, _ := http.NewRequest(http.MethodPatch, base+loc, bytes.NewReader(part))
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+len(part)-1))
		resp, err = hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return false
		}
		loc = resp.Header.Get("Location")
	}
	req, _ := http.NewRequest(http.MethodPut, base+loc+"?digest="+d, nil)
	resp, err = hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated
}

func imageManifest(cfg, layer []byte) []byte {
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg), "size": len(cfg)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}},
	}
	b, _ := json.Marshal(m)
	return b
}

func putManifest(hc *http.Client, base, repo, tag string, body []byte) bool {
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated
}

func get(t *testing.T, hc *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b
}

// TestCrashConsistency kills `berth serve` with SIGKILL in the middle of many
// concurrent pushes, restarts it on the same root, and checks that every
// acknowledged blob, manifest and tag is served intact and that nothing
// unacknowledged is served half-written.
func TestCrashConsistency(t *testing.T) {
	root := t.TempDir()
	type item struct {
		repo, tag  string
		cfg, layer []byte
		manifest   []byte
		blobsAcked bool
		tagAcked   bool
	}
	var (
		mu    sync.Mutex
		items []*item
	)
	for round := 0; round < 3; round++ {
		srv := startServe(t, root)
		base := "http://" + srv.addr
		hc := &http.Client{Timeout: 30 * time.Second}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					it := &item{repo: fmt.Sprintf("crash/r%d", w%3), tag: fmt.Sprintf("t%d-%d-%d", round, w, i)}
					it.cfg = []byte(fmt.Sprintf(`{"round":%d,"worker":%d,"i":%d}`, round, w, i))
					it.layer = make([]byte, 64<<10+rng.IntN(2<<20))
					for j := range it.layer {
						it.layer[j] = byte(rng.Uint32())
					}
					it.manifest = imageManifest(it.cfg, it.layer)
					mu.Lock()
					items = append(items, it)
					mu.Unlock()
					ok := pushBlob(hc, base, it.repo, it.cfg, false) && pushBlob(hc, base, it.repo, it.layer, i%2 == 1)
					mu.Lock()
					it.blobsAcked = ok
					mu.Unlock()
					if !ok {
						continue
					}
					ok = putManifest(hc, base, it.repo, it.tag, it.manifest)
					mu.Lock()
					it.tagAcked = ok
					mu.Unlock()
				}
			}(w)
		}
		time.Sleep(time.Duration(700+400*round) * time.Millisecond)
		srv.kill() // SIGKILL mid-push
		close(stop)
		wg.Wait()
	}

	srv := startServe(t, root)
	base := "http://" + srv.addr
	hc := &http.Client{Timeout: 30 * time.Second}
	var acked, unacked int
	for _, it := range items {
		for _, b := range [][]byte{it.cfg, it.layer} {
			code, got := get(t, hc, base+"/v2/"+it.repo+"/blobs/"+sha(b))
			switch {
			case code == http.StatusOK && !bytes.Equal(got, b):
				t.Fatalf("blob %s in %s served with different bytes (%d of %d)", sha(b), it.repo, len(got), len(b))
			case code != http.StatusOK && it.blobsAcked:
				t.Fatalf("acknowledged blob %s in %s lost after crash: %d", sha(b), it.repo, code)
			case code != http.StatusOK && code != http.StatusNotFound:
				t.Fatalf("blob %s: unexpected status %d", sha(b), code)
			}
		}
		code, got := get(t, hc, base+"/v2/"+it.repo+"/manifests/"+it.tag)
		switch {
		case code == http.StatusOK && !bytes.Equal(got, it.manifest):
			t.Fatalf("tag %s:%s serves a different manifest", it.repo, it.tag)
		case code != http.StatusOK && it.tagAcked:
			t.Fatalf("acknowledged tag %s:%s lost after crash: %d", it.repo, it.tag, code)
		case code != http.StatusOK && code != http.StatusNotFound:
			t.Fatalf("tag %s:%s: unexpected status %d", it.repo, it.tag, code)
		}
		if it.tagAcked {
			acked++
		} else {
			unacked++
		}
	}
	if acked == 0 || unacked == 0 {
		t.Fatalf("the crash test proved nothing: %d acknowledged and %d interrupted pushes", acked, unacked)
	}
	t.Logf("%d acknowledged images intact, %d interrupted pushes left nothing half-written", acked, unacked)
}

// TestMemoryFlat pushes and pulls a blob much larger than the memory budget
// and checks the server's peak RSS stays flat.
func TestMemoryFlat(t *testing.T) {
	const size = 512 << 20
	srv := startServe(t, t.TempDir())
	base := "http://" + srv.addr
	gen := func() io.Reader { return io.LimitReader(rand.NewChaCha8([32]byte{1}), size) }
	h := sha256.New()
	if _, err := io.Copy(h, gen()); err != nil {
		t.Fatal(err)
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	req, _ := http.NewRequest(http.MethodPost, base+"/v2/big/blob/blobs/uploads/?digest="+d, gen())
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/v2/big/blob/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	h.Reset()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || "sha256:"+hex.EncodeToString(h.Sum(nil)) != d {
		t.Fatalf("pull: %d bytes, %v, digest mismatch", n, err)
	}
	hwm := vmHWM(t, srv.cmd.Process.Pid)
	t.Logf("peak RSS after a %d MiB push and pull: %.1f MiB", size>>20, float64(hwm)/(1<<20))
	if hwm > 100<<20 {
		t.Fatalf("peak RSS %.1f MiB: the server is holding the blob in memory", float64(hwm)/(1<<20))
	}
}

func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
