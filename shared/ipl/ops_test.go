package ipl

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// TestMetricsLabelsAreBounded: label values come from names the node
// knows; 10,000 requests naming unknown templates, ops and codes add one
// series, not 10,000.
func TestMetricsLabelsAreBounded(t *testing.T) {
	src := "name = \"users\"\ntla = \"usr\"\nkind = \"rec\"\nstore = \"mariadb\"\n[fields]\nid = { type = \"int\", key = true }\n" +
		"[objects]\nread = \"vw_usr\"\n[ops]\nallow = [\"read\"]\n"
	tpl, err := template.Parse("users.toml", []byte(src), map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	templates, err := template.NewRegistry(tpl)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, templates)
	m.Observe("users", wire.OpRead, "", time.Millisecond)
	m.Observe("", wire.OpPing, "", time.Millisecond)
	before := testutil.CollectAndCount(reg, "beds_requests_total")
	for i := range 10000 {
		m.Observe(fmt.Sprintf("t%d", i), wire.Op(fmt.Sprintf("op%d", i%200)), wire.CodeUnknownTemplate, time.Millisecond)
		m.Observe("users", wire.OpRead, wire.Code(fmt.Sprintf("c%d", i)), time.Millisecond)
	}
	after := testutil.CollectAndCount(reg, "beds_requests_total")
	if after != before+2 {
		t.Fatalf("series %d -> %d after 10,000 unknown names; want 2 more (one _unknown template/op, one _unknown code)", before, after)
	}
	if got := testutil.CollectAndCount(reg, "beds_request_seconds"); got != 3 {
		t.Errorf("latency series %d, want 3 (read, ping, _unknown)", got)
	}
	want := `beds_requests_total{code="unknown_template",op="_unknown",template="_unknown"} 10000`
	var b strings.Builder
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "beds_requests_total" {
			for _, mt := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range mt.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				fmt.Fprintf(&b, "beds_requests_total{code=%q,op=%q,template=%q} %v\n", l["code"], l["op"], l["template"], mt.GetCounter().GetValue())
			}
		}
	}
	if !strings.Contains(b.String(), want) {
		t.Errorf("no %s in\n%s", want, b.String())
	}
}

// TestPprofOnlyWhenAsked: Go's profiles are served on the ops endpoint
// only with http.pprof = true.
func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := config.Default()
		cfg.HTTP.Pprof = on
		n := &Node{rt: &Runtime{Config: cfg, Metrics: prometheus.NewRegistry()}}
		rec := httptest.NewRecorder()
		n.opsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if got, want := rec.Code == 200, on; got != want {
			t.Errorf("pprof = %v: /debug/pprof/ answered %d", on, rec.Code)
		}
	}
}
