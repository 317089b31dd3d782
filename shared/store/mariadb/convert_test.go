package mariadb

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/template"
)

// TestConvertColumn covers what the driver hands Scan in both protocols:
// typed values from prepared statements, text from plain queries.
func TestConvertColumn(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	f := func(typ template.Type) *template.Field { return &template.Field{Name: "x", Stored: "t_x", Type: typ} }
	tests := []struct {
		typ  template.Type
		src  any
		want any
	}{
		{template.TypeString, []byte("Zoë"), "Zoë"},
		{template.TypeString, "a", "a"},
		{template.TypeString, int64(7), "7"},
		{template.TypeInt, int64(-7), int64(-7)},
		{template.TypeInt, uint64(7), int64(7)},
		{template.TypeInt, []byte("42"), int64(42)},
		{template.TypeFloat, 0.5, 0.5},
		{template.TypeFloat, float32(0.25), 0.25},
		{template.TypeFloat, int64(3), 3.0},
		{template.TypeFloat, []byte("9.50"), 9.5}, // DECIMAL
		{template.TypeBool, int64(1), true},       // TINYINT(1), binary
		{template.TypeBool, []byte("0"), false},   // TINYINT(1), text
		{template.TypeBool, true, true},
		{template.TypeDatetime, ts.In(time.FixedZone("x", 3600)), ts},
		{template.TypeDatetime, []byte("2026-01-02 03:04:05.6"), ts},
		{template.TypeJSON, []byte(`{"a":1}`), json.RawMessage(`{"a":1}`)},
		{template.TypeJSON, []byte(`not json`), "not json"},
	}
	for _, tt := range tests {
		got, err := convertColumn(f(tt.typ), tt.src)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s from %T %v = %#v, %v; want %#v", tt.typ, tt.src, tt.src, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		typ template.Type
		src any
	}{
		{template.TypeInt, []byte("x")}, {template.TypeInt, 1.5}, {template.TypeBool, "yes"},
		{template.TypeInt, uint64(1 << 63)}, {template.TypeDatetime, int64(1)},
	} {
		if _, err := convertColumn(f(bad.typ), bad.src); err == nil {
			t.Errorf("%s from %T %v: no error", bad.typ, bad.src, bad.src)
		}
	}
	// The driver reuses its buffer: a json value must not alias it.
	buf := []byte(`[1]`)
	got, _ := convertColumn(f(template.TypeJSON), buf)
	buf[1] = '2'
	if string(got.(json.RawMessage)) != `[1]` {
		t.Fatalf("json value aliases the driver's buffer: %s", got)
	}
}
