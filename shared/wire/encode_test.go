package wire

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
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
