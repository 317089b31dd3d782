package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxValueDepth bounds the nesting of arrays and objects in one value of a
// reply, such as a json field's. The stores hold nothing deeper (MariaDB
// refuses JSON nested more than 32 levels, MongoDB documents more than
// 100), so the bound stops only a value no store should hand over, before
// its encoding costs stack.
const MaxValueDepth = 128

// ErrEncode is wrapped by every error of AppendJSON and MarshalJSON: the
// reply holds a value JSON cannot represent, such as a NaN or infinite
// float, a value nested deeper than MaxValueDepth, or a json.RawMessage or
// json.Number that is not JSON. Such a reply fails again whenever it is
// built, so its request must be answered internal, not retried.
var ErrEncode = errors.New("wire: reply cannot be encoded as JSON")

// MarshalJSON encodes the reply. It writes rows as [] rather than
// omitting them when a read matched nothing, so a caller can tell "no
// rows" from "not a read".
func (r Reply) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 256+128*len(r.Rows)))
}

// AppendJSON appends the reply's JSON to b. It is the hot path of every
// answer, so it writes the known shapes by hand (row keys in Columns order
// when set, object keys sorted) and falls back to encoding/json only for
// values of other types.
//
// The output is always valid JSON in valid UTF-8 with unique object
// names, or an error wrapping ErrEncode.
// Invalid UTF-8 in strings and object names is replaced by U+FFFD, as
// encoding/json does; a json.RawMessage that is not strict JSON is decoded
// as encoding/json would and written again.
func (r *Reply) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"ok":`...)
	b = strconv.AppendBool(b, r.OK)
	b = append(b, `,"event":`...)
	b = appendString(b, r.Event)
	if r.Node != "" {
		b = append(b, `,"node":`...)
		b = appendString(b, r.Node)
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, r.Count, 10)
	b = append(b, `,"affected":`...)
	b = strconv.AppendInt(b, r.Affected, 10)
	var err error
	if r.Key != nil {
		b = append(b, `,"key":`...)
		if b, err = appendValue(b, r.Key, 0); err != nil {
			return nil, fmt.Errorf("%w: key: %w", ErrEncode, err)
		}
	}
	if r.Rows != nil {
		b = append(b, `,"rows":[`...)
		for i, row := range r.Rows {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendRow(b, row, r.Columns); err != nil {
				return nil, fmt.Errorf("%w: rows[%d]%w", ErrEncode, i, err)
			}
		}
		b = append(b, ']')
	}
	if r.Items != nil {
		b = append(b, `,"items":[`...)
		for i := range r.Items {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = r.Items[i].AppendJSON(b); err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
		}
		b = append(b, ']')
	}
	if r.Atomic {
		b = append(b, `,"atomic":true`...)
	}
	if r.Lineage != nil {
		b = append(b, `,"lineage":`...)
		enc, err := json.Marshal(r.Lineage)
		if err != nil {
			return nil, fmt.Errorf("%w: lineage: %w", ErrEncode, err)
		}
		b = append(b, enc...)
	}
	if r.Identity != nil {
		b = append(b, `,"identity":`...)
		enc, err := json.Marshal(r.Identity)
		if err != nil {
			return nil, fmt.Errorf("%w: identity: %w", ErrEncode, err)
		}
		b = append(b, enc...)
	}
	if e := r.Error; e != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendString(b, string(e.Code))
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		if e.Field != "" {
			b = append(b, `,"field":`...)
			b = appendString(b, e.Field)
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendRow writes one row; its errors start with the path after the
// row's index (".field: ...").
func appendRow(b []byte, row Row, columns []string) ([]byte, error) {
	if columns == nil || len(columns) != len(row) {
		columns = sortedKeys(row)
		if err := checkNames(columns); err != nil {
			return nil, fmt.Errorf(": %w", err)
		}
	}
	b = append(b, '{')
	var err error
	for i, k := range columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, row[k], 0); err != nil {
			return nil, fmt.Errorf(".%s: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

// appendValue writes v, which is inside depth arrays and objects of its
// value.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("float %v has no JSON form", x)
		}
		return appendFloat(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case time.Time:
		b = append(b, '"')
		b = x.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	case map[string]any:
		return appendObject(b, x, depth)
	case Row: // a row included under its parent's
		return appendObject(b, x, depth)
	case []Row:
		if x == nil {
			return append(b, "null"...), nil
		}
		if depth >= MaxValueDepth {
			return nil, tooDeep()
		}
		b = append(b, '[')
		var err error
		for i, row := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendObject(b, row, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []any:
		return appendArray(b, x, depth)
	case json.RawMessage:
		return appendRaw(b, x, depth)
	case json.Number:
		if !validNumber(string(x)) {
			return nil, fmt.Errorf("json.Number %q is not a JSON number", string(x))
		}
		return append(b, x...), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

func tooDeep() error {
	return fmt.Errorf("value nests deeper than %d levels", MaxValueDepth)
}

// appendObject writes m with its keys sorted, as encoding/json does.
func appendObject(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	if depth >= MaxValueDepth {
		return nil, tooDeep()
	}
	keys := sortedKeys(m)
	if err := checkNames(keys); err != nil {
		return nil, err
	}
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k], depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendArray(b []byte, list []any, depth int) ([]byte, error) {
	if list == nil {
		return append(b, "null"...), nil
	}
	if depth >= MaxValueDepth {
		return nil, tooDeep()
	}
	b = append(b, '[')
	var err error
	for i, v := range list {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendValue(b, v, depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

func sortedKeys[M ~map[string]any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkNames refuses object names that become the same name once their
// invalid UTF-8 is replaced, which would write one name twice.
func checkNames(names []string) error {
	var seen map[string]bool
	for i, k := range names {
		if utf8.ValidString(k) {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(names))
			for _, n := range names {
				seen[n] = utf8.ValidString(n)
			}
		}
		fixed := validUTF8(k)
		if seen[fixed] {
			return fmt.Errorf("object names %q and %q are the same once invalid UTF-8 is replaced", names[i], fixed)
		}
		seen[fixed] = true
	}
	return nil
}

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with
// U+FFFD, as appendString and encoding/json do.
func validUTF8(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// appendRaw writes a json.RawMessage: as it is when it is strict JSON
// (valid UTF-8, unique names) no deeper than the bound, else as
// encoding/json reads it (invalid UTF-8 replaced, the last of repeated
// names kept), written again through appendValue, which checks its depth.
func appendRaw(b []byte, raw json.RawMessage, depth int) ([]byte, error) {
	if len(raw) == 0 {
		return append(b, "null"...), nil
	}
	if jsontext.Value(raw).IsValid() && (len(raw)/2 <= MaxValueDepth-depth || rawDepth(raw) <= MaxValueDepth-depth) {
		return append(b, raw...), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("json.RawMessage is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("json.RawMessage is not one JSON value")
	}
	return appendValue(b, v, depth)
}

// rawDepth returns the deepest nesting of arrays and objects in raw, which
// must be valid JSON.
func rawDepth(raw []byte) int {
	depth, deepest := 0, 0
	in := false // inside a string
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if in {
			switch c {
			case '\\':
				i++
			case '"':
				in = false
			}
			continue
		}
		switch c {
		case '"':
			in = true
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// appendFloat writes f as encoding/json does. JSON cannot hold NaN and
// infinities: appendValue refuses them, and appendFloat would write null.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string: quotes, backslashes and control
// characters escaped, U+2028 and U+2029 escaped for JavaScript readers,
// invalid UTF-8 replaced by U+FFFD (as encoding/json does).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
