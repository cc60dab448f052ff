package api

import (
	"crypto/subtle"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the registry serves Prometheus metrics, as the
// cluster's own registry does.
const MetricsPath = "/extensions/v2/metrics"

// BuildInfo names the running binary in imageregistry_build_info.
type BuildInfo struct {
	Version, Revision string
}

// metrics are the registry's request metrics, registered on a registry the
// caller owns (never the global one). The imageregistry_* ones carry the
// names and labels of the cluster's own image registry, so its dashboards
// and alerts work unchanged; the berth_* ones add what those lack: the
// action (pull, push, delete, catalog, base) and latency buckets.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	osRequests *prometheus.CounterVec
	osDuration *prometheus.SummaryVec
	osRespSize *prometheus.SummaryVec
	osReqSize  *prometheus.SummaryVec
	inFlight   prometheus.Gauge
	handler    http.Handler
}

// summaryObjectives are the quantiles the cluster's registry reports.
var summaryObjectives = map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}

func newMetrics(reg *prometheus.Registry, build BuildInfo) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_requests_total",
			Help: "Requests served, by action (pull, push, delete, catalog, base), method and status code.",
		}, []string{"action", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_http_request_duration_seconds",
			Help:    "Time to serve a request, by action and method.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"action", "method"}),
		osRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imageregistry_http_requests_total",
			Help: "A counter for requests to the registry.",
		}, []string{"code", "method"}),
		osDuration: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name:       "imageregistry_http_request_duration_seconds",
			Help:       "Latencies of requests to the registry.",
			Objectives: summaryObjectives,
		}, []string{"method"}),
		osRespSize: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name:       "imageregistry_http_response_size_bytes",
			Help:       "Sizes of responses to requests to the registry.",
			Objectives: summaryObjectives,
		}, []string{}),
		osReqSize: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name:       "imageregistry_http_request_size_bytes",
			Help:       "Sizes of requests to the registry (as the client declared them).",
			Objectives: summaryObjectives,
		}, []string{}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imageregistry_http_in_flight_requests",
			Help: "A gauge of requests currently being served by the registry.",
		}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "imageregistry_build_info",
		Help: "The registry's version and source revision; the value is 1.",
	}, []string{"gitVersion", "gitCommit", "goVersion"})
	buildInfo.WithLabelValues(build.Version, build.Revision, runtime.Version()).Set(1)
	reg.MustRegister(m.requests, m.duration, m.osRequests, m.osDuration, m.osRespSize, m.osReqSize, m.inFlight, buildInfo)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

func (m *metrics) observe(action Action, r *http.Request, status int, bytes int64, d time.Duration) {
	a := string(action)
	if a == "" {
		a = "base"
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(a, r.Method, code).Inc()
	m.duration.WithLabelValues(a, r.Method).Observe(d.Seconds())
	m.osRequests.WithLabelValues(code, r.Method).Inc()
	m.osDuration.WithLabelValues(r.Method).Observe(d.Seconds())
	m.osRespSize.WithLabelValues().Observe(float64(bytes))
	if r.ContentLength > 0 {
		m.osReqSize.WithLabelValues().Observe(float64(r.ContentLength))
	}
}

// metricsAllowed protects the metrics as the cluster's registry does: open
// when configured so, or when neither a metrics secret nor access control
// is configured; else the secret, or an admin of every namespace.
func (h *Handler) metricsAllowed(r *http.Request) bool {
	secret, a := h.opts.MetricsSecret, h.authz()
	if h.opts.MetricsOpen || (secret == "" && a == nil) {
		return true
	}
	hdr := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(hdr, " ")
	if secret != "" {
		given := strings.TrimSpace(cred)
		if strings.EqualFold(scheme, "basic") {
			_, given, _ = r.BasicAuth()
		}
		if given != "" && subtle.ConstantTimeCompare([]byte(given), []byte(secret)) == 1 {
			return true
		}
	}
	if a == nil || hdr == "" {
		return false
	}
	p, err := h.authenticate(r)
	return err == nil && a.CatalogAll(p.id)
}
