package failover_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/testpeer"
)

// The berth binary TestMain builds once for every test, so the replicas
// are real processes a SIGKILL really kills. The build runs while the first
// test starts its stores; berth waits for it.
var (
	berthBuilt = make(chan struct{})
	berthBin   string
	berthErr   error
)

func berth(t *testing.T) string {
	t.Helper()
	<-berthBuilt
	if berthErr != nil {
		t.Fatal(berthErr)
	}
	return berthBin
}

// TestMain builds berth with the environment's build settings (scripts/
// test's CGO_ENABLED and GOFLAGS), so the build cache the other packages'
// tests filled serves it; without symbols and DWARF, which only cost link
// time here.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-failover-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		defer close(berthBuilt)
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			berthErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		bin := filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-ldflags", "-s -w", "-o", bin, "./cmd/berth")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		dieWithTest(cmd)
		if out, err := cmd.CombinedOutput(); err != nil {
			berthErr = fmt.Errorf("go build ./cmd/berth: %w\n%s", err, out)
			return
		}
		berthBin = bin
	}()
	code := m.Run()
	<-berthBuilt
	os.RemoveAll(dir)
	os.Exit(code)
}

// replica is one `berth serve` process; it keeps its address and config
// across a kill and a restart, as a pod restarted in place does.
type replica struct {
	name, addr string
	bin, cfg   string
	logPath    string
	env        []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// newCluster writes one config per replica (same bucket, same database,
// same httpSecret), starts them, and returns them with their PostgreSQL
// server.
func newCluster(t *testing.T, n int) ([]*replica, *testpeer.Postgres) {
	t.Helper()
	pg := testpeer.StartPostgres(t)
	minio := testpeer.StartMinIO(t)
	bin := berth(t)
	dir := t.TempDir()
	env := append(os.Environ(),
		config.S3AccessKeyEnv+"="+minio.AccessKey,
		config.S3SecretKeyEnv+"="+minio.SecretKey,
		config.MetadataDSNEnv+"=", // the config's DSN, not the caller's
	)
	var rs []*replica
	for i := range n {
		r := &replica{
			name: fmt.Sprintf("replica-%d", i+1), addr: testpeer.FreeAddr(t), bin: bin, env: env,
			cfg: filepath.Join(dir, fmt.Sprintf("replica-%d.yaml", i+1)), logPath: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i+1)),
		}
		conf := fmt.Sprintf(`addr: %s
storage:
  s3:
    bucket: berth-failover
    region: us-east-1
    regionEndpoint: %s
metadataDirectory: %s
metadataDatabase: %s
httpSecret: shared-by-every-replica
shutdownTimeout: 5s
`, r.addr, minio.Endpoint, filepath.Join(dir, fmt.Sprintf("meta-%d", i+1)), pg.DSN)
		if err := os.WriteFile(r.cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		// One at a time: the first creates the bucket and the schema.
		r.start(t)
		t.Cleanup(r.stop)
		rs = append(rs, r)
	}
	return rs, pg
}

// start runs the replica and waits until it answers /healthz.
func (r *replica) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bin, "serve", "--config", r.cfg)
	cmd.Env = r.env
	dieWithTest(cmd)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("%s: start: %v", r.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it became healthy: %v\n%s", r.name, cmd.ProcessState, r.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 30s: %v\n%s", r.name, err, r.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill is kill -9: no drain, no deferred cleanup, connections reset.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: kill -9: %v", r.name, err)
	}
	<-exited
}

// alive says whether the replica's process is running.
func (r *replica) alive() bool {
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// stop ends the replica at the end of the test (SIGTERM, then SIGKILL).
func (r *replica) stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
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

func (r *replica) log() string {
	b, _ := os.ReadFile(r.logPath)
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// balancer is the load balancer in front of the replicas: each request goes
// to the next replica in turn; a replica that refuses the connection is
// marked down for a moment and the request goes to the next one, as HAProxy's
// or an ingress's redispatch does. A request cut off inside a replica that
// died is not replayed (its body is gone): the client sees 502.
type balancer struct {
	backends []string
	tr       *http.Transport
	next     atomic.Uint64

	mu        sync.Mutex
	downUntil []time.Time

	redispatched atomic.Int64 // requests moved off a refusing replica
	cutOff       atomic.Int64 // requests answered 502
}

func startBalancer(t *testing.T, rs []*replica) (*balancer, string) {
	t.Helper()
	b := &balancer{
		tr: &http.Transport{
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     30 * time.Second,
		},
		downUntil: make([]time.Time, len(rs)),
	}
	for _, r := range rs {
		b.backends = append(b.backends, r.addr)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replicas" // RoundTrip picks the replica
			pr.Out.Host = pr.In.Host
		},
		Transport: b,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			b.cutOff.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.Close()
		b.tr.CloseIdleConnections()
	})
	return b, srv.URL
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	first := int(b.next.Add(1))
	now := time.Now()
	var up, down []int
	b.mu.Lock()
	for i := range b.backends {
		idx := (first + i) % len(b.backends)
		if now.Before(b.downUntil[idx]) {
			down = append(down, idx)
		} else {
			up = append(up, idx)
		}
	}
	b.mu.Unlock()
	var body *untouchedBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &untouchedBody{r: req.Body}
	}
	var lastErr error
	for n, idx := range append(up, down...) {
		out := req.Clone(req.Context())
		out.URL.Host = b.backends[idx]
		if body != nil {
			out.Body = body
		}
		resp, err := b.tr.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		// Only a refused connection is safe to send elsewhere: nothing of
		// the request reached the replica.
		if !errors.Is(err, syscall.ECONNREFUSED) || (body != nil && body.read.Load()) || req.Context().Err() != nil {
			return nil, err
		}
		b.mu.Lock()
		b.downUntil[idx] = time.Now().Add(500 * time.Millisecond)
		b.mu.Unlock()
		if n+1 < len(b.backends) {
			b.redispatched.Add(1)
		}
	}
	return nil, lastErr
}

// untouchedBody lets a request body be offered to a second replica after
// the first refused the connection: it remembers whether anything was read,
// and its Close leaves the real body to the server that owns it.
type untouchedBody struct {
	r    io.Reader
	read atomic.Bool
}

func (u *untouchedBody) Read(p []byte) (int, error) {
	u.read.Store(true)
	return u.r.Read(p)
}

func (u *untouchedBody) Close() error { return nil }

var _ http.RoundTripper = (*balancer)(nil)

// waitCtx sleeps d or until ctx ends.
func waitCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
