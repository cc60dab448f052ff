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
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/testpeer"
)

// build is the berth binary TestMain builds once for every test, so the
// replicas are real processes a SIGKILL really kills. The build runs while
// the first test starts its stores.
var build *testpeer.BerthBuild

func TestMain(m *testing.M) {
	var err error
	if build, err = testpeer.StartBerthBuild(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	build.Close()
	os.Exit(code)
}

// replica is one `berth serve` process of the cluster.
type replica = testpeer.BerthProcess

// newCluster writes one config per replica (same bucket, same database,
// same httpSecret), starts them, and returns them with their PostgreSQL
// server.
func newCluster(t *testing.T, n int) ([]*replica, *testpeer.Postgres) {
	t.Helper()
	pg := testpeer.StartPostgres(t)
	minio := testpeer.StartMinIO(t)
	bin := build.Bin(t)
	dir := t.TempDir()
	env := append(os.Environ(),
		config.S3AccessKeyEnv+"="+minio.AccessKey,
		config.S3SecretKeyEnv+"="+minio.SecretKey,
		config.MetadataDSNEnv+"=", // the config's DSN, not the caller's
	)
	var rs []*replica
	for i := range n {
		r := &replica{
			Name: fmt.Sprintf("replica-%d", i+1), Addr: testpeer.FreeAddr(t), Bin: bin, Env: env,
			Config: filepath.Join(dir, fmt.Sprintf("replica-%d.yaml", i+1)), LogPath: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i+1)),
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
`, r.Addr, minio.Endpoint, filepath.Join(dir, fmt.Sprintf("meta-%d", i+1)), pg.DSN)
		if err := os.WriteFile(r.Config, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		// One at a time: the first creates the bucket and the schema.
		r.Start(t)
		t.Cleanup(r.Stop)
		rs = append(rs, r)
	}
	return rs, pg
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
		b.backends = append(b.backends, r.Addr)
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
