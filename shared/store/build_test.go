package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

var stores = map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo}

// usersTOML is the shipped users template, which has a field of every
// type.
func usersTOML(t *testing.T) string {
	t.Helper()
	return testenv.TemplateFile(t, "users_rec.toml")
}

const reportsTOML = `name  = "reports"
tla   = "rpt"
kind  = "rec"
store = "mariadb"

[fields]
id    = { type = "int", key = true }
title = { type = "string" }

[objects]
read = "vw_rpt"

[ops]
allow = ["read", "count"]
`

const profilesTOML = `name  = "profiles"
tla   = "prf"
kind  = "rec"
store = "mongo"

[fields]
id     = { type = "string", key = true }
handle = { type = "string", required = true, max = 40 }
since  = { type = "datetime", readonly = true }

[objects]
collection = "profiles"

[ops]
allow = ["create", "read", "update", "delete", "count"]
`

func parse(t *testing.T, src string) *template.Template {
	t.Helper()
	tpl, err := template.Parse("test.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// build decodes body as a request, as the dispatcher does, and builds it.
func build(t *testing.T, tpl *template.Template, body string, lim store.Limits) (*store.Query, error) {
	t.Helper()
	req, err := wire.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatalf("DecodeRequest(%s): %v", body, err)
	}
	return store.Build(tpl, "ev-1", req, lim)
}

// checkErr asserts err is a *wire.Error with code and field.
func checkErr(t *testing.T, err error, code wire.Code, field string) *wire.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %T %v is not a *wire.Error", err, err)
	}
	if we.Code != code || we.Field != field {
		t.Errorf("got %s field %q, want %s field %q (%v)", we.Code, we.Field, code, field, err)
	}
	return we
}

// render writes an expression compactly with the Go type of every value.
func render(e *store.Expr) string {
	if e == nil {
		return "<nil>"
	}
	list := func(name string, es []*store.Expr) string {
		parts := make([]string, len(es))
		for i, s := range es {
			parts[i] = render(s)
		}
		return name + "(" + strings.Join(parts, ", ") + ")"
	}
	switch {
	case e.Cond != nil:
		return fmt.Sprintf("%s %s %s", e.Cond.Field.Name, e.Cond.Op, val(e.Cond.Value))
	case e.And != nil:
		return list("and", e.And)
	case e.Or != nil:
		return list("or", e.Or)
	}
	return "<empty>"
}

func val(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return fmt.Sprintf("string(%q)", x)
	case int64, float64, bool:
		return fmt.Sprintf("%T(%v)", x, x)
	case time.Time:
		return "time(" + x.Format(time.RFC3339Nano) + " " + x.Location().String() + ")"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = val(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func TestBuildFilter(t *testing.T) {
	tpl := parse(t, usersTOML(t))
	for _, tc := range []struct {
		filter string
		want   string
	}{
		// A bare value means eq.
		{`{"email":"ann@example.com"}`, `email eq string("ann@example.com")`},
		{`{"age":42}`, `age eq int64(42)`},
		{`{"active":false}`, `active eq bool(false)`},
		{`{"score":2.5}`, `score eq float64(2.5)`},
		{`{"name":null}`, `name eq nil`},
		// Every operator, with the field's Go type.
		{`{"age":{"eq":1}}`, `age eq int64(1)`},
		{`{"age":{"ne":-1}}`, `age ne int64(-1)`},
		{`{"age":{"gt":9223372036854775807}}`, `age gt int64(9223372036854775807)`},
		{`{"age":{"gte":0}}`, `age gte int64(0)`},
		{`{"age":{"lt":3}}`, `age lt int64(3)`},
		{`{"age":{"lte":3}}`, `age lte int64(3)`},
		{`{"age":{"in":[1,2,3]}}`, `age in [int64(1) int64(2) int64(3)]`},
		{`{"age":{"nin":[4]}}`, `age nin [int64(4)]`},
		{`{"age":{"null":true}}`, `age null bool(true)`},
		{`{"age":{"null":false}}`, `age null bool(false)`},
		{`{"score":{"gt":1}}`, `score gt float64(1)`},
		{`{"score":{"lte":-0.25}}`, `score lte float64(-0.25)`},
		{`{"score":{"in":[1,2.5,1e3]}}`, `score in [float64(1) float64(2.5) float64(1000)]`},
		{`{"active":{"eq":true}}`, `active eq bool(true)`},
		{`{"active":{"ne":true}}`, `active ne bool(true)`},
		{`{"active":{"in":[true,false]}}`, `active in [bool(true) bool(false)]`},
		{`{"email":{"like":"%@example.com"}}`, `email like string("%@example.com")`},
		{`{"email":{"in":["a","b"]}}`, `email in [string("a") string("b")]`},
		{`{"email":{"nin":["a"]}}`, `email nin [string("a")]`},
		{`{"email":{"gt":"m"}}`, `email gt string("m")`},
		{`{"name":{"ne":null}}`, `name ne nil`},
		{`{"name":{"eq":null}}`, `name eq nil`},
		{`{"created":{"gte":"2026-01-01T00:00:00Z"}}`, `created gte time(2026-01-01T00:00:00Z UTC)`},
		{`{"created":{"lt":"2026-01-01T02:30:00+02:00"}}`, `created lt time(2026-01-01T00:30:00Z UTC)`},
		{`{"created":{"eq":"2026-03-04T05:06:07.123456789Z"}}`, `created eq time(2026-03-04T05:06:07.123456789Z UTC)`},
		{`{"created":"2026-01-02"}`, `created eq time(2026-01-02T00:00:00Z UTC)`},
		{`{"created":{"in":["2026-01-02","2026-01-03T00:00:00-01:00"]}}`, `created in [time(2026-01-02T00:00:00Z UTC) time(2026-01-03T01:00:00Z UTC)]`},
		{`{"prefs":{"null":true}}`, `prefs null bool(true)`},
		{`{"prefs":null}`, `prefs eq nil`},
		{`{"prefs":{"ne":null}}`, `prefs ne nil`},
		// Several operators on one field, several fields: all hold, in sorted order.
		{`{"age":{"lt":65,"gte":18}}`, `and(age gte int64(18), age lt int64(65))`},
		{`{"name":"x","age":3}`, `and(age eq int64(3), name eq string("x"))`},
		{`{"age":3,"name":"x"}`, `and(age eq int64(3), name eq string("x"))`},
		{`{"age":{"lte":9,"gt":1,"ne":5}}`, `and(age gt int64(1), age lte int64(9), age ne int64(5))`},
		{`{"or":[{"age":1}],"email":"a"}`, `and(email eq string("a"), or(age eq int64(1)))`},
		{`{"n\u0061me":"\u00e9\"\\"}`, `name eq string("é\"\\")`},
		{`{"age":-0}`, `age eq int64(0)`},
		// and / or, nested.
		{`{"or":[{"email":"a"},{"email":"b"}]}`, `or(email eq string("a"), email eq string("b"))`},
		{`{"and":[{"age":{"gt":1}},{"active":true}]}`, `and(age gt int64(1), active eq bool(true))`},
		{`{"or":[{"email":"a"},{"and":[{"age":{"gt":1}},{"active":true}]}]}`,
			`or(email eq string("a"), and(age gt int64(1), active eq bool(true)))`},
		{`{"email":"a","or":[{"age":1},{"age":2}]}`, `and(email eq string("a"), or(age eq int64(1), age eq int64(2)))`},
		{`{"or":[{"age":1,"name":"n"}]}`, `or(and(age eq int64(1), name eq string("n")))`},
		// No filter.
		{`{}`, `<nil>`},
		{`null`, `<nil>`},
		// Injection text is a value, untouched.
		{`{"name":"'; DROP TABLE tbl_usr; --"}`, `name eq string("'; DROP TABLE tbl_usr; --")`},
		{`{"name":{"like":"%' OR '1'='1"}}`, `name like string("%' OR '1'='1")`},
		{`{"email":{"in":["x","'); DELETE FROM vw_usr; --"]}}`, `email in [string("x") string("'); DELETE FROM vw_usr; --")]`},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			q, err := build(t, tpl, `{"template":"users","op":"read","filter":`+tc.filter+`}`, store.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(q.Filter); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			// Conditions hold the template's own fields.
			var walk func(e *store.Expr)
			walk = func(e *store.Expr) {
				if e == nil {
					return
				}
				if e.Cond != nil && tpl.Field(e.Cond.Field.Name) != e.Cond.Field {
					t.Errorf("condition on a field that is not the template's: %+v", e.Cond.Field)
				}
				for _, s := range append(slices.Clone(e.And), e.Or...) {
					walk(s)
				}
			}
			walk(q.Filter)
		})
	}
}

func nest(levels int) string {
	f := `{"age":1}`
	for range levels {
		f = `{"and":[` + f + `]}`
	}
	return f
}

func TestBuildFilterErrors(t *testing.T) {
	tpl := parse(t, usersTOML(t))
	small := store.DefaultLimits
	small.MaxInList, small.MaxDepth = 3, 3
	long := strings.Repeat("x", 255)
	for _, tc := range []struct {
		name   string
		filter string
		lim    store.Limits
		code   wire.Code
		field  string
	}{
		// Field names must be the template's plain names.
		{"unknown field", `{"emial":"a"}`, store.DefaultLimits, wire.CodeBadField, "emial"},
		{"sql in field name", `{"email; DROP TABLE users":"a"}`, store.DefaultLimits, wire.CodeBadField, "email; DROP TABLE users"},
		{"quoted field name", "{\"`id`\":1}", store.DefaultLimits, wire.CodeBadField, "`id`"},
		{"stored name", `{"usr_email":"a"}`, store.DefaultLimits, wire.CodeBadField, "usr_email"},
		{"mongo operator as field", `{"$where":"1"}`, store.DefaultLimits, wire.CodeBadField, "$where"},
		{"dotted field", `{"a.b":1}`, store.DefaultLimits, wire.CodeBadField, "a.b"},
		{"upper-case field", `{"EMAIL":"a"}`, store.DefaultLimits, wire.CodeBadField, "EMAIL"},
		{"empty field name", `{"":"a"}`, store.DefaultLimits, wire.CodeBadField, ""},
		{"unknown field nested", `{"or":[{"age":1},{"and":[{"nope":1}]}]}`, store.DefaultLimits, wire.CodeBadField, "nope"},
		// Operators are a closed set.
		{"mongo operator", `{"age":{"$ne":1}}`, store.DefaultLimits, wire.CodeBadRequest, "age"},
		{"sql in operator", `{"age":{"eq; --":1}}`, store.DefaultLimits, wire.CodeBadRequest, "age"},
		{"upper-case operator", `{"age":{"EQ":1}}`, store.DefaultLimits, wire.CodeBadRequest, "age"},
		{"sql operator", `{"age":{"=":1}}`, store.DefaultLimits, wire.CodeBadRequest, "age"},
		{"empty condition", `{"age":{}}`, store.DefaultLimits, wire.CodeBadRequest, "age"},
		{"json object as value", `{"prefs":{"a":1}}`, store.DefaultLimits, wire.CodeBadRequest, "prefs"},
		// Filter shape.
		{"filter array", `[{"age":1}]`, store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"filter string", `"age = 1"`, store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"and not array", `{"and":{"age":1}}`, store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"and empty", `{"and":[]}`, store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"or of non-objects", `{"or":[1,2]}`, store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"or of empty object", `{"or":[{}]}`, store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"and with empty object", `{"and":[{"age":1},{}]}`, store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"too deep", nest(8), store.DefaultLimits, wire.CodeBadRequest, "filter"},
		{"too deep small", nest(3), small, wire.CodeBadRequest, "filter"},
		{"in too long", `{"age":{"in":[1,2,3,4]}}`, small, wire.CodeTooLarge, "age"},
		{"in too long with junk after", `{"age":{"in":[1,2,3,"x",[5]]}}`, small, wire.CodeTooLarge, "age"},
		{"in holding null", `{"age":{"in":[1,null]}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"object for a string", `{"email":{"like":{"x":1}}}`, store.DefaultLimits, wire.CodeBadValue, "email"},
		{"float overflow", `{"score":1e999}`, store.DefaultLimits, wire.CodeBadValue, "score"},
		{"nin too long", `{"email":{"nin":["a","b","c","d"]}}`, small, wire.CodeTooLarge, "email"},
		// Values must fit the field's type.
		{"string for int", `{"age":"abc"}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"numeric string for int", `{"age":"1"}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"fraction for int", `{"age":1.5}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"exponent for int", `{"age":1e3}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"int overflow", `{"age":{"gt":9223372036854775808}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"bool for int", `{"age":true}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"array for int eq", `{"age":{"eq":[1]}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"number for string", `{"email":5}`, store.DefaultLimits, wire.CodeBadValue, "email"},
		{"bool for string", `{"name":{"ne":false}}`, store.DefaultLimits, wire.CodeBadValue, "name"},
		{"string over max", `{"email":"` + long + `"}`, store.DefaultLimits, wire.CodeBadValue, "email"},
		{"NUL in string", `{"email":"a\u0000b"}`, store.DefaultLimits, wire.CodeBadValue, "email"},
		{"string for float", `{"score":"1.5"}`, store.DefaultLimits, wire.CodeBadValue, "score"},
		{"float overflow", `{"score":1e400}`, store.DefaultLimits, wire.CodeBadValue, "score"},
		{"string for bool", `{"active":"true"}`, store.DefaultLimits, wire.CodeBadValue, "active"},
		{"number for bool", `{"active":1}`, store.DefaultLimits, wire.CodeBadValue, "active"},
		{"bool ordered", `{"active":{"gt":false}}`, store.DefaultLimits, wire.CodeBadValue, "active"},
		{"bad datetime", `{"created":"yesterday"}`, store.DefaultLimits, wire.CodeBadValue, "created"},
		{"datetime without zone", `{"created":"2026-01-01T00:00:00"}`, store.DefaultLimits, wire.CodeBadValue, "created"},
		{"datetime out of range", `{"created":"2026-13-01"}`, store.DefaultLimits, wire.CodeBadValue, "created"},
		{"number for datetime", `{"created":{"gt":1767225600}}`, store.DefaultLimits, wire.CodeBadValue, "created"},
		{"json compared", `{"prefs":{"eq":{"a":1}}}`, store.DefaultLimits, wire.CodeBadValue, "prefs"},
		{"json in", `{"prefs":{"in":[1]}}`, store.DefaultLimits, wire.CodeBadValue, "prefs"},
		// Operator arguments.
		{"gt null", `{"age":{"gt":null}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"like null", `{"name":{"like":null}}`, store.DefaultLimits, wire.CodeBadValue, "name"},
		{"like on int", `{"age":{"like":"1%"}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"like number", `{"name":{"like":1}}`, store.DefaultLimits, wire.CodeBadValue, "name"},
		{"null not bool", `{"name":{"null":"yes"}}`, store.DefaultLimits, wire.CodeBadValue, "name"},
		{"null with null", `{"name":{"null":null}}`, store.DefaultLimits, wire.CodeBadValue, "name"},
		{"in not array", `{"age":{"in":1}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"in empty", `{"age":{"in":[]}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"in holding null", `{"age":{"in":[1,null]}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
		{"in wrong type", `{"age":{"nin":[1,"2"]}}`, store.DefaultLimits, wire.CodeBadValue, "age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := build(t, tpl, `{"template":"users","op":"read","filter":`+tc.filter+`}`, tc.lim)
			if err == nil {
				t.Fatalf("built %s", render(q.Filter))
			}
			checkErr(t, err, tc.code, tc.field)
		})
	}
}

func TestBuildFilterLimits(t *testing.T) {
	tpl := parse(t, usersTOML(t))
	lim := store.DefaultLimits
	// The deepest filter the limit allows passes.
	if _, err := build(t, tpl, `{"template":"users","op":"read","filter":`+nest(lim.MaxDepth-1)+`}`, lim); err != nil {
		t.Errorf("depth %d: %v", lim.MaxDepth, err)
	}
	lim.MaxInList = 3
	if _, err := build(t, tpl, `{"template":"users","op":"read","filter":{"age":{"in":[1,2,3]}}}`, lim); err != nil {
		t.Errorf("in of MaxInList values: %v", err)
	}
	// A string of max characters passes, however many bytes they take.
	s := strings.Repeat("é", 254)
	q, err := build(t, tpl, `{"template":"users","op":"read","filter":{"email":"`+s+`"}}`, store.DefaultLimits)
	if err != nil {
		t.Fatalf("254 two-byte characters: %v", err)
	}
	if q.Filter.Cond.Value != s {
		t.Error("value changed")
	}
}

func TestBuildRead(t *testing.T) {
	tpl := parse(t, usersTOML(t))
	lim := store.Limits{DefaultLimit: 50, MaxLimit: 500, MaxOffset: 100, MaxInList: 10, MaxDepth: 4, MaxSort: 2}
	for _, tc := range []struct {
		name          string
		body          string
		fields        string
		sort          string
		limit, offset int
	}{
		{"defaults", `{"template":"users","op":"read"}`, "id email name age score active prefs created", "", 50, 0},
		{"fields in request order, no duplicates", `{"template":"users","op":"read","fields":["name","id","name"]}`, "name id", "", 50, 0},
		{"sort", `{"template":"users","op":"read","sort":["-created","+email"]}`, "id email name age score active prefs created", "-created +email", 50, 0},
		{"plain sort", `{"template":"users","op":"read","sort":["age"]}`, "id email name age score active prefs created", "+age", 50, 0},
		{"limit kept", `{"template":"users","op":"read","limit":7,"offset":14}`, "id email name age score active prefs created", "", 7, 14},
		{"limit clamped", `{"template":"users","op":"read","limit":100000}`, "id email name age score active prefs created", "", 500, 0},
		{"limit at max", `{"template":"users","op":"read","limit":500}`, "id email name age score active prefs created", "", 500, 0},
		{"data null is no data", `{"template":"users","op":"read","data":null}`, "id email name age score active prefs created", "", 50, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := build(t, tpl, tc.body, lim)
			if err != nil {
				t.Fatal(err)
			}
			var fs, ss []string
			for _, f := range q.Fields {
				fs = append(fs, f.Name)
			}
			for _, s := range q.Sort {
				d := "+"
				if s.Desc {
					d = "-"
				}
				ss = append(ss, d+s.Field.Name)
			}
			if got := strings.Join(fs, " "); got != tc.fields {
				t.Errorf("fields %q, want %q", got, tc.fields)
			}
			if got := strings.Join(ss, " "); got != tc.sort {
				t.Errorf("sort %q, want %q", got, tc.sort)
			}
			if q.Limit != tc.limit || q.Offset != tc.offset {
				t.Errorf("limit %d offset %d, want %d %d", q.Limit, q.Offset, tc.limit, tc.offset)
			}
			if q.Op != wire.OpRead || q.Event != "ev-1" || q.Template != tpl || q.Data != nil {
				t.Errorf("query %+v", q)
			}
		})
	}
	// The default limit is itself bounded by the maximum.
	q, err := build(t, tpl, `{"template":"users","op":"read"}`, store.Limits{DefaultLimit: 100, MaxLimit: 10, MaxSort: 1, MaxDepth: 1, MaxInList: 1})
	if err != nil || q.Limit != 10 {
		t.Errorf("limit %v %v, want 10", q, err)
	}
}

func TestBuildReadErrors(t *testing.T) {
	tpl := parse(t, usersTOML(t))
	for _, tc := range []struct {
		name  string
		body  string
		code  wire.Code
		field string
	}{
		{"unknown field", `{"template":"users","op":"read","fields":["id","emial"]}`, wire.CodeBadField, "emial"},
		{"sql in fields", `{"template":"users","op":"read","fields":["id","email; DROP TABLE users"]}`, wire.CodeBadField, "email; DROP TABLE users"},
		{"expression in fields", `{"template":"users","op":"read","fields":["COUNT(*)"]}`, wire.CodeBadField, "COUNT(*)"},
		{"stored name in fields", `{"template":"users","op":"read","fields":["usr_id"]}`, wire.CodeBadField, "usr_id"},
		{"star", `{"template":"users","op":"read","fields":["*"]}`, wire.CodeBadField, "*"},
		{"sql in sort", `{"template":"users","op":"read","sort":["-id; DELETE"]}`, wire.CodeBadField, "id; DELETE"},
		{"direction in sort", `{"template":"users","op":"read","sort":["id DESC"]}`, wire.CodeBadField, "id DESC"},
		{"stored name in sort", `{"template":"users","op":"read","sort":["usr_id"]}`, wire.CodeBadField, "usr_id"},
		{"double minus sort", `{"template":"users","op":"read","sort":["--id"]}`, wire.CodeBadField, "-id"},
		{"bare minus sort", `{"template":"users","op":"read","sort":["-"]}`, wire.CodeBadField, ""},
		{"mongo operator sort", `{"template":"users","op":"read","sort":["$natural"]}`, wire.CodeBadField, "$natural"},
		{"json sort", `{"template":"users","op":"read","sort":["prefs"]}`, wire.CodeBadField, "prefs"},
		{"too many sort keys", `{"template":"users","op":"read","sort":["id","email","name","age","score","active","created","-id","-email"]}`, wire.CodeTooLarge, "sort"},
		{"data on read", `{"template":"users","op":"read","data":{"name":"x"}}`, wire.CodeBadRequest, "data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, tpl, tc.body, store.DefaultLimits)
			checkErr(t, err, tc.code, tc.field)
		})
	}
}

func TestBuildCount(t *testing.T) {
	tpl := parse(t, usersTOML(t))
	q, err := build(t, tpl, `{"template":"users","op":"count","filter":{"active":true}}`, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if q.Op != wire.OpCount || render(q.Filter) != "active eq bool(true)" || q.Limit != 0 || q.Fields != nil || q.Sort != nil {
		t.Errorf("query %+v", q)
	}
	for _, body := range []string{
		`{"template":"users","op":"count","fields":["id"]}`,
		`{"template":"users","op":"count","sort":["id"]}`,
		`{"template":"users","op":"count","limit":1}`,
		`{"template":"users","op":"count","offset":1}`,
	} {
		_, err := build(t, tpl, body, store.DefaultLimits)
		checkErr(t, err, wire.CodeBadRequest, "")
	}
	_, err = build(t, tpl, `{"template":"users","op":"count","data":{"a":1}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadRequest, "data")
}

func assigns(q *store.Query) string {
	parts := make([]string, len(q.Data))
	for i, a := range q.Data {
		parts[i] = a.Field.Name + "=" + val(a.Value)
	}
	return strings.Join(parts, " ")
}

func TestBuildCreate(t *testing.T) {
	users := parse(t, usersTOML(t))
	for _, tc := range []struct {
		name string
		data string
		want string
	}{
		{"required only", `{"email":"a@b"}`, `email=string("a@b")`},
		{"declaration order", `{"prefs":null,"active":true,"score":1,"age":30,"name":"Ann","email":"a@b"}`,
			`email=string("a@b") name=string("Ann") age=int64(30) score=float64(1) active=bool(true) prefs=nil`},
		{"optional null", `{"email":"a@b","name":null}`, `email=string("a@b") name=nil`},
		{"injection as value", `{"email":"x@y","name":"'; DROP TABLE tbl_usr; --"}`, `email=string("x@y") name=string("'; DROP TABLE tbl_usr; --")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := build(t, users, `{"template":"users","op":"create","data":`+tc.data+`}`, store.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if got := assigns(q); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if q.Filter != nil || q.Limit != 0 {
				t.Errorf("query %+v", q)
			}
		})
	}

	// json values become plain Go values.
	q, err := build(t, users, `{"template":"users","op":"create","data":{"email":"a@b","prefs":{"a":1,"b":[1.5,"x",true,null,2.0],"c":{"d":-7}}}}`, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": int64(1), "b": []any{1.5, "x", true, nil, float64(2)}, "c": map[string]any{"d": int64(-7)}}
	if got := q.Data[1].Value; !reflect.DeepEqual(got, want) {
		t.Errorf("prefs = %#v\nwant %#v", got, want)
	}
	// A json field takes any JSON value.
	q, err = build(t, users, `{"template":"users","op":"create","data":{"email":"a@b","prefs":"text"}}`, store.DefaultLimits)
	if err != nil || q.Data[1].Value != "text" {
		t.Errorf("json string: %v %v", q, err)
	}
}

func TestBuildCreateErrors(t *testing.T) {
	users := parse(t, usersTOML(t))
	for _, tc := range []struct {
		name  string
		body  string
		code  wire.Code
		field string
	}{
		{"no data", `{"template":"users","op":"create"}`, wire.CodeBadValue, "email"},
		{"null data", `{"template":"users","op":"create","data":null}`, wire.CodeBadValue, "email"},
		{"missing required", `{"template":"users","op":"create","data":{"name":"Ann"}}`, wire.CodeBadValue, "email"},
		{"required null", `{"template":"users","op":"create","data":{"email":null}}`, wire.CodeBadValue, "email"},
		{"data not object", `{"template":"users","op":"create","data":["email"]}`, wire.CodeBadRequest, "data"},
		{"unknown field", `{"template":"users","op":"create","data":{"email":"a","nmae":"x"}}`, wire.CodeBadField, "nmae"},
		{"sql in field", `{"template":"users","op":"create","data":{"email":"a","name; DROP TABLE users":"x"}}`, wire.CodeBadField, "name; DROP TABLE users"},
		{"stored name", `{"template":"users","op":"create","data":{"usr_email":"a"}}`, wire.CodeBadField, "usr_email"},
		{"readonly", `{"template":"users","op":"create","data":{"email":"a","created":"2026-01-01T00:00:00Z"}}`, wire.CodeBadField, "created"},
		{"key not a parameter", `{"template":"users","op":"create","data":{"email":"a","id":5}}`, wire.CodeBadField, "id"},
		{"bad value", `{"template":"users","op":"create","data":{"email":"a","age":"old"}}`, wire.CodeBadValue, "age"},
		{"string over max", `{"template":"users","op":"create","data":{"email":"a","name":"` + strings.Repeat("n", 201) + `"}}`, wire.CodeBadValue, "name"},
		{"filter", `{"template":"users","op":"create","filter":{"id":1},"data":{"email":"a"}}`, wire.CodeBadRequest, "filter"},
		{"sort", `{"template":"users","op":"create","sort":["id"],"data":{"email":"a"}}`, wire.CodeBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, users, tc.body, store.DefaultLimits)
			checkErr(t, err, tc.code, tc.field)
		})
	}
}

func TestBuildCreateKey(t *testing.T) {
	// MongoDB: a create may choose its key.
	prf := parse(t, profilesTOML)
	q, err := build(t, prf, `{"template":"profiles","op":"create","data":{"handle":"ann","id":"u-1"}}`, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := assigns(q); got != `id=string("u-1") handle=string("ann")` {
		t.Errorf("assigns %s", got)
	}
	_, err = build(t, prf, `{"template":"profiles","op":"create","data":{"handle":"ann","id":null}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadValue, "id")
	_, err = build(t, prf, `{"template":"profiles","op":"create","data":{"handle":"ann","since":"2026-01-01"}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadField, "since")
	_, err = build(t, prf, `{"template":"profiles","op":"create","data":{"handle":"ann","$set":1}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadField, "$set")

	// MariaDB with the key among the create parameters: the caller names
	// each record, so the template marks the key required (the lint).
	src := strings.Replace(usersTOML(t), "[ops]", "[params]\ncreate = [\"id\", \"email\"]\n\n[ops]", 1)
	src = strings.Replace(src, `id      = { type = "int", key = true`, `id      = { type = "int", key = true, required = true`, 1)
	users := parse(t, src)
	q, err = build(t, users, `{"template":"users","op":"create","data":{"email":"a","id":9}}`, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := assigns(q); got != `id=int64(9) email=string("a")` {
		t.Errorf("assigns %s", got)
	}
	// A writable field left out of the parameters cannot be set.
	_, err = build(t, users, `{"template":"users","op":"create","data":{"email":"a","name":"x"}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadField, "name")
	// A create without the key is refused naming the field, before any
	// database sees it.
	_, err = build(t, users, `{"template":"users","op":"create","data":{"email":"a"}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadValue, "id")
}

func TestBuildUpdate(t *testing.T) {
	users := parse(t, usersTOML(t))
	q, err := build(t, users, `{"template":"users","op":"update","filter":{"id":7},"data":{"name":null,"age":41,"email":"n@x"}}`, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := assigns(q); got != `email=string("n@x") name=nil age=int64(41)` {
		t.Errorf("assigns %s", got)
	}
	if render(q.Filter) != "id eq int64(7)" || q.Limit != 0 {
		t.Errorf("query %+v", q)
	}
	for _, tc := range []struct {
		name  string
		body  string
		code  wire.Code
		field string
	}{
		{"no filter", `{"template":"users","op":"update","data":{"name":"x"}}`, wire.CodeBadRequest, "filter"},
		{"empty filter", `{"template":"users","op":"update","filter":{},"data":{"name":"x"}}`, wire.CodeBadRequest, "filter"},
		{"filter of empty or", `{"template":"users","op":"update","filter":{"or":[{}]},"data":{"name":"x"}}`, wire.CodeBadRequest, "filter"},
		{"null filter", `{"template":"users","op":"update","filter":null,"data":{"name":"x"}}`, wire.CodeBadRequest, "filter"},
		{"no data", `{"template":"users","op":"update","filter":{"id":1}}`, wire.CodeBadRequest, "data"},
		{"empty data", `{"template":"users","op":"update","filter":{"id":1},"data":{}}`, wire.CodeBadRequest, "data"},
		{"key in data", `{"template":"users","op":"update","filter":{"id":1},"data":{"id":2}}`, wire.CodeBadField, "id"},
		{"readonly in data", `{"template":"users","op":"update","filter":{"id":1},"data":{"created":"2026-01-01"}}`, wire.CodeBadField, "created"},
		{"required to null", `{"template":"users","op":"update","filter":{"id":1},"data":{"email":null}}`, wire.CodeBadValue, "email"},
		{"unknown data field", `{"template":"users","op":"update","filter":{"id":1},"data":{"usr_name":"x"}}`, wire.CodeBadField, "usr_name"},
		{"bad filter field", `{"template":"users","op":"update","filter":{"id; --":1},"data":{"name":"x"}}`, wire.CodeBadField, "id; --"},
		{"bad value", `{"template":"users","op":"update","filter":{"id":1},"data":{"active":"yes"}}`, wire.CodeBadValue, "active"},
		{"limit", `{"template":"users","op":"update","filter":{"id":1},"data":{"name":"x"},"limit":1}`, wire.CodeBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, users, tc.body, store.DefaultLimits)
			checkErr(t, err, tc.code, tc.field)
		})
	}

	// A field the update procedure does not take cannot be set.
	src := strings.Replace(usersTOML(t), "[ops]", "[params]\nupdate = [\"id\", \"name\"]\n\n[ops]", 1)
	narrow := parse(t, src)
	_, err = build(t, narrow, `{"template":"users","op":"update","filter":{"id":1},"data":{"email":"x"}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadField, "email")

	// MongoDB: the key cannot be changed either.
	prf := parse(t, profilesTOML)
	_, err = build(t, prf, `{"template":"profiles","op":"update","filter":{"id":"a"},"data":{"id":"b"}}`, store.DefaultLimits)
	checkErr(t, err, wire.CodeBadField, "id")
}

func TestBuildDelete(t *testing.T) {
	users := parse(t, usersTOML(t))
	q, err := build(t, users, `{"template":"users","op":"delete","filter":{"id":{"in":[1,2]}},"data":null}`, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if render(q.Filter) != "id in [int64(1) int64(2)]" || q.Data != nil {
		t.Errorf("query %+v", q)
	}
	for _, tc := range []struct {
		name  string
		body  string
		code  wire.Code
		field string
	}{
		{"no filter", `{"template":"users","op":"delete"}`, wire.CodeBadRequest, "filter"},
		{"empty filter", `{"template":"users","op":"delete","filter":{}}`, wire.CodeBadRequest, "filter"},
		// An empty object inside and/or matched every record on MongoDB
		// ($or:[{}]) and so got around the filter requirement.
		{"filter of empty or", `{"template":"users","op":"delete","filter":{"or":[{}]}}`, wire.CodeBadRequest, "filter"},
		{"filter of empty and", `{"template":"users","op":"delete","filter":{"and":[{}]}}`, wire.CodeBadRequest, "filter"},
		{"filter of empty nested", `{"template":"users","op":"delete","filter":{"or":[{"and":[{}]}]}}`, wire.CodeBadRequest, "filter"},
		{"data", `{"template":"users","op":"delete","filter":{"id":1},"data":{"name":"x"}}`, wire.CodeBadRequest, "data"},
		{"sort", `{"template":"users","op":"delete","filter":{"id":1},"sort":["id"]}`, wire.CodeBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, users, tc.body, store.DefaultLimits)
			checkErr(t, err, tc.code, tc.field)
		})
	}
}

func TestBuildOpNotAllowed(t *testing.T) {
	reports := parse(t, reportsTOML)
	for _, op := range []wire.Op{wire.OpCreate, wire.OpUpdate, wire.OpDelete, wire.OpPing} {
		req := &wire.Request{Template: "reports", Op: op, Filter: json.RawMessage(`{"id":1}`), Data: json.RawMessage(`{"title":"x"}`)}
		_, err := store.Build(reports, "ev", req, store.DefaultLimits)
		we := checkErr(t, err, wire.CodeOpNotAllowed, "")
		if we != nil && !strings.Contains(we.Message, "allowed: read, count") {
			t.Errorf("%s: message %q does not list the allowed ops", op, we.Message)
		}
	}
	for _, op := range []wire.Op{wire.OpRead, wire.OpCount} {
		if _, err := store.Build(reports, "ev", &wire.Request{Template: "reports", Op: op}, store.DefaultLimits); err != nil {
			t.Errorf("%s: %v", op, err)
		}
	}
}

// Raw request parts that DecodeRequest lets through but are not valid JSON
// for the filter language are still rejected.
func TestBuildRawJSON(t *testing.T) {
	users := parse(t, usersTOML(t))
	for _, tc := range []struct {
		name string
		req  wire.Request
		code wire.Code
		fld  string
	}{
		{"broken filter", wire.Request{Op: wire.OpRead, Filter: json.RawMessage(`{"id":`)}, wire.CodeBadRequest, "filter"},
		{"broken data", wire.Request{Op: wire.OpCreate, Data: json.RawMessage(`{"email":`)}, wire.CodeBadRequest, "data"},
		{"repeated field", wire.Request{Op: wire.OpRead, Filter: json.RawMessage(`{"age":1,"age":2}`)}, wire.CodeBadRequest, "filter"},
		{"repeated operator", wire.Request{Op: wire.OpRead, Filter: json.RawMessage(`{"age":{"gt":1,"gt":2}}`)}, wire.CodeBadRequest, "filter"},
		{"repeated data field", wire.Request{Op: wire.OpCreate, Data: json.RawMessage(`{"email":"a","email":"b"}`)}, wire.CodeBadRequest, "data"},
		{"trailing value", wire.Request{Op: wire.OpRead, Filter: json.RawMessage(`{"age":1} {}`)}, wire.CodeBadRequest, "filter"},
		{"invalid UTF-8", wire.Request{Op: wire.OpRead, Filter: json.RawMessage("{\"name\":\"\xff\"}")}, wire.CodeBadRequest, "filter"},
	} {
		_, err := store.Build(users, "ev", &tc.req, store.DefaultLimits)
		checkErr(t, err, tc.code, tc.fld)
	}
}

// The same bad request always gets the same error: the first bad name in
// the order sent (the filter and data are read as a stream, never through
// a map).
func TestBuildErrorsDeterministic(t *testing.T) {
	users := parse(t, usersTOML(t))
	for _, tc := range []struct {
		body  string
		code  wire.Code
		field string
	}{
		{`{"template":"users","op":"create","data":{"zz":1,"email":"a","mm":2,"aa":3}}`, wire.CodeBadField, "zz"},
		{`{"template":"users","op":"update","filter":{"id":1},"data":{"created":"2026-01-01","age":"x","id":2}}`, wire.CodeBadField, "created"},
		{`{"template":"users","op":"update","filter":{"id":1},"data":{"age":"x","created":"2026-01-01","id":2}}`, wire.CodeBadValue, "age"},
		{`{"template":"users","op":"read","filter":{"zz":1,"aa":2,"mm":3}}`, wire.CodeBadField, "zz"},
	} {
		for range 30 {
			_, err := build(t, users, tc.body, store.DefaultLimits)
			if we := checkErr(t, err, tc.code, tc.field); we.Field != tc.field {
				break
			}
		}
	}
}

// Issue 9 item 6: what one read may ask of the store is bounded by the
// node's limits and the template, whatever the caller sends.
func TestBuildReadBounds(t *testing.T) {
	tpl := parse(t, usersTOML(t))
	base := store.DefaultLimits
	base.MaxOffset, base.MaxLikeLength, base.MaxLikeWildcards = 1000, 10, 3
	// ok and fails build a read with extra members under lim.
	ok := func(t *testing.T, lim store.Limits, extra string) {
		t.Helper()
		if _, err := build(t, tpl, `{"template":"users","op":"read"`+extra+`}`, lim); err != nil {
			t.Errorf("%s: %v", extra, err)
		}
	}
	fails := func(t *testing.T, lim store.Limits, extra string, code wire.Code, field string, msg ...string) {
		t.Helper()
		_, err := build(t, tpl, `{"template":"users","op":"read"`+extra+`}`, lim)
		we := checkErr(t, err, code, field)
		for _, m := range msg {
			if !strings.Contains(we.Message, m) {
				t.Errorf("%s: message %q does not contain %q", extra, we.Message, m)
			}
		}
	}

	t.Run("offset", func(t *testing.T) {
		lim := base
		ok(t, lim, `,"offset":1000`)
		fails(t, lim, `,"offset":1001`, wire.CodeTooLarge, "offset", "at most 1000")
		fails(t, lim, `,"offset":999999999999`, wire.CodeTooLarge, "offset", "at most 1000")
		lim.MaxOffset = 0
		ok(t, lim, `,"offset":0`)
		fails(t, lim, `,"offset":1`, wire.CodeTooLarge, "offset", "at most 0")
	})

	t.Run("like", func(t *testing.T) {
		lim := base
		// Length in characters.
		ok(t, lim, `,"filter":{"email":{"like":"abcdefghij"}}`)
		ok(t, lim, `,"filter":{"email":{"like":"éééééééééé"}}`) // 10 characters, 20 bytes
		fails(t, lim, `,"filter":{"email":{"like":"abcdefghijk"}}`, wire.CodeTooLarge, "email", "11 characters", "at most 10")
		fails(t, lim, `,"filter":{"name":{"like":"ééééééééééé"}}`, wire.CodeTooLarge, "name", "11 characters")
		// Wildcards: % and _ not escaped.
		ok(t, lim, `,"filter":{"email":{"like":"%a_b%"}}`)
		ok(t, lim, `,"filter":{"email":{"like":"%\\%\\__%"}}`) // two of the five are escaped
		ok(t, lim, `,"filter":{"email":{"like":"\\é%_%"}}`)    // an escaped multi-byte character
		fails(t, lim, `,"filter":{"email":{"like":"%a_b%_"}}`, wire.CodeTooLarge, "email", "4 wildcards", "at most 3")
		fails(t, lim, `,"filter":{"email":{"like":"%%%%"}}`, wire.CodeTooLarge, "email", "4 wildcards")
		fails(t, lim, `,"filter":{"email":{"like":"\\\\%_%%"}}`, wire.CodeTooLarge, "email") // an escaped backslash escapes nothing
		fails(t, lim, `,"filter":{"or":[{"age":1},{"name":{"like":"____"}}]}`, wire.CodeTooLarge, "name")
		lim.MaxLikeWildcards = 0
		ok(t, lim, `,"filter":{"email":{"like":"a\\%b"}}`)
		fails(t, lim, `,"filter":{"email":{"like":"a%"}}`, wire.CodeTooLarge, "email")
	})

	t.Run("sort", func(t *testing.T) {
		// The key by default, the fields the template marks, nothing else.
		ok(t, base, `,"sort":["id"]`)
		ok(t, base, `,"sort":["-created","email","+name","-age"]`)
		fails(t, base, `,"sort":["score"]`, wire.CodeBadField, "score",
			"field score is not sortable; the DBA marks sortable fields in the template", "id, email, name, age, created")
		fails(t, base, `,"sort":["-id","-active"]`, wire.CodeBadField, "active", "not sortable")
		// A key the template declares not sortable is not.
		src := strings.Replace(usersTOML(t), `id      = { type = "int", key = true }`, `id      = { type = "int", key = true, sortable = false }`, 1)
		_, err := build(t, parse(t, src), `{"template":"users","op":"read","sort":["-id"]}`, base)
		checkErr(t, err, wire.CodeBadField, "id")
	})
}

// Issue 9 item 6: Build hands the node's max_affected to the adapters for
// the writes that change matching records.
func TestBuildMaxAffected(t *testing.T) {
	users := parse(t, usersTOML(t))
	lim := store.DefaultLimits
	lim.MaxAffected = 7
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"template":"users","op":"update","filter":{"age":{"gt":1}},"data":{"name":"x"}}`, 7},
		{`{"template":"users","op":"delete","filter":{"age":{"gt":1}}}`, 7},
		{`{"template":"users","op":"read","filter":{"age":{"gt":1}}}`, 0},
		{`{"template":"users","op":"count","filter":{"age":{"gt":1}}}`, 0},
		{`{"template":"users","op":"create","data":{"email":"a"}}`, 0},
	} {
		q, err := build(t, users, tc.body, lim)
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if q.MaxAffected != tc.want {
			t.Errorf("%s: MaxAffected %d, want %d", tc.body, q.MaxAffected, tc.want)
		}
	}
}
