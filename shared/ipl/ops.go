package ipl

import (
	"net/http"
	"net/http/pprof"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// opsHandler serves the node's ops endpoint:
//
//	/healthz  200 while the process runs and is not stopping (liveness)
//	/readyz   200 once every broker consumes (readiness), else 503
//	/metrics  Prometheus text format
//	/debug/pprof/...  Go's profiles, only with http.pprof = true
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
	if n.rt.Config.HTTP.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Metrics counts requests and their latency; it implements
// dispatch.Observer.
//
// Label values come only from names the node knows: a template it serves,
// an operation and an error code of the contract. Anything else a caller
// sent is counted under Unknown, so no request can add a series.
type Metrics struct {
	requests  *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	templates *template.Registry
}

// Unknown is the label value of a template or op the node does not know.
const Unknown = "_unknown"

// NewMetrics registers the request metrics on reg; templates are the
// names the node serves (nil: none).
func NewMetrics(reg prometheus.Registerer, templates *template.Registry) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beds_requests_total", Help: "Requests handled, by template, op and error code (empty: ok; _unknown: a name the node does not know).",
		}, []string{"template", "op", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "beds_request_seconds", Help: "Time from receipt to reply, by op.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"op"}),
		templates: templates,
	}
	reg.MustRegister(m.requests, m.seconds)
	return m
}

// Observe implements dispatch.Observer.
func (m *Metrics) Observe(tpl string, op wire.Op, code wire.Code, took time.Duration) {
	if tpl != "" && (m.templates == nil || m.templates.Get(tpl) == nil) {
		tpl = Unknown
	}
	o := string(op)
	if op != "" && !op.Valid() {
		o = Unknown
	}
	c := string(code)
	if code != "" && !slices.Contains(wire.Codes, code) {
		c = Unknown
	}
	m.requests.WithLabelValues(tpl, o, c).Inc()
	m.seconds.WithLabelValues(o).Observe(took.Seconds())
}
