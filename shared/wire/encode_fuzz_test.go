package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// replyGen builds a Reply from fuzz bytes; running out of bytes reads
// zeros.
type replyGen struct {
	data  []byte
	nodes int
}

func (g *replyGen) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	c := g.data[0]
	g.data = g.data[1:]
	return c
}

func (g *replyGen) uint64() uint64 {
	var b [8]byte
	n := copy(b[:], g.data)
	g.data = g.data[n:]
	return binary.LittleEndian.Uint64(b[:])
}

// str is up to 63 arbitrary bytes: often invalid UTF-8.
func (g *replyGen) str() string {
	n := min(int(g.byte()%64), len(g.data))
	s := string(g.data[:n])
	g.data = g.data[n:]
	return s
}

// Value kinds, the first byte of a value.
const (
	genNil = iota
	genString
	genFloat // 8 bytes of bits: NaN and infinities included
	genInt
	genBool
	genMap   // n, then n names and values
	genSlice // n, then n values
	genRaw   // arbitrary bytes as a json.RawMessage
	genRawOf // a generated value, encoded leniently, as a json.RawMessage
	genNumber
	genTime
	genDeep // n, then a value wrapped in n arrays and objects
	genKinds
)

func (g *replyGen) value() any {
	g.nodes++
	if g.nodes > 500 {
		return nil
	}
	switch g.byte() % genKinds {
	case genString:
		return g.str()
	case genFloat:
		return math.Float64frombits(g.uint64())
	case genInt:
		if c := g.byte(); c%4 == 1 {
			return int(int32(g.uint64()))
		} else if c%4 == 2 {
			return int32(g.uint64())
		}
		return int64(g.uint64())
	case genBool:
		return g.byte()%2 == 1
	case genMap:
		n := int(g.byte() % 5)
		if n == 4 {
			return map[string]any(nil)
		}
		m := make(map[string]any, n)
		for range n {
			m[g.str()] = g.value()
		}
		return m
	case genSlice:
		n := int(g.byte() % 5)
		if n == 4 {
			return []any(nil)
		}
		list := make([]any, 0, n)
		for range n {
			list = append(list, g.value())
		}
		return list
	case genRaw:
		return json.RawMessage(g.str())
	case genRawOf:
		b, err := json.Marshal(g.value())
		if err != nil {
			return json.RawMessage(nil)
		}
		return json.RawMessage(b)
	case genNumber:
		return json.Number(g.str())
	case genTime:
		return time.Unix(int64(g.uint64()>>1)%(1<<40), int64(g.uint64()%1e9)).UTC()
	case genDeep:
		n := int(g.byte())
		v := g.value()
		for i := range n {
			if i%3 == 0 {
				v = map[string]any{g.str(): v}
			} else {
				v = []any{v}
			}
		}
		return v
	}
	return nil
}

func (g *replyGen) reply() *Reply {
	flags := g.byte()
	r := &Reply{OK: flags&1 != 0, Event: g.str(), Count: int64(g.uint64()), Affected: int64(g.uint64())}
	if flags&2 != 0 {
		r.Node = g.str()
	}
	if flags&4 != 0 {
		r.Key = g.value()
	}
	if flags&8 != 0 {
		r.Error = &Error{Code: Code(g.str()), Message: g.str(), Field: g.str()}
	}
	if flags&16 != 0 {
		r.Rows = []Row{}
		for range g.byte() % 4 {
			row := Row{}
			for range g.byte() % 6 {
				row[g.str()] = g.value()
			}
			r.Rows = append(r.Rows, row)
		}
	}
	if flags&32 != 0 && len(r.Rows) > 0 {
		// The template's field names: distinct, valid, in an order of
		// their own.
		for k := range r.Rows[0] {
			if utf8.ValidString(k) {
				r.Columns = append(r.Columns, k)
			}
		}
		slices.Sort(r.Columns)
		slices.Reverse(r.Columns)
	}
	return r
}

// fixUTF8 replaces each byte that is not part of valid UTF-8 by U+FFFD.
func fixUTF8(s string) string {
	var b strings.Builder
	for _, r := range s { // ranging yields RuneError for each bad byte
		b.WriteRune(r)
	}
	return b.String()
}

var numberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// expect returns what v must decode to (with UseNumber) once encoded
// inside depth arrays and objects, or false if JSON cannot represent it.
func expect(v any, depth int) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case string:
		return fixUTF8(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case int64, bool:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case time.Time:
		return x.Format(time.RFC3339Nano), true
	case json.Number:
		return x, numberRE.MatchString(string(x))
	case json.RawMessage:
		if len(x) == 0 {
			return nil, true
		}
		dec := json.NewDecoder(strings.NewReader(string(x)))
		dec.UseNumber()
		var d any
		if dec.Decode(&d) != nil {
			return nil, false
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, false // more than one value
		}
		return expect(d, depth)
	case map[string]any:
		if x == nil {
			return nil, true
		}
		if depth >= MaxValueDepth {
			return nil, false
		}
		return expectObject(x, slices.Collect(func(yield func(string) bool) {
			for k := range x {
				if !yield(k) {
					return
				}
			}
		}), depth)
	case []any:
		if x == nil {
			return nil, true
		}
		if depth >= MaxValueDepth {
			return nil, false
		}
		out := make([]any, len(x))
		for i, e := range x {
			var ok bool
			if out[i], ok = expect(e, depth+1); !ok {
				return nil, false
			}
		}
		return out, true
	}
	panic("expect: unexpected type")
}

// expectObject is expect for the object of m's names in names; names that
// are equal once fixed cannot be written.
func expectObject(m map[string]any, names []string, depth int) (any, bool) {
	out := make(map[string]any, len(names))
	for _, k := range names {
		fk := fixUTF8(k)
		if _, dup := out[fk]; dup {
			return nil, false
		}
		var ok bool
		if out[fk], ok = expect(m[k], depth+1); !ok {
			return nil, false
		}
	}
	return out, true
}

func expectReply(r *Reply) (any, bool) {
	want := map[string]any{"ok": r.OK, "event": fixUTF8(r.Event), "count": r.Count, "affected": r.Affected}
	if r.Node != "" {
		want["node"] = fixUTF8(r.Node)
	}
	if r.Key != nil {
		k, ok := expect(r.Key, 0)
		if !ok {
			return nil, false
		}
		want["key"] = k
	}
	if r.Rows != nil {
		rows := make([]any, len(r.Rows))
		for i, row := range r.Rows {
			names := slices.Collect(func(yield func(string) bool) {
				for k := range row {
					if !yield(k) {
						return
					}
				}
			})
			if r.Columns != nil && len(r.Columns) == len(row) {
				names = r.Columns
			}
			// Rows are objects of the values themselves: depth 0, the
			// row not counted.
			o, ok := expectObject(row, names, -1)
			if !ok {
				return nil, false
			}
			rows[i] = o
		}
		want["rows"] = rows
	}
	if e := r.Error; e != nil {
		em := map[string]any{"code": fixUTF8(string(e.Code)), "message": fixUTF8(e.Message)}
		if e.Field != "" {
			em["field"] = fixUTF8(e.Field)
		}
		want["error"] = em
	}
	return want, true
}

// equal compares a value decoded with UseNumber with an expected one.
func equal(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case string, bool:
		return got == want
	case float64:
		n, ok := got.(json.Number)
		f, err := strconv.ParseFloat(string(n), 64)
		return ok && err == nil && f == w
	case int64:
		n, ok := got.(json.Number)
		return ok && string(n) == strconv.FormatInt(w, 10)
	case json.Number:
		return got == want
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !equal(gv, wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !equal(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// seed writes a fuzz input: the reply's flags, then its parts.
func seed(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch x := p.(type) {
		case byte:
			b = append(b, x)
		case int:
			b = append(b, byte(x))
		case string:
			b = append(b, byte(len(x)))
			b = append(b, x...)
		case float64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, x)
		}
	}
	return b
}

// FuzzEncodeReply encodes arbitrary replies (NaN and infinite floats,
// deep nesting, invalid UTF-8, raw JSON and numbers that are not JSON)
// and checks that AppendJSON either fails with ErrEncode, exactly when
// JSON cannot represent the reply, or writes strict JSON (valid UTF-8, unique names) that decodes to the
// reply's values.
func FuzzEncodeReply(f *testing.F) {
	const rows = 16 // flags: rows present
	zero := uint64(0)
	for _, s := range [][]byte{
		{},
		seed(rows|1, "ev", zero, zero, 1, 2, "id", genInt, 0, uint64(7), "name", genString, "Ann"),
		seed(rows, "e", zero, zero, 1, 1, "score", genFloat, math.NaN()),
		seed(rows, "e", zero, zero, 1, 1, "score", genFloat, math.Inf(1)),
		seed(rows, "e", zero, zero, 1, 1, "score", genFloat, math.Inf(-1)),
		seed(rows, "e", zero, zero, 1, 1, "score", genFloat, -0.0),
		seed(rows, "e", zero, zero, 1, 1, "doc", genMap, 2, "a", genFloat, math.NaN(), "b", genString, "x"),
		seed(rows, "e", zero, zero, 1, 1, "doc", genDeep, 200, genString, "leaf"),
		seed(rows, "e", zero, zero, 1, 1, "doc", genDeep, 127, genSlice, 1, genInt, 0, uint64(1)),
		seed(rows, "e\xff", zero, zero, 1, 1, "name", genString, "Zo\xeb\xc3"),
		seed(rows, "e", zero, zero, 1, 1, "doc", genMap, 2, "k\xff", genBool, 1, "k\xfe", genBool, 0),
		seed(rows, "e", zero, zero, 1, 1, "raw", genRaw, "{\"a\":1,\"a\":2,\"b\":\"\xff\"}"),
		seed(rows, "e", zero, zero, 1, 1, "raw", genRaw, `[[[1e400]]]`),
		seed(rows, "e", zero, zero, 1, 1, "raw", genRaw, `{"a":`),
		seed(rows, "e", zero, zero, 1, 1, "raw", genRaw, `0A`),
		seed(rows, "e", zero, zero, 1, 1, "raw", genRaw, `"\ud800"`),
		seed(rows, "e", zero, zero, 1, 1, "raw", genRawOf, genSlice, 2, genTime, uint64(1), uint64(2), genNumber, "1.50"),
		seed(rows, "e", zero, zero, 1, 1, "n", genNumber, "NaN"),
		seed(rows|32, "e", zero, zero, 2, 2, "id", genInt, 0, uint64(1), "b", genNil, 2, "id", genInt, 0, uint64(2), "c", genNil),
		seed(4|8, "e", zero, zero, genFloat, math.NaN(), "internal", "msg\xff", ""),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &replyGen{data: data}
		r := g.reply()
		want, ok := expectReply(r)
		out, err := r.AppendJSON(nil)
		if !ok {
			if err == nil {
				t.Fatalf("encoded a reply JSON cannot represent: %.300q", out)
			}
			if !errors.Is(err, ErrEncode) {
				t.Fatalf("error %v does not wrap ErrEncode", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendJSON: %v", err)
		}
		if !json.Valid(out) || !jsontext.Value(out).IsValid() {
			t.Fatalf("not strict JSON: %.300q", out)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		dec.UseNumber()
		var got any
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if !equal(got, want) {
			t.Fatalf("decodes to\n%#v\nwant\n%#v", got, want)
		}
	})
}
