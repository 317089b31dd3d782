package wire_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/wire"
)

func TestDecodeRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		code  wire.Code
		field string
		msg   string // substring of the message
	}{
		{"empty", "", wire.CodeBadRequest, "", "empty body"},
		{"whitespace only", " \n\t ", wire.CodeBadRequest, "", "empty body"},
		{"not JSON", "hello", wire.CodeBadRequest, "", "not a valid request"},
		{"truncated", `{"op":"read"`, wire.CodeBadRequest, "", "not a valid request"},
		{"array", `[{"op":"read"}]`, wire.CodeBadRequest, "", "not a valid request"},
		{"string", `"read"`, wire.CodeBadRequest, "", "not a valid request"},
		{"invalid UTF-8 in a string", "{\"op\":\"read\",\"template\":\"us\xffers\"}", wire.CodeBadRequest, "", "UTF-8"},
		{"invalid UTF-8 outside strings", "{\"op\":\"read\"}\xc3", wire.CodeBadRequest, "", "UTF-8"},
		{"trailing second object", `{"op":"ping"}{"op":"ping"}`, wire.CodeBadRequest, "", "more than one JSON value"},
		{"trailing second value", `{"op":"ping"} 1`, wire.CodeBadRequest, "", "more than one JSON value"},
		{"trailing garbage", `{"op":"ping"} x`, wire.CodeBadRequest, "", "more than one JSON value"},
		{"trailing close brace", `{"op":"ping"}}`, wire.CodeBadRequest, "", "more than one JSON value"},
		{"unknown top-level key", `{"op":"read","template":"users","where":"1=1"}`, wire.CodeBadRequest, "", `unknown field "where"`},
		{"repeated key", `{"op":"read","op":"ping","template":"users"}`, wire.CodeBadRequest, "", `duplicate object member name "op"`},
		{"key case", `{"OP":"read","template":"users"}`, wire.CodeBadRequest, "", `unknown field "OP"`},
		{"broken filter", `{"op":"read","template":"users","filter":{"id":}}`, wire.CodeBadRequest, "", "not a valid request"},
		{"truncated filter", `{"op":"read","template":"users","filter":{"id":1`, wire.CodeBadRequest, "", "truncated JSON"},
		{"limit too large", `{"op":"read","template":"users","limit":1e40}`, wire.CodeBadRequest, "", "limit must be an integer"},
		{"sort not an array", `{"op":"read","template":"users","sort":"id"}`, wire.CodeBadRequest, "", "sort must be an array of strings"},
		{"batch on a read", `{"op":"read","template":"users","batch":[]}`, wire.CodeBadRequest, "batch", "batch applies to op batch only"},
		{"empty batch", `{"op":"batch","batch":[]}`, wire.CodeBadRequest, "batch", "batch is empty"},
		{"batch without items", `{"op":"batch"}`, wire.CodeBadRequest, "batch", "batch is empty"},
		{"batch not an array", `{"op":"batch","batch":{"op":"ping"}}`, wire.CodeBadRequest, "batch", "must be an array"},
		{"batch item not an object", `{"op":"batch","batch":[{"op":"ping"},1]}`, wire.CodeBadRequest, "batch", "batch[1] must be a request object"},
		{"nested batch", `{"op":"batch","batch":[{"op":"batch","batch":[{"op":"ping"}]}]}`, wire.CodeBadRequest, "batch", "batches do not nest"},
		{"batch item invalid", `{"op":"batch","batch":[{"op":"ping"},{"op":"read"}]}`, wire.CodeBadRequest, "", "batch[1]: template is missing"},
		{"batch item unknown key", `{"op":"batch","batch":[{"op":"read","template":"users","where":1}]}`, wire.CodeBadRequest, "", `batch[0]: body is not a valid request: unknown field "where"`},
		{"batch item repeated key", `{"op":"batch","batch":[{"op":"read","op":"read"}]}`, wire.CodeBadRequest, "", `duplicate object member name "op"`},
		{"batch with template", `{"op":"batch","template":"users","batch":[{"op":"ping"}]}`, wire.CodeBadRequest, "template", "batch names no template"},
		{"include on a count", `{"op":"count","template":"users","include":["orders"]}`, wire.CodeBadRequest, "include", "include applies to read only"},
		{"include not strings", `{"op":"read","template":"users","include":"orders"}`, wire.CodeBadRequest, "", "include must be an array of strings"},
		{"lineage without event", `{"op":"lineage"}`, wire.CodeBadRequest, "event", "lineage needs event"},
		{"event on a read", `{"op":"read","template":"users","event":"E"}`, wire.CodeBadRequest, "event", "event applies to op lineage only"},
		{"record not a bool", `{"op":"read","template":"users","record":1}`, wire.CodeBadRequest, "", "record must be true or false"},
		{"wrong type op", `{"op":1,"template":"users"}`, wire.CodeBadRequest, "", "op"},
		{"wrong type limit", `{"op":"read","template":"users","limit":"10"}`, wire.CodeBadRequest, "", "limit"},
		{"fractional limit", `{"op":"read","template":"users","limit":1.5}`, wire.CodeBadRequest, "", "limit"},
		{"fields not strings", `{"op":"read","template":"users","fields":[1]}`, wire.CodeBadRequest, "", "fields"},
		{"missing op", `{"template":"users"}`, wire.CodeBadRequest, "", "op is missing"},
		{"null body", `null`, wire.CodeBadRequest, "", "op is missing"},
		{"empty object", `{}`, wire.CodeBadRequest, "", "op is missing"},
		{"unknown op", `{"op":"drop","template":"users"}`, wire.CodeBadRequest, "", `unknown op "drop"`},
		{"op case", `{"op":"READ","template":"users"}`, wire.CodeBadRequest, "", `unknown op "READ"`},
		{"missing template", `{"op":"read"}`, wire.CodeBadRequest, "", "template is missing"},
		{"missing template write", `{"op":"create","data":{"a":1}}`, wire.CodeBadRequest, "", "template is missing"},
		{"negative limit", `{"op":"read","template":"users","limit":-1}`, wire.CodeBadValue, "limit", "limit must not be negative"},
		{"negative offset", `{"op":"read","template":"users","offset":-5}`, wire.CodeBadValue, "offset", "offset must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := wire.DecodeRequest([]byte(tc.body))
			if err == nil {
				t.Fatalf("DecodeRequest succeeded: %+v", req)
			}
			if req != nil {
				t.Errorf("request %+v returned with an error", req)
			}
			var we *wire.Error
			if !errors.As(err, &we) {
				t.Fatalf("error %T %v is not a *wire.Error", err, err)
			}
			if we.Code != tc.code || we.Field != tc.field {
				t.Errorf("code %q field %q, want %q %q (%v)", we.Code, we.Field, tc.code, tc.field, err)
			}
			if !strings.Contains(we.Message, tc.msg) {
				t.Errorf("message %q, want it to contain %q", we.Message, tc.msg)
			}
		})
	}
}

func TestDecodeRequestOK(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want wire.Request
	}{
		{"ping without template", `{"op":"ping"}`, wire.Request{Op: wire.OpPing}},
		{"ping with template", `{"op":"ping","template":"users"}`, wire.Request{Op: wire.OpPing, Template: "users"}},
		{"trailing whitespace", "{\"op\":\"count\",\"template\":\"users\"}\n\t ", wire.Request{Op: wire.OpCount, Template: "users"}},
		{"full read", `{"template":"users","op":"read","filter":{"email":{"eq":"ann@example.com"}},"fields":["id","email"],"sort":["-created"],"limit":50,"offset":10}`,
			wire.Request{Template: "users", Op: wire.OpRead, Filter: json.RawMessage(`{"email":{"eq":"ann@example.com"}}`),
				Fields: []string{"id", "email"}, Sort: []string{"-created"}, Limit: 50, Offset: 10}},
		{"create with data", `{"template":"users","op":"create","data":{"name":"Ann"}}`,
			wire.Request{Template: "users", Op: wire.OpCreate, Data: json.RawMessage(`{"name":"Ann"}`)}},
		{"nulls", `{"template":"users","op":"read","filter":null,"data":null,"fields":null,"sort":null,"limit":null,"offset":null}`,
			wire.Request{Template: "users", Op: wire.OpRead}},
		{"escaped names and values", `{"t\u0065mplate":"us\u0065rs","op":"r\u0065ad","filter":{"name":"a\"b"}}`,
			wire.Request{Template: "users", Op: wire.OpRead, Filter: json.RawMessage(`{"name":"a\"b"}`)}},
		{"zero limit", `{"template":"users","op":"read","limit":0,"offset":0}`, wire.Request{Template: "users", Op: wire.OpRead}},
		{"UTF-8 values", `{"template":"users","op":"read","filter":{"name":"Zoë 日本"}}`,
			wire.Request{Template: "users", Op: wire.OpRead, Filter: json.RawMessage(`{"name":"Zoë 日本"}`)}},
		{"read with include", `{"template":"users","op":"read","include":["orders","orders.items"],"record":true}`,
			wire.Request{Template: "users", Op: wire.OpRead, Include: []string{"orders", "orders.items"}, Record: true}},
		{"batch", `{"op":"batch","batch":[{"op":"ping"},{"template":"users","op":"create","data":{"name":"Ann"}}]}`,
			wire.Request{Op: wire.OpBatch, Batch: []wire.Request{{Op: wire.OpPing},
				{Template: "users", Op: wire.OpCreate, Data: json.RawMessage(`{"name":"Ann"}`)}}}},
		{"lineage", `{"op":"lineage","event":"01JD.2"}`, wire.Request{Op: wire.OpLineage, Event: "01JD.2"}},
		{"injection text stays a value", `{"template":"users","op":"read","filter":{"name":"'; DROP TABLE tbl_usr; --"}}`,
			wire.Request{Template: "users", Op: wire.OpRead, Filter: json.RawMessage(`{"name":"'; DROP TABLE tbl_usr; --"}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := wire.DecodeRequest([]byte(tc.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			got, want := fmt.Sprintf("%+v", *req), fmt.Sprintf("%+v", tc.want)
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestOps(t *testing.T) {
	for _, tc := range []struct {
		op     wire.Op
		valid  bool
		writes bool
		route  string
	}{
		{wire.OpCreate, true, true, wire.RouteWrite},
		{wire.OpUpdate, true, true, wire.RouteWrite},
		{wire.OpDelete, true, true, wire.RouteWrite},
		{wire.OpRead, true, false, wire.RouteRead},
		{wire.OpCount, true, false, wire.RouteRead},
		{wire.OpPing, true, false, wire.RouteRead},
		{"drop", false, false, wire.RouteRead},
		{"", false, false, wire.RouteRead},
	} {
		if tc.op.Valid() != tc.valid || tc.op.Writes() != tc.writes || tc.op.RoutingKey() != tc.route {
			t.Errorf("%q: valid %v writes %v route %s", tc.op, tc.op.Valid(), tc.op.Writes(), tc.op.RoutingKey())
		}
	}
	if !slices.Equal(wire.DataOps, []wire.Op{wire.OpCreate, wire.OpRead, wire.OpUpdate, wire.OpDelete, wire.OpCount}) {
		t.Errorf("DataOps = %v", wire.DataOps)
	}
}

func TestCodes(t *testing.T) {
	want := map[wire.Code]struct {
		class     wire.Class
		retryable bool
		text      string
	}{
		wire.CodeBadRequest:        {wire.ClassRequest, false, "bad_request"},
		wire.CodeUnknownTemplate:   {wire.ClassRequest, false, "unknown_template"},
		wire.CodeOpNotAllowed:      {wire.ClassRequest, false, "op_not_allowed"},
		wire.CodeBadField:          {wire.ClassRequest, false, "bad_field"},
		wire.CodeBadValue:          {wire.ClassRequest, false, "bad_value"},
		wire.CodeTooLarge:          {wire.ClassRequest, false, "too_large"},
		wire.CodeConflict:          {wire.ClassData, false, "conflict"},
		wire.CodeNotFound:          {wire.ClassData, false, "not_found"},
		wire.CodeUnauthenticated:   {wire.ClassAccess, false, "unauthenticated"},
		wire.CodeForbidden:         {wire.ClassAccess, false, "forbidden"},
		wire.CodeRateLimited:       {wire.ClassAccess, false, "rate_limited"},
		wire.CodeUnavailable:       {wire.ClassSystem, true, "unavailable"},
		wire.CodeTimeout:           {wire.ClassSystem, true, "timeout"},
		wire.CodeInternal:          {wire.ClassSystem, true, "internal"},
		wire.Code("something_new"): {wire.ClassSystem, true, "something_new"},
	}
	for code, w := range want {
		if code.Class() != w.class || code.Retryable() != w.retryable || string(code) != w.text {
			t.Errorf("%s: class %s retryable %v", code, code.Class(), code.Retryable())
		}
	}
	if len(wire.Codes) != 14 {
		t.Errorf("Codes has %d entries, want 14", len(wire.Codes))
	}
	for _, c := range wire.Codes {
		if _, ok := want[c]; !ok {
			t.Errorf("code %s has no expectation here", c)
		}
	}
}

func TestError(t *testing.T) {
	e := wire.FieldError(wire.CodeBadField, "emial", "template users has no field %q", "emial")
	if e.Error() != `bad_field: template users has no field "emial" (field emial)` {
		t.Errorf("Error() = %q", e.Error())
	}
	b, _ := json.Marshal(e)
	if string(b) != `{"code":"bad_field","message":"template users has no field \"emial\"","field":"emial"}` {
		t.Errorf("JSON %s", b)
	}
	e = wire.Errorf(wire.CodeTimeout, "after %ds", 3)
	if e.Error() != "timeout: after 3s" || e.Field != "" {
		t.Errorf("Error() = %q", e.Error())
	}
	b, _ = json.Marshal(e)
	if string(b) != `{"code":"timeout","message":"after 3s"}` {
		t.Errorf("JSON %s", b)
	}

	// AsError finds a wrapped contract error, and hides everything else.
	got, ok := wire.AsError(fmt.Errorf("layer: %w", e))
	if !ok || got != e {
		t.Errorf("AsError(wrapped) = %v %v", got, ok)
	}
	got, ok = wire.AsError(errors.New("dial tcp 10.0.0.7:3306: secret host detail"))
	if ok || got.Code != wire.CodeInternal || strings.Contains(got.Message, "10.0.0.7") {
		t.Errorf("AsError(plain) = %v %v", got, ok)
	}
}

func TestReplyJSON(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply wire.Reply
		want  string
	}{
		{"read with no rows", wire.Reply{OK: true, Event: "e1", Rows: []wire.Row{}},
			`{"ok":true,"event":"e1","count":0,"affected":0,"rows":[]}`},
		{"read with rows", wire.Reply{OK: true, Event: "e1", Rows: []wire.Row{{"id": 7}}, Count: 1},
			`{"ok":true,"event":"e1","count":1,"affected":0,"rows":[{"id":7}]}`},
		{"write: nil rows omitted", wire.Reply{OK: true, Event: "e2", Affected: 2, Node: "n1"},
			`{"ok":true,"event":"e2","node":"n1","count":0,"affected":2}`},
		{"create with key", wire.Reply{OK: true, Event: "e3", Affected: 1, Key: int64(42)},
			`{"ok":true,"event":"e3","count":0,"affected":1,"key":42}`},
		{"error", *wire.ErrorReply("e4", wire.FieldError(wire.CodeBadField, "emial", "no field")),
			`{"ok":false,"event":"e4","count":0,"affected":0,"error":{"code":"bad_field","message":"no field","field":"emial"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []any{tc.reply, &tc.reply} {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != tc.want {
					t.Errorf("%T:\ngot  %s\nwant %s", v, b, tc.want)
				}
				var back map[string]any
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatal(err)
				}
				if _, has := back["rows"]; has != (tc.reply.Rows != nil) {
					t.Errorf("rows present %v for Rows nil %v", has, tc.reply.Rows == nil)
				}
			}
		})
	}
	// A reply decodes back into the same type.
	var r wire.Reply
	if err := json.Unmarshal([]byte(`{"ok":true,"event":"e","rows":[],"count":0,"affected":0}`), &r); err != nil || r.Rows == nil || len(r.Rows) != 0 {
		t.Errorf("Unmarshal: %v %#v", err, r.Rows)
	}
}

func TestErrorReply(t *testing.T) {
	e := wire.Errorf(wire.CodeNotFound, "none")
	r := wire.ErrorReply("ev", e)
	if r.OK || r.Event != "ev" || r.Error != e || r.Rows != nil {
		t.Errorf("ErrorReply = %+v", r)
	}
}

func TestDecodeReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		code wire.Code // of the returned *wire.Error; "" for none
		err  string    // substring of a plain error
	}{
		{"ok", `{"ok":true,"event":"e1","rows":[{"id":9007199254740993}],"count":1,"affected":0,"key":12345678901234567}`, "", ""},
		{"not ok with its error", `{"ok":false,"event":"e2","error":{"code":"not_found","message":"none","field":"id"}}`, wire.CodeNotFound, ""},
		{"not ok without error", `{"ok":false,"event":"e3"}`, wire.CodeInternal, ""},
		{"not JSON", `hello`, "", "decode reply"},
		{"empty", ``, "", "decode reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := wire.DecodeReply([]byte(tc.body))
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || r != nil {
					t.Fatalf("DecodeReply = %+v, %v; want nil and an error with %q", r, err, tc.err)
				}
				var werr *wire.Error
				if errors.As(err, &werr) {
					t.Errorf("undecodable body returned a *wire.Error %v", werr)
				}
			case tc.code != "":
				var werr *wire.Error
				if !errors.As(err, &werr) || werr.Code != tc.code {
					t.Fatalf("DecodeReply error = %v, want code %s", err, tc.code)
				}
				if r == nil || r.OK {
					t.Fatalf("DecodeReply reply = %+v, want the not-ok reply", r)
				}
				if r.Error != nil && r.Error != werr {
					t.Errorf("error %p is not the reply's own %p", werr, r.Error)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				// UseNumber: integers beyond float64's precision survive.
				if id := r.Rows[0]["id"]; id != json.Number("9007199254740993") {
					t.Errorf("row id = %#v", id)
				}
				if r.Key != json.Number("12345678901234567") {
					t.Errorf("key = %#v", r.Key)
				}
				if !r.OK || r.Event != "e1" || r.Count != 1 {
					t.Errorf("reply = %+v", r)
				}
			}
		})
	}
}

func TestRequestRoutingKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  wire.Request
		want string
	}{
		{"read", wire.Request{Op: wire.OpRead}, wire.RouteRead},
		{"create", wire.Request{Op: wire.OpCreate}, wire.RouteWrite},
		{"lineage", wire.Request{Op: wire.OpLineage}, wire.RouteRead},
		{"batch of reads", wire.Request{Op: wire.OpBatch, Batch: []wire.Request{{Op: wire.OpRead}, {Op: wire.OpCount}}}, wire.RouteRead},
		{"batch with a write", wire.Request{Op: wire.OpBatch, Batch: []wire.Request{{Op: wire.OpRead}, {Op: wire.OpDelete}}}, wire.RouteWrite},
	} {
		if got := tc.req.RoutingKey(); got != tc.want {
			t.Errorf("%s: routing key %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCheckTraceparent(t *testing.T) {
	const ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		tp   string
		want string // in the error; "" for valid
	}{
		{ok, ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", ""},
		{"", "has 0 characters"},
		{ok + "-", "has 56 characters"},
		{ok[:54], "has 54 characters"},
		{strings.ReplaceAll(ok, "-", "_"), "four parts"},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "lowercase hex"},
		{"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", "lowercase hex"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", "lowercase hex"},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "not version 00"},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "not version 00"},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "all-zero trace ID"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "all-zero parent ID"},
	} {
		err := wire.CheckTraceparent(tc.tp)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.tp, err)
		case tc.want != "" && (!isCode(err, wire.CodeBadRequest) || wire.ValidTraceparent(tc.tp) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want bad_request saying %q", tc.tp, err, tc.want)
		}
	}
}

// traceOut is the traceparent the fake node answers with: the request's
// trace ID under the node's own parent ID, as a node that joins the trace
// does.
func isCode(err error, code wire.Code) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == code
}
