package mariadb

import (
	"testing"

	"github.com/beds-project/beds/shared/bench"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// TestBaselineWriteStatements checks the writes bedsctl bench's baseline
// runs are the adapter's statements for the shipped users template, byte
// for byte: the one call of a create, and of an update or delete by key.
// The reads are checked by BenchmarkPointRead.
func TestBaselineWriteStatements(t *testing.T) {
	tpl, err := template.Parse("users_rec.toml", []byte(testenv.TemplateFile(t, "users_rec.toml")),
		map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	if got := callSQL(tpl.Objects.Create, 1+len(tpl.Params(wire.OpCreate))); got != bench.CreateSQL { // the event ID first
		t.Errorf("the adapter's create is\n%s\nbut bench.CreateSQL is\n%s", got, bench.CreateSQL)
	}
	for _, tc := range []struct {
		body, proc, call string
		lead             int // the event ID, and an update's beds_set
	}{
		{`{"template":"users","op":"update","filter":{"id":5},"data":{"name":"x"}}`, tpl.Objects.Update, bench.UpdateSQL, 2},
		{`{"template":"users","op":"delete","filter":{"id":5}}`, tpl.Objects.Delete, bench.DeleteSQL, 1},
	} {
		req, err := wire.DecodeRequest([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Build(tpl, "ev-1", req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if !byKey(q) {
			t.Errorf("%s filtered by id is not run by key", q.Op)
		}
		if got := callSQL(tc.proc, tc.lead+len(tpl.Params(q.Op))); got != tc.call {
			t.Errorf("%s: the adapter calls\n%s\nbut the baseline\n%s", q.Op, got, tc.call)
		}
	}
}
