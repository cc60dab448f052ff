package pullthrough

import "github.com/prometheus/client_golang/prometheus"

// metrics are the cache's, registered on the registry's own Prometheus
// registry (or on none).
type metrics struct {
	hits, misses   *prometheus.CounterVec
	stale          *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	bytesFetched   *prometheus.CounterVec
	fillsInFlight  prometheus.Gauge
	evicted        *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_pullthrough_hits_total",
			Help: "Pull-through requests answered from the cache, by upstream and kind (manifest, blob, referrers).",
		}, []string{"upstream", "kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_pullthrough_misses_total",
			Help: "Pull-through requests that had to ask the upstream, by upstream and kind.",
		}, []string{"upstream", "kind"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_pullthrough_stale_serves_total",
			Help: "Answers served from the cache because the upstream failed, by upstream and kind.",
		}, []string{"upstream", "kind"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_pullthrough_upstream_errors_total",
			Help: "Upstream failures, by upstream and reason (unreachable, timeout, throttled, denied, server).",
		}, []string{"upstream", "reason"}),
		bytesFetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_pullthrough_upstream_bytes_total",
			Help: "Bytes fetched from upstreams, by upstream.",
		}, []string{"upstream"}),
		fillsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_pullthrough_fills_in_flight",
			Help: "Blob fills from upstreams in progress.",
		}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_pullthrough_evicted_bytes_total",
			Help: "Bytes freed by eviction, by reason (maxSize, maxUnusedAge).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.stale, m.upstreamErrors, m.bytesFetched, m.fillsInFlight, m.evicted)
	}
	return m
}
