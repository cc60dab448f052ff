package events

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the notification metrics, under the names Distribution-based
// registries export, so existing dashboards and alerts work.
type Metrics struct{ m *metrics }

type metrics struct {
	events  *prometheus.CounterVec // type: Events, Successes, Failures, Errors
	pending *prometheus.GaugeVec
	status  *prometheus.CounterVec
}

// NewMetrics registers the notification metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_notifications_events_total",
			Help: "Notification events by type: Events (queued), Successes (delivered), Failures (answered with an error status, to be retried), Errors (not answered, to be retried).",
		}, []string{"type", "action", "endpoint"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "registry_notifications_pending_total",
			Help: "Events queued for an endpoint and not yet delivered (the durable queue's depth).",
		}, []string{"endpoint"}),
		status: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_notifications_status_total",
			Help: "Events by the HTTP status the endpoint answered their POST with.",
		}, []string{"code", "endpoint"}),
	}
	reg.MustRegister(m.events, m.pending, m.status)
	return &Metrics{m: m}
}

func (m *metrics) incoming(endpoint, action string) {
	if m != nil {
		m.events.WithLabelValues("Events", action, endpoint).Inc()
	}
}

func (m *metrics) delivered(endpoint string, actions []string, code int) {
	if m == nil {
		return
	}
	for _, a := range actions {
		m.events.WithLabelValues("Successes", a, endpoint).Inc()
	}
	m.status.WithLabelValues(statusText(code), endpoint).Add(float64(len(actions)))
}

func (m *metrics) failed(endpoint string, actions []string, code int) {
	if m == nil {
		return
	}
	typ := "Errors"
	if code != 0 {
		typ = "Failures"
		m.status.WithLabelValues(statusText(code), endpoint).Add(float64(len(actions)))
	}
	for _, a := range actions {
		m.events.WithLabelValues(typ, a, endpoint).Inc()
	}
}

func (m *metrics) setPending(endpoint string, n int64) {
	if m != nil {
		m.pending.WithLabelValues(endpoint).Set(float64(n))
	}
}

// statusText is how Distribution labels a status: "200 OK".
func statusText(code int) string {
	return strconv.Itoa(code) + " " + httpStatusText(code)
}
