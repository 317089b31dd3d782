package wire

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// MarshalJSON encodes the reply. It writes rows as [] rather than
// omitting them when a read matched nothing, so a caller can tell "no
// rows" from "not a read".
func (r Reply) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 256+128*len(r.Rows)))
}

// AppendJSON appends the reply's JSON to b. It is the hot path of every
// answer, so it writes the known shapes by hand (row keys in Columns order
// when set) and falls back to encoding/json only for values of other
// types, such as a MongoDB json field's nested documents.
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
		if b, err = appendValue(b, r.Key); err != nil {
			return nil, err
		}
	}
	if r.Rows != nil {
		b = append(b, `,"rows":[`...)
		for i, row := range r.Rows {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendRow(b, row, r.Columns); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
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

func appendRow(b []byte, row Row, columns []string) ([]byte, error) {
	if columns == nil || len(columns) != len(row) {
		columns = make([]string, 0, len(row))
		for k := range row {
			columns = append(columns, k)
		}
		slices.Sort(columns)
	}
	b = append(b, '{')
	var err error
	for i, k := range columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, row[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, v any) ([]byte, error) {
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
		return appendFloat(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case time.Time:
		b = append(b, '"')
		b = x.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	case json.RawMessage:
		if len(x) == 0 {
			return append(b, "null"...), nil
		}
		return append(b, x...), nil
	case json.Number:
		return append(b, x...), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// appendFloat writes f as encoding/json does; NaN and infinities, which
// JSON cannot hold, become null.
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
