package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/oci"
	"github.com/prometheus/client_golang/prometheus"
)

func TestLimiter(t *testing.T) {
	ctx := context.Background()
	l := newLimiter(Limit{MaxRunning: 1, MaxInQueue: 1, MaxWait: 50 * time.Millisecond})
	rel, err := l.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The queue holds one waiter; it times out after MaxWait.
	start := time.Now()
	_, err = l.acquire(ctx)
	if e, ok := oci.AsError(err); !ok || e.Code != oci.ErrTooManyRequests || e.HTTPStatus() != 429 {
		t.Fatalf("queued past MaxWait: %v", err)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Fatal("refused before waiting MaxWait")
	}
	// With a waiter in the queue, a third request is refused at once.
	waiting := make(chan error, 1)
	go func() {
		r, err := l.acquire(ctx)
		if err == nil {
			r()
		}
		waiting <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if _, err := l.acquire(ctx); err == nil || !strings.Contains(err.Error(), "queue is full") {
		t.Fatalf("third request: %v", err)
	}
	rel()
	if err := <-waiting; err != nil {
		t.Fatalf("the queued request was not admitted when a slot freed: %v", err)
	}
	if r, err := newLimiter(Limit{}).acquire(ctx); err != nil {
		t.Fatalf("no limit: %v", err)
	} else {
		r()
	}
}

func TestMetricsEndpoint(t *testing.T) {
	h := newTestHandlerWith(t, Options{Metrics: prometheus.NewRegistry(), Build: BuildInfo{Version: "1.2.3", Revision: "abc123"}})
	for _, p := range []string{"/v2/", "/v2/m/manifests/missing"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	put := httptest.NewRequest(http.MethodPost, "/v2/m/blobs/uploads/", strings.NewReader("0123456789"))
	h.ServeHTTP(httptest.NewRecorder(), put)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetricsPath, nil))
	body := rec.Body.String()
	for _, want := range []string{
		`berth_http_requests_total{action="pull",code="404",method="GET"} 1`,
		`berth_http_requests_total{action="base",code="200",method="GET"} 1`,
		`berth_http_request_duration_seconds_bucket{action="pull",method="GET"`,
		// The cluster registry's names and labels, for its dashboards.
		`imageregistry_http_requests_total{code="404",method="GET"} 1`,
		`imageregistry_http_requests_total{code="200",method="GET"} 1`,
		`imageregistry_http_request_duration_seconds_count{method="GET"} 2`,
		`imageregistry_http_request_duration_seconds{method="GET",quantile="0.99"}`,
		`imageregistry_http_response_size_bytes_count 3`,
		`imageregistry_http_request_size_bytes_sum 10`,
		`imageregistry_http_in_flight_requests 0`, // the scrape is not a registry request
		`imageregistry_build_info{gitCommit="abc123",gitVersion="1.2.3",goVersion="go`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func newTestHandlerWith(t *testing.T, opts Options) *Handler {
	base := newTestHandler(t)
	return NewHandler(base.reg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
}
