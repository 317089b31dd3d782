package mariadb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// The property: any valid template, whatever its field types, required,
// max, readonly, unique and sortable attributes and whoever makes its key,
// generates DDL that MariaDB accepts, that passes the check, and that
// serves create, read, update and delete round trips of values of every
// type (nulls, the extremes of int, multi-byte strings of exactly max
// characters, microsecond times, nested JSON) through store.Build and the
// Store. Random templates from a fixed seed, so a failure repeats.
func TestGeneratedSchemaProperty(t *testing.T) {
	const templates = 30
	rng := rand.New(rand.NewPCG(14, 2026))
	stores := map[string]string{"mariadb": template.StoreMariaDB}
	dir := t.TempDir()
	files := []string{filepath.Join(testenv.Root(t), "deploy", "mariadb", "000_beds.sql")}
	var ts []*template.Template
	for i := range templates + 1 {
		src := randomTemplate(rng, i)
		if i == templates { // the edge random ones may miss: nothing a caller can write
			src = edgeTemplate
		}
		tpl, err := template.Parse(fmt.Sprintf("rnd%02d_rec.toml", i), []byte(src), stores)
		if err != nil {
			t.Fatalf("random template %d is not valid (the generator of templates is wrong): %v\n%s", i, err, src)
		}
		ddl, err := GenerateSchema(tpl)
		if err != nil {
			t.Fatalf("template %d: %v\n%s", i, err, src)
		}
		f := filepath.Join(dir, tpl.Name+".sql")
		if err := os.WriteFile(f, ddl, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		ts = append(ts, tpl)
	}
	s, err := Open(Config{DSN: testenv.MariaDBWith(t, files...), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diffs := checkSchema(t, s, ts); len(diffs) != 0 {
		t.Fatalf("generated objects disagree with their templates: %v", diffs)
	}
	for i, tpl := range ts {
		t.Run(tpl.Name, func(t *testing.T) {
			roundTrips(t, s, tpl, rand.New(rand.NewPCG(uint64(i), 7)))
			if t.Failed() {
				ddl, _ := GenerateSchema(tpl)
				t.Logf("objects:\n%s", ddl)
			}
		})
	}
}

// edgeTemplate has no field a caller writes: create inserts a row of
// defaults, update has nothing to change.
const edgeTemplate = `name = "edge"
tla = "edg"
kind = "rec"
store = "mariadb"

[fields]
id = { type = "int", key = true }
at = { type = "datetime", readonly = true, sortable = true }
n  = { type = "int", readonly = true }

[objects]
read = "vw_edg"
create = "sp_edg_create"
update = "sp_edg_update"
delete = "sp_edg_delete"

[ops]
allow = ["create", "read", "update", "delete", "count"]
`

// randomTemplate returns the text of a valid random MariaDB template, the
// i-th: its TLA and name are its own.
func randomTemplate(rng *rand.Rand, i int) string {
	tla := "r" + string(rune('a'+i/26)) + string(rune('a'+i%26))
	types := []template.Type{template.TypeString, template.TypeInt, template.TypeFloat, template.TypeBool, template.TypeDatetime, template.TypeJSON}
	var key string
	keyKind := rng.IntN(4) // 0 int made by the database, 1 int named by the caller, 2 string named by the caller, 3 string made by the procedure
	switch keyKind {
	case 0:
		key = `{ type = "int", key = true }`
	case 1:
		key = `{ type = "int", key = true, required = true }`
	case 2:
		key = fmt.Sprintf(`{ type = "string", key = true, required = true, max = %d }`, 1+rng.IntN(200))
	case 3:
		key = fmt.Sprintf(`{ type = "string", key = true, max = %d }`, 36+rng.IntN(100))
	}
	n := 1 + rng.IntN(8)
	keyAt := rng.IntN(n + 1)
	var fields, names []string
	for j := 0; j <= n; j++ {
		if j == keyAt {
			fields = append(fields, "id = "+key)
			continue
		}
		name := fmt.Sprintf("f%d", j)
		typ := types[rng.IntN(len(types))]
		attrs := []string{fmt.Sprintf("type = %q", typ)}
		readonly := rng.IntN(6) == 0
		indexed := false
		if readonly {
			attrs = append(attrs, "readonly = true")
		} else {
			names = append(names, name)
			if rng.IntN(3) == 0 {
				attrs = append(attrs, "required = true")
			}
		}
		if typ != template.TypeJSON {
			if rng.IntN(3) == 0 {
				attrs, indexed = append(attrs, "sortable = true"), true
			}
			if !readonly && rng.IntN(6) == 0 {
				attrs, indexed = append(attrs, "unique = true"), true
			}
		}
		if typ == template.TypeString {
			switch max := rng.IntN(4); {
			case indexed:
				attrs = append(attrs, fmt.Sprintf("max = %d", 1+rng.IntN(768)))
			case max == 0: // none
			case max == 1:
				attrs = append(attrs, fmt.Sprintf("max = %d", 1+rng.IntN(1024)))
			default:
				attrs = append(attrs, fmt.Sprintf("max = %d", 1025+rng.IntN(30000)))
			}
		}
		fields = append(fields, name+" = { "+strings.Join(attrs, ", ")+" }")
	}
	var params string
	if keyKind == 1 || keyKind == 2 {
		q := make([]string, 0, len(names)+1)
		q = append(q, `"id"`)
		for _, nm := range names {
			q = append(q, fmt.Sprintf("%q", nm))
		}
		params = "\n[params]\ncreate = [" + strings.Join(q, ", ") + "]\n"
	}
	return fmt.Sprintf(`name = "rnd%02d"
tla = %q
kind = "rec"
store = "mariadb"

[fields]
%s

[objects]
read = "vw_%s"
create = "sp_%s_create"
update = "sp_%s_update"
delete = "sp_%s_delete"
%s
[ops]
allow = ["create", "read", "update", "delete", "count"]
`, i, tla, strings.Join(fields, "\n"), tla, tla, tla, tla, params)
}

// randomValue returns a value for f as the Go value a read answers and
// its JSON for a request; nil for null when f may be null.
func randomValue(rng *rand.Rand, f *template.Field, nullable bool) (any, string) {
	if nullable && !f.Required && rng.IntN(4) == 0 {
		return nil, "null"
	}
	var v any
	switch f.Type {
	case template.TypeString:
		v = randomString(rng, f.Max)
	case template.TypeInt:
		v = []int64{math.MinInt64, math.MaxInt64, 0, -1, rng.Int64(), -rng.Int64N(1 << 40)}[rng.IntN(6)]
	case template.TypeFloat:
		v = []float64{0, -0.5, math.MaxFloat64, math.SmallestNonzeroFloat64, rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))}[rng.IntN(5)]
	case template.TypeBool:
		v = rng.IntN(2) == 0
	case template.TypeDatetime:
		sec := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + rng.Int64N(300*365*24*3600)
		v = time.Unix(sec, int64(rng.IntN(1000000))*1000).UTC()
	case template.TypeJSON:
		obj := map[string]any{"n": rng.IntN(1000), "s": randomString(rng, 20), "list": []any{1.5, "x", true, nil, map[string]any{"deep": []any{}}}}
		b, _ := json.Marshal(obj)
		return json.RawMessage(b), string(b)
	}
	if tm, ok := v.(time.Time); ok {
		return tm, `"` + tm.Format(time.RFC3339Nano) + `"`
	}
	b, _ := json.Marshal(v)
	return v, string(b)
}

// randomString returns a string of at most max characters (any length
// when max is 0), sometimes exactly max, with multi-byte characters.
func randomString(rng *rand.Rand, max int) string {
	runes := []rune("aZ9 _-é✓漢😀'\"\\%")
	n := rng.IntN(40)
	switch {
	case max > 0 && rng.IntN(3) == 0:
		n = min(max, 3000)
	case max == 0 && rng.IntN(4) == 0:
		n = 20000 // beyond TEXT's 64 KiB in utf8mb4 bytes
	case max > 0:
		n = min(n, max)
	}
	var b strings.Builder
	for range n {
		b.WriteRune(runes[rng.IntN(len(runes))])
	}
	return b.String()
}

// roundTrips creates two records, reads them back, updates one, reads it
// back, deletes both and counts none.
func roundTrips(t *testing.T, s *Store, tpl *template.Template, rng *rand.Rand) {
	exec := func(body string) *store.Result {
		t.Helper()
		res, err := run(t, s, tpl, body)
		if err != nil {
			t.Fatalf("%.300s: %v", body, err)
		}
		return res
	}
	var keys []any
	want := map[string]any{}  // field -> value of the first record, as a read answers it
	other := map[string]any{} // field -> value of the second record, which a unique field must not repeat
	value := func(f *template.Field, avoid any) (any, string) {
		for {
			v, text := randomValue(rng, f, true)
			if !f.Unique || v == nil || avoid == nil || !sameValue(v, avoid) {
				return v, text
			}
		}
	}
	for rec := range 2 {
		var data []string
		for _, f := range tpl.Params(wire.OpCreate) {
			if f.Readonly {
				continue
			}
			v, text := value(f, want[f.Name])
			if f.Key && f.Type == template.TypeString {
				v, text = fmt.Sprintf("k%d", rec), fmt.Sprintf(`"k%d"`, rec)
			} else if f.Key {
				v, text = int64(1000+rec), fmt.Sprint(1000+rec)
			}
			if rec == 0 {
				want[f.Name] = v
			} else {
				other[f.Name] = v
			}
			data = append(data, fmt.Sprintf("%q: %s", f.Name, text))
		}
		body := fmt.Sprintf(`{"template": %q, "op": "create", "data": {%s}}`, tpl.Name, strings.Join(data, ", "))
		if len(data) == 0 {
			body = fmt.Sprintf(`{"template": %q, "op": "create"}`, tpl.Name)
		}
		res := exec(body)
		if res.Affected != 1 || res.Key == nil {
			t.Fatalf("create: %+v", res)
		}
		if v, ok := want[tpl.Key.Name]; ok && rec == 0 && res.Key != v {
			t.Errorf("create answered key %#v, want the caller's %#v", res.Key, v)
		}
		if tpl.Key.Type == template.TypeString && want[tpl.Key.Name] == nil {
			if k, _ := res.Key.(string); len(k) != uuidLen {
				t.Errorf("generated string key %#v is not a UUID", res.Key)
			}
		}
		keys = append(keys, res.Key)
	}
	keyJSON := func(k any) string { b, _ := json.Marshal(k); return string(b) }
	read := func() map[string]any {
		t.Helper()
		res := exec(fmt.Sprintf(`{"template": %q, "op": "read", "filter": {"id": %s}}`, tpl.Name, keyJSON(keys[0])))
		if len(res.Rows) != 1 {
			t.Fatalf("read by key: %d rows", len(res.Rows))
		}
		return res.Rows[0]
	}
	compare := func(row map[string]any) {
		t.Helper()
		for _, f := range tpl.Fields {
			got := row[f.Name]
			switch {
			case f.Key:
				if got != keys[0] {
					t.Errorf("key %#v, want %#v", got, keys[0])
				}
			case f.Readonly && f.Type == template.TypeDatetime:
				if _, ok := got.(time.Time); !ok {
					t.Errorf("readonly %s = %#v, want the time the row was made", f.Name, got)
				}
			case f.Readonly:
				if got != nil {
					t.Errorf("readonly %s = %#v, want null", f.Name, got)
				}
			default:
				if w, ok := want[f.Name]; ok && !sameValue(got, w) {
					t.Errorf("field %s (%s, max %d) = %.200v, want %.200v", f.Name, f.Type, f.Max, got, w)
				}
			}
		}
	}
	compare(read())

	var data []string
	for _, f := range tpl.Params(wire.OpUpdate)[1:] {
		if f.Readonly {
			continue
		}
		v, text := value(f, other[f.Name])
		want[f.Name] = v
		data = append(data, fmt.Sprintf("%q: %s", f.Name, text))
	}
	if len(data) > 0 {
		res := exec(fmt.Sprintf(`{"template": %q, "op": "update", "filter": {"id": %s}, "data": {%s}}`, tpl.Name, keyJSON(keys[0]), strings.Join(data, ", ")))
		if res.Affected != 1 {
			t.Fatalf("update affected %d", res.Affected)
		}
		compare(read())
	}
	res := exec(fmt.Sprintf(`{"template": %q, "op": "delete", "filter": {"id": {"in": [%s, %s]}}}`, tpl.Name, keyJSON(keys[0]), keyJSON(keys[1])))
	if res.Affected != 2 {
		t.Errorf("delete affected %d", res.Affected)
	}
	if res := exec(fmt.Sprintf(`{"template": %q, "op": "count"}`, tpl.Name)); res.Count != 0 {
		t.Errorf("count after delete = %d", res.Count)
	}
}

// sameValue compares a value a read answers with the one written.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case json.RawMessage:
		g, ok := got.(json.RawMessage)
		if !ok {
			return false
		}
		var a, b any
		return json.Unmarshal(g, &a) == nil && json.Unmarshal(w, &b) == nil && reflect.DeepEqual(a, b)
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case []byte:
		g, ok := got.([]byte)
		return ok && bytes.Equal(g, w)
	}
	return got == want
}
