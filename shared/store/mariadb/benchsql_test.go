package mariadb

import (
	"fmt"
	"testing"

	"github.com/beds-project/beds/shared/bench"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// TestBaselineWriteStatements checks the writes bedsctl bench's baseline
// runs are the adapter's statements for the shipped users template, byte
// for byte: a create's call, an update's by key, and a delete's locking
// read by key (with its row bound) and call. The reads are checked by
// BenchmarkPointRead.
func TestBaselineWriteStatements(t *testing.T) {
	tpl, err := template.Parse("users_rec.toml", []byte(testenv.TemplateFile(t, "users_rec.toml")),
		map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	if got := callSQL(tpl.Objects.Create, 1+len(tpl.Params(wire.OpCreate))); got != bench.CreateSQL { // the event ID first
		t.Errorf("the adapter's create is\n%s\nbut bench.CreateSQL is\n%s", got, bench.CreateSQL)
	}
	update, err := wire.DecodeRequest([]byte(`{"template":"users","op":"update","filter":{"id":5},"data":{"name":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	q, err := store.Build(tpl, "ev-1", update, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !byKey(q) {
		t.Errorf("an update filtered by id is not run by key")
	}
	if got := callSQL(tpl.Objects.Update, 2+len(tpl.Params(wire.OpUpdate))); got != bench.UpdateSQL { // the event ID and beds_set first
		t.Errorf("the adapter's update is\n%s\nbut bench.UpdateSQL is\n%s", got, bench.UpdateSQL)
	}
	for _, tc := range []struct {
		body      string
		proc      string
		sel, call string
	}{
		{`{"template":"users","op":"delete","filter":{"id":5}}`, tpl.Objects.Delete, bench.DeleteSelectSQL, bench.DeleteSQL},
	} {
		req, err := wire.DecodeRequest([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Build(tpl, "ev-1", req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		params := tpl.Params(q.Op)
		if got := callSQL(tc.proc, len(params)); got != tc.call {
			t.Errorf("%s: the adapter calls\n%s\nbut the baseline\n%s", q.Op, got, tc.call)
		}
		sel, args := selectSQL(q, params, true)
		if sel != tc.sel {
			t.Errorf("%s: the adapter's locking read is\n%s\nbut the baseline's\n%s", q.Op, sel, tc.sel)
		}
		if len(args) != 2 || fmt.Sprint(args[0]) != "5" || fmt.Sprint(args[1]) != fmt.Sprint(bench.LockLimit) {
			t.Errorf("%s: the adapter binds %v, the baseline [5 %d]", q.Op, args, bench.LockLimit)
		}
	}
}
