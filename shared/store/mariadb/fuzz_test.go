package mariadb

import (
	"testing"

	"github.com/beds-project/beds/shared/store"
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
		case wire.OpCreate:
			checkSQL(t, callSQL(tpl.Objects.Create, len(tpl.Params(wire.OpCreate))), make([]any, len(tpl.Params(wire.OpCreate))))
		}
	})
}
