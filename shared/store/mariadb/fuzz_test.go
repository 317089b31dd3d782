package mariadb

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// FuzzRequest feeds whole request bodies through what a node does before
// it touches a database: decode, validate against the template, build the
// statement. Whatever the bytes, nothing panics, every refusal is a
// contract error, and every statement holds only quoted identifiers from
// the template, fixed tokens and placeholders. The seed corpus lives in
// testdata/fuzz/FuzzRequest and runs with every go test.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"template":"users","op":"read","filter":{"email":"ann@example.com"}}`))
	tpl := usersTemplate(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := wire.DecodeRequest(body)
		if err != nil {
			if _, ok := wire.AsError(err); !ok {
				t.Fatalf("DecodeRequest returned a non-contract error: %v", err)
			}
			return
		}
		if req.Op == wire.OpPing {
			return
		}
		q, err := store.Build(tpl, "ev", req, store.DefaultLimits)
		if err != nil {
			if _, ok := wire.AsError(err); !ok {
				t.Fatalf("Build returned a non-contract error: %v", err)
			}
			return
		}
		switch q.Op {
		case wire.OpRead:
			stmt, args := selectSQL(q, q.Fields, false)
			checkSQL(t, stmt, args)
		case wire.OpUpdate, wire.OpDelete:
			stmt, args := selectSQL(q, tpl.Params(q.Op), true)
			checkSQL(t, stmt, args)
		}
		switch q.Op {
		case wire.OpCreate:
			checkCall(t, q, tpl.Objects.Create)
		case wire.OpUpdate:
			checkCall(t, q, tpl.Objects.Update)
		}
	})
}

// unset marks a procedure parameter no data was bound to.
type unset struct{}

// checkCall asserts that the procedure call of a create or update takes
// every field the validated request assigns, at that field's parameter,
// with its value intact (JSON as valid JSON text), and that the call
// statement is well formed: a value Build accepts is never dropped on the
// way to the database.
func checkCall(t *testing.T, q *store.Query, proc string) {
	t.Helper()
	params := q.Template.Params(q.Op)
	vals := make([]any, len(params))
	for i := range vals {
		vals[i] = unset{}
	}
	bindData(vals, params, q.Data)
	checkSQL(t, callSQL(proc, len(params)), vals)
	for _, a := range q.Data {
		i := slices.Index(params, a.Field)
		if i < 0 {
			t.Fatalf("%s: field %s is accepted but %s takes no such parameter", q.Op, a.Field.Name, proc)
		}
		got := vals[i]
		switch {
		case a.Value == nil:
			if got != nil {
				t.Fatalf("%s: null %s bound as %#v", q.Op, a.Field.Name, got)
			}
		case a.Field.Type == template.TypeJSON:
			s, ok := got.(string)
			if !ok || !json.Valid([]byte(s)) {
				t.Fatalf("%s: json %s bound as %#v, not JSON text", q.Op, a.Field.Name, got)
			}
		case !reflect.DeepEqual(got, a.Value):
			t.Fatalf("%s: %s = %#v bound as %#v", q.Op, a.Field.Name, a.Value, got)
		}
	}
}
