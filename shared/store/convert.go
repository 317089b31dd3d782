package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// convert reads the next value, checks it against f's type and returns it
// as the Go type the adapters bind.
func convert(f *template.Field, d *doc) (any, error) {
	if f.Type == template.TypeJSON {
		return d.value()
	}
	s, err := d.scalar()
	if err != nil {
		return nil, err
	}
	bad := func(want string) error {
		return wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes %s, not %s", f.Name, want, kindName(s.kind))
	}
	switch f.Type {
	case template.TypeString:
		if s.kind != '"' {
			return nil, bad("a string")
		}
		if f.Max > 0 && utf8.RuneCountInString(s.str) > f.Max {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s is longer than %d characters", f.Name, f.Max)
		}
		if strings.IndexByte(s.str, 0) >= 0 {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s holds a NUL character", f.Name)
		}
		return s.str, nil
	case template.TypeInt:
		if s.kind != '0' {
			return nil, bad("an integer")
		}
		i, err := strconv.ParseInt(string(s.num), 10, 64)
		if err != nil {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes a 64-bit integer, not %s", f.Name, s.num)
		}
		return i, nil
	case template.TypeFloat:
		if s.kind != '0' {
			return nil, bad("a number")
		}
		x, err := strconv.ParseFloat(string(s.num), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes a finite number, not %s", f.Name, s.num)
		}
		return x, nil
	case template.TypeBool:
		if s.kind != 't' && s.kind != 'f' {
			return nil, bad("true or false")
		}
		return s.kind == 't', nil
	case template.TypeDatetime:
		if s.kind != '"' {
			return nil, bad("an RFC 3339 time string")
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
			if ts, err := time.Parse(layout, s.str); err == nil {
				return ts.UTC(), nil
			}
		}
		return nil, wire.FieldError(wire.CodeBadValue, f.Name, "field %s takes an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", f.Name, s.str)
	}
	return nil, fmt.Errorf("field %s: unhandled type %s", f.Name, f.Type)
}

// kindName names a JSON kind for a message.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case '[':
		return "an array"
	case '{':
		return "an object"
	}
	return "nothing"
}
