package crud

import (
	"testing"

	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/wire"
)

func TestOwnedData(t *testing.T) {
	reg := shipped(t)
	owner := &access.Owner{Field: reg.Get("orders").Field("user"), User: 7}
	for _, tc := range []struct {
		name string
		op   wire.Op
		data string
		want string // the data Build then reads
	}{
		{"fields", wire.OpCreate, `{"total":5}`, `{"user":7,"total":5}`},
		{"spaces", wire.OpCreate, " \n{ \"total\": 5 } ", `{"user":7, "total": 5 }`},
		{"empty object", wire.OpCreate, `{}`, `{"user":7}`},
		{"empty object with space", wire.OpCreate, `{ }`, `{"user":7 }`},
		{"owner named: left for restrict to judge", wire.OpCreate, `{"user":8}`, `{"user":8}`},
		{"not an object: left for Build to refuse", wire.OpCreate, `[1]`, `[1]`},
		{"null: left for Build to refuse", wire.OpCreate, `null`, `null`},
		{"not JSON", wire.OpCreate, `{"total":`, `{"total":`},
		{"update: untouched", wire.OpUpdate, `{"total":5}`, `{"total":5}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &wire.Request{Template: "orders", Op: tc.op, Data: []byte(tc.data)}
			got := ownedData(req, owner)
			if string(got.Data) != tc.want {
				t.Errorf("data %s, want %s", got.Data, tc.want)
			}
			if string(req.Data) != tc.data {
				t.Errorf("the request's own data changed to %s", req.Data)
			}
		})
	}
	if req := (&wire.Request{Op: wire.OpCreate, Data: []byte(`{}`)}); ownedData(req, nil) != req {
		t.Error("no owner: the request must come back as it is")
	}
}
