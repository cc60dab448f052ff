package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the registry serves Prometheus metrics, as the
// cluster's own registry does.
const MetricsPath = "/extensions/v2/metrics"

// metrics are the registry's request metrics, registered on a registry the
// caller owns (never the global one).
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	inFlight prometheus.Gauge
	handler  http.Handler
}

func newMetrics(reg *prometheus.Registry) *metrics {
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
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_response_bytes_total",
			Help: "Response body bytes sent, by action.",
		}, []string{"action"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_http_requests_in_flight",
			Help: "Requests being served now.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytes, m.inFlight)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

func (m *metrics) observe(action Action, method string, status int, bytes int64, d time.Duration) {
	a := string(action)
	if a == "" {
		a = "base"
	}
	m.requests.WithLabelValues(a, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(a, method).Observe(d.Seconds())
	m.bytes.WithLabelValues(a).Add(float64(bytes))
}
