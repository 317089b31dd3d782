package wire

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// reference encodes r with encoding/json alone, the behaviour AppendJSON
// must match in meaning.
func reference(t *testing.T, r *Reply) any {
	t.Helper()
	m := map[string]any{"ok": r.OK, "event": r.Event, "count": r.Count, "affected": r.Affected}
	if r.Node != "" {
		m["node"] = r.Node
	}
	if r.Key != nil {
		m["key"] = r.Key
	}
	if r.Rows != nil {
		m["rows"] = r.Rows
	}
	if r.Error != nil {
		m["error"] = r.Error
	}
	if r.Items != nil {
		items := make([]any, len(r.Items))
		for i := range r.Items {
			items[i] = reference(t, &r.Items[i])
		}
		m["items"] = items
	}
	if r.Atomic {
		m["atomic"] = true
	}
	if r.Lineage != nil {
		m["lineage"] = r.Lineage
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 26, 10, 4, 5, 123456789, time.UTC)
	replies := []*Reply{
		{OK: true, Event: "01JD", Node: "n1", Rows: []Row{}, Count: 0},
		{OK: true, Event: "e", Rows: []Row{{
			"id": int64(-7), "name": "Zoë \"quoted\" \\ <tag> & \n\t\r\x01 \u2028 🚀", "score": 0.125,
			"big": 1e21, "small": 1.5e-7, "zero": 0.0, "neg": -2.5, "on": true, "off": false,
			"none": nil, "at": ts, "raw": json.RawMessage(`{"a": [1, 2], "b": null}`),
			"doc": map[string]any{"k": []any{int64(1), "x", nil}}, "n": json.Number("42"), "i": 3, "i32": int32(4),
		}}, Count: 1, Columns: nil},
		{OK: true, Event: "e", Affected: 1, Key: int64(99)},
		{OK: true, Event: "e", Affected: 1, Key: "01JDKEY"},
		{OK: false, Event: "e", Node: "n", Error: &Error{Code: CodeBadField, Message: `template users has no field "emial"`, Field: "emial"}},
		{OK: false, Event: "e", Error: &Error{Code: CodeInternal, Message: "x"}},
		{OK: true, Event: "inc", Rows: []Row{{"id": int64(1),
			"orders": []Row{{"id": int64(5), "items": []Row{}}, {"id": int64(6), "items": []Row{{"sku": "a"}}}},
			"user":   Row{"id": int64(9)}, "none": []Row(nil), "no_user": Row(nil)}}, Count: 1, Columns: []string{"id", "orders", "user", "none", "no_user"}},
		{OK: false, Event: "b", Atomic: true, Error: &Error{Code: CodeConflict, Message: "batch[1]"}, Items: []Reply{
			{OK: true, Event: "b.1", Affected: 1, Key: int64(3)},
			{OK: false, Event: "b.2", Error: &Error{Code: CodeConflict, Message: "dup"}},
			{OK: true, Event: "b.3", Rows: []Row{{"id": int64(1)}}, Count: 1},
		}},
		{OK: true, Event: "l", Lineage: &Lineage{Event: "E", Op: OpRead, Template: "users", Node: "n", Outcome: "ok", Started: ts, DurationUS: 12,
			Children: []*Lineage{{Event: "E.1", Parent: "E", Op: OpRead, Template: "orders", Outcome: "timeout", Started: ts}}}},
	}
	for i, r := range replies {
		b, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		var got any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%d: not JSON: %v\n%s", i, err, b)
		}
		if want := reference(t, r); !reflect.DeepEqual(got, want) {
			t.Errorf("%d:\n got %v\nwant %v\n%s", i, got, want, b)
		}
	}
}

func TestAppendJSONColumnsOrder(t *testing.T) {
	r := &Reply{OK: true, Event: "e", Rows: []Row{{"id": int64(1), "email": "a", "name": nil}}, Columns: []string{"id", "email", "name"}}
	b, err := r.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"rows":[{"id":1,"email":"a","name":null}]`) {
		t.Fatalf("%s", b)
	}
	// Empty non-nil rows are written; nil rows are left out.
	if b, _ := (&Reply{OK: true, Event: "e", Rows: []Row{}}).AppendJSON(nil); !strings.Contains(string(b), `"rows":[]`) {
		t.Fatalf("%s", b)
	}
	if b, _ := (&Reply{OK: true, Event: "e"}).AppendJSON(nil); strings.Contains(string(b), "rows") {
		t.Fatalf("%s", b)
	}
}

func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1.25, 123456789.125, 1e20, 1e21, 1e-6, 1e-7, 5e-324, math.MaxFloat64, -1e-300} {
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
	if got := appendFloat(nil, math.NaN()); string(got) != "null" {
		t.Errorf("NaN = %s", got)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "🚀é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not a JSON string: %v", s, b, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json's to %q", s, got, want)
		}
	})
}

// Issue 9 item 3: a reply that JSON cannot represent is an error wrapping
// ErrEncode, never invalid JSON (nor NaN turned into null silently).
func TestAppendJSONUnencodable(t *testing.T) {
	nest := func(levels int, leaf any) any {
		v := leaf
		for i := range levels {
			if i%2 == 0 {
				v = []any{v}
			} else {
				v = map[string]any{"k": v}
			}
		}
		return v
	}
	deepRaw := func(levels int) json.RawMessage {
		return json.RawMessage(strings.Repeat("[", levels) + "1" + strings.Repeat("]", levels))
	}
	for _, tc := range []struct {
		name string
		r    Reply
		path string // in the message
	}{
		{"NaN", Reply{Rows: []Row{{"id": int64(1), "score": math.NaN()}}}, "rows[0].score: float NaN"},
		{"+Inf", Reply{Rows: []Row{{"id": int64(1)}, {"score": math.Inf(1)}}}, "rows[1].score: float +Inf"},
		{"-Inf", Reply{Rows: []Row{{"score": math.Inf(-1)}}}, "rows[0].score"},
		{"NaN in a json field", Reply{Rows: []Row{{"doc": map[string]any{"a": []any{int64(1), math.NaN()}}}}}, "rows[0].doc"},
		{"Inf in a json field's array", Reply{Rows: []Row{{"doc": []any{map[string]any{"x": math.Inf(1)}}}}}, "rows[0].doc"},
		{"NaN key", Reply{Key: math.NaN()}, "key"},
		{"float32 NaN", Reply{Rows: []Row{{"f": float32(math.NaN())}}}, "rows[0].f"},
		{"too deep", Reply{Rows: []Row{{"doc": nest(MaxValueDepth+1, "x")}}}, "rows[0].doc: value nests deeper than 128 levels"},
		{"far too deep", Reply{Rows: []Row{{"doc": nest(100000, int64(1))}}}, "rows[0].doc"},
		{"too deep raw", Reply{Rows: []Row{{"doc": deepRaw(MaxValueDepth + 1)}}}, "rows[0].doc"},
		{"far too deep raw", Reply{Rows: []Row{{"doc": deepRaw(100000)}}}, "rows[0].doc"},
		{"raw too deep inside a value", Reply{Rows: []Row{{"doc": []any{deepRaw(MaxValueDepth)}}}}, "rows[0].doc"},
		{"raw not JSON", Reply{Rows: []Row{{"doc": json.RawMessage(`{"a":`)}}}, "rows[0].doc: json.RawMessage is not JSON"},
		{"raw NaN", Reply{Rows: []Row{{"doc": json.RawMessage(`NaN`)}}}, "rows[0].doc"},
		{"raw two values", Reply{Rows: []Row{{"doc": json.RawMessage(`{} {}`)}}}, "rows[0].doc"},
		{"number NaN", Reply{Rows: []Row{{"n": json.Number("NaN")}}}, `rows[0].n: json.Number "NaN"`},
		{"number text", Reply{Key: json.Number("1,2")}, "key"},
		{"number leading zero", Reply{Key: json.Number("01")}, "key"},
		{"number empty", Reply{Key: json.Number("")}, "key"},
		{"number bare exponent", Reply{Key: json.Number("1e")}, "key"},
		{"names collide once fixed", Reply{Rows: []Row{{"doc": map[string]any{"a\xff": int64(1), "a\xfe": int64(2)}}}}, "rows[0].doc: object names"},
		{"row names collide once fixed", Reply{Rows: []Row{{"a\xff": int64(1), "a\uFFFD": int64(2)}}}, "rows[0]: object names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.OK, tc.r.Event = true, "e"
			b, err := tc.r.AppendJSON(nil)
			if !errors.Is(err, ErrEncode) {
				t.Fatalf("AppendJSON = %.200s, %v; want an error wrapping ErrEncode", b, err)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not contain %q", err, tc.path)
			}
			if _, err := tc.r.MarshalJSON(); !errors.Is(err, ErrEncode) {
				t.Errorf("MarshalJSON: %v", err)
			}
			if _, err := json.Marshal(&tc.r); !errors.Is(err, ErrEncode) {
				t.Errorf("json.Marshal: %v", err)
			}
		})
	}

	// The deepest value the bound allows is written, as a value and raw.
	for _, v := range []any{nest(MaxValueDepth, "x"), deepRaw(MaxValueDepth), []any{deepRaw(MaxValueDepth - 1)}} {
		r := Reply{OK: true, Event: "e", Rows: []Row{{"doc": v}}}
		b, err := r.AppendJSON(nil)
		if err != nil || !json.Valid(b) {
			t.Errorf("depth %d: %v", MaxValueDepth, err)
		}
	}
}

// Issue 9 item 3: invalid UTF-8 anywhere in a reply comes out as U+FFFD
// (as encoding/json writes it), and a json.RawMessage that is not strict
// JSON is written again, so the reply is always strict JSON (valid UTF-8,
// unique names).
func TestAppendJSONInvalidUTF8(t *testing.T) {
	r := &Reply{OK: true, Event: "e\xff", Node: "n\xc3", Rows: []Row{{
		"name":    "Zo\xeb",
		"doc":     map[string]any{"k\xff": []any{"v\xfe", map[string]any{"\xc0": "x"}}},
		"raw":     json.RawMessage("{\"a\":\"b\xff\",\"n\":1.50,\"a2\":[1e3]}"),
		"dup":     json.RawMessage(`{"a":1,"a":2}`),
		"sur":     json.RawMessage(`"\ud800"`),
		"key\xff": int64(1),
	}}, Error: &Error{Code: CodeInternal, Message: "m\xff", Field: "f\xff"}}
	b, err := r.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !jsontext.Value(b).IsValid() {
		t.Fatalf("not strict JSON: %q", b)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	row := got["rows"].([]any)[0].(map[string]any)
	for _, c := range []struct {
		got, want any
	}{
		{got["event"], "e\uFFFD"},
		{got["node"], "n\uFFFD"},
		{got["error"].(map[string]any)["message"], "m\uFFFD"},
		{got["error"].(map[string]any)["field"], "f\uFFFD"},
		{row["name"], "Zo\uFFFD"},
		{row["key\uFFFD"], json.Number("1")},
		{row["doc"], map[string]any{"k\uFFFD": []any{"v\uFFFD", map[string]any{"\uFFFD": "x"}}}},
		{row["raw"], map[string]any{"a": "b\uFFFD", "n": json.Number("1.50"), "a2": []any{json.Number("1e3")}}},
		{row["dup"], map[string]any{"a": json.Number("2")}}, // the last, as encoding/json reads it
		{row["sur"], "\uFFFD"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("got %#v, want %#v", c.got, c.want)
		}
	}
	// Strict JSON passes through byte for byte.
	raw := json.RawMessage(`{"b": [1.0, "\u00e9"], "a": null}`)
	b, err = (&Reply{OK: true, Event: "e", Rows: []Row{{"raw": raw}}}).AppendJSON(nil)
	if err != nil || !strings.Contains(string(b), string(raw)) {
		t.Errorf("%s, %v: want %s unchanged", b, err, raw)
	}
}
