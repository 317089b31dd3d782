package ipl

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beds-project/beds/shared/wire"
)

// opsHandler serves the node's ops endpoint:
//
//	/healthz  200 while the process runs and is not stopping (liveness)
//	/readyz   200 once every broker consumes (readiness), else 503
//	/metrics  Prometheus text format
func (n *Node) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if n.stopping.Load() {
			http.Error(w, "stopping\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !n.Ready() {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.rt.Metrics, promhttp.HandlerOpts{Registry: n.rt.Metrics}))
	return mux
}

// Metrics counts requests and their latency; it implements
// dispatch.Observer.
type Metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

// NewMetrics registers the request metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beds_requests_total", Help: "Requests handled, by template, op and error code (empty: ok).",
		}, []string{"template", "op", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "beds_request_seconds", Help: "Time from receipt to reply, by op.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"op"}),
	}
	reg.MustRegister(m.requests, m.seconds)
	return m
}

// Observe implements dispatch.Observer.
func (m *Metrics) Observe(template string, op wire.Op, code wire.Code, took time.Duration) {
	m.requests.WithLabelValues(template, string(op), string(code)).Inc()
	m.seconds.WithLabelValues(string(op)).Observe(took.Seconds())
}
