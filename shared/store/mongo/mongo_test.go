package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Integration tests run against the MongoDB-wire server named by
// BEDS_TEST_MONGO_URI (default mongodb://127.0.0.1:27017; any database in
// it is replaced). Each test makes its own database and drops it.

const defaultTestURI = "mongodb://127.0.0.1:27017"

func testURI() string {
	if u := os.Getenv("BEDS_TEST_MONGO_URI"); u != "" {
		return u
	}
	return defaultTestURI
}

// withDB returns uri with its database path replaced by db.
func withDB(uri, db string) string {
	scheme := "mongodb://"
	if strings.HasPrefix(uri, "mongodb+srv://") {
		scheme = "mongodb+srv://"
	}
	rest := strings.TrimPrefix(uri, scheme)
	auth := ""
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		auth, rest = rest[:i+1], rest[i+1:]
	}
	hosts, query := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hosts = rest[:i]
		if _, q, ok := strings.Cut(rest[i:], "?"); ok {
			query = "?" + q
		}
	}
	return scheme + auth + hosts + "/" + db + query
}

// testStore opens a store on a fresh database, fails the test (it does not
// skip) when no server answers, and drops the database afterwards.
func testStore(t *testing.T) *Store {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a MongoDB-wire server (runs without -short)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	uri := withDB(testURI(), "beds_test_"+hex.EncodeToString(b[:]))
	s, err := Open(t.Context(), Config{URI: uri})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		s.Close()
		t.Fatalf("no MongoDB-wire server answers at %s (%v).\n"+
			"Start the local FerretDB with: bash deploy/ferretdb/run.sh start\n"+
			"or point BEDS_TEST_MONGO_URI at a MongoDB server; go test -short skips integration tests.",
			Addr(uri), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.db.Drop(ctx); err != nil {
			t.Errorf("drop test database %s: %v", s.Database(), err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// exec builds req for tpl and runs it.
func exec(t *testing.T, s *Store, tpl *template.Template, event string, req *wire.Request) (*store.Result, error) {
	t.Helper()
	req.Template = tpl.Name
	q := build(t, tpl, event, req)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return s.Exec(ctx, q)
}

// mustExec is exec that fails the test on an error.
func mustExec(t *testing.T, s *Store, tpl *template.Template, event string, req *wire.Request) *store.Result {
	t.Helper()
	res, err := exec(t, s, tpl, event, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Op, err)
	}
	return res
}

// wantCode checks err is a contract error with code.
func wantCode(t *testing.T, err error, code wire.Code) *wire.Error {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	return we
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestCRUD(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")

	res := mustExec(t, s, tpl, "ev1", &wire.Request{Op: wire.OpCreate,
		Data: raw(`{"id": "ann", "name": "Ann", "age": 30, "score": 1.5, "active": true, "nick": "an"}`)})
	if res.Affected != 1 || res.Key != "ann" {
		t.Fatalf("create = %+v, want affected 1, key ann", res)
	}
	mustExec(t, s, tpl, "ev2", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": "bob", "name": "Bob", "age": 40}`)})

	res = mustExec(t, s, tpl, "ev3", &wire.Request{Op: wire.OpRead, Filter: raw(`{"id": "ann"}`)})
	want := wire.Row{"id": "ann", "name": "Ann", "age": int64(30), "score": 1.5, "active": true, "born": nil, "meta": nil, "nick": "an"}
	if res.Count != 1 || len(res.Rows) != 1 || !reflect.DeepEqual(res.Rows[0], want) {
		t.Fatalf("read = %+v\nwant one row %#v", res, want)
	}

	// Only the requested fields, missing ones as nil.
	res = mustExec(t, s, tpl, "ev4", &wire.Request{Op: wire.OpRead, Fields: []string{"name", "score"}, Sort: []string{"name"}})
	wantRows := []wire.Row{{"name": "Ann", "score": 1.5}, {"name": "Bob", "score": nil}}
	if !reflect.DeepEqual(res.Rows, wantRows) || res.Count != 2 {
		t.Fatalf("read fields = %#v, want %#v", res.Rows, wantRows)
	}

	res = mustExec(t, s, tpl, "ev5", &wire.Request{Op: wire.OpCount})
	if res.Count != 2 {
		t.Fatalf("count = %d, want 2", res.Count)
	}
	res = mustExec(t, s, tpl, "ev6", &wire.Request{Op: wire.OpCount, Filter: raw(`{"age": {"gt": 35}}`)})
	if res.Count != 1 {
		t.Fatalf("count age>35 = %d, want 1", res.Count)
	}

	// update: set a value and null another.
	res = mustExec(t, s, tpl, "ev7", &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"id": "ann"}`), Data: raw(`{"age": 31, "nick": null}`)})
	if res.Affected != 1 {
		t.Fatalf("update affected = %d, want 1", res.Affected)
	}
	res = mustExec(t, s, tpl, "ev8", &wire.Request{Op: wire.OpRead, Filter: raw(`{"id": "ann"}`), Fields: []string{"age", "nick", "name"}})
	if got := res.Rows[0]; got["age"] != int64(31) || got["nick"] != nil || got["name"] != "Ann" {
		t.Fatalf("after update: %#v", got)
	}
	// Setting the same values again still counts the matched record.
	res = mustExec(t, s, tpl, "ev9", &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"id": "ann"}`), Data: raw(`{"age": 31}`)})
	if res.Affected != 1 {
		t.Fatalf("unchanged update affected = %d, want 1 (matched)", res.Affected)
	}
	// Update many.
	res = mustExec(t, s, tpl, "ev10", &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"age": {"gte": 0}}`), Data: raw(`{"active": false}`)})
	if res.Affected != 2 {
		t.Fatalf("update many affected = %d, want 2", res.Affected)
	}

	_, err := exec(t, s, tpl, "ev11", &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"id": "nobody"}`), Data: raw(`{"age": 1}`)})
	we := wantCode(t, err, wire.CodeNotFound)
	if we.Message != "no people record matches the filter" {
		t.Errorf("not_found message %q", we.Message)
	}

	res = mustExec(t, s, tpl, "ev12", &wire.Request{Op: wire.OpDelete, Filter: raw(`{"id": "bob"}`)})
	if res.Affected != 1 {
		t.Fatalf("delete affected = %d, want 1", res.Affected)
	}
	_, err = exec(t, s, tpl, "ev13", &wire.Request{Op: wire.OpDelete, Filter: raw(`{"id": "bob"}`)})
	wantCode(t, err, wire.CodeNotFound)

	res = mustExec(t, s, tpl, "ev14", &wire.Request{Op: wire.OpRead})
	if res.Count != 1 || res.Rows[0]["id"] != "ann" {
		t.Fatalf("read after delete = %+v", res)
	}
	// A read that matches nothing has rows, empty.
	res = mustExec(t, s, tpl, "ev15", &wire.Request{Op: wire.OpRead, Filter: raw(`{"id": "bob"}`)})
	if res.Rows == nil || len(res.Rows) != 0 || res.Count != 0 {
		t.Fatalf("empty read = %+v", res)
	}
}

func TestCreateKey(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")

	// No key in data: the event ID becomes the key.
	const event = "01JD0000000000000000000001"
	res := mustExec(t, s, tpl, event, &wire.Request{Op: wire.OpCreate, Data: raw(`{"name": "Gen"}`)})
	if res.Key != event {
		t.Fatalf("generated key = %v, want the event ID %s", res.Key, event)
	}
	res = mustExec(t, s, tpl, "r1", &wire.Request{Op: wire.OpRead, Filter: raw(fmt.Sprintf(`{"id": %q}`, event)), Fields: []string{"id", "name"}})
	if len(res.Rows) != 1 || res.Rows[0]["name"] != "Gen" {
		t.Fatalf("read by generated key = %+v", res.Rows)
	}

	// A redelivered create (same event) hits the same key: the first
	// delivery's result again, not a second record.
	res = mustExec(t, s, tpl, event, &wire.Request{Op: wire.OpCreate, Data: raw(`{"name": "Gen"}`)})
	if res.Key != event || res.Affected != 1 || !res.Replayed {
		t.Fatalf("redelivered create = %+v", res)
	}
	// A redelivered update or delete answers its first result and changes
	// nothing more.
	mustExec(t, s, tpl, "u1", &wire.Request{Op: wire.OpUpdate, Filter: raw(fmt.Sprintf(`{"id": %q}`, event)), Data: raw(`{"name": "Once"}`)})
	res = mustExec(t, s, tpl, "u1", &wire.Request{Op: wire.OpUpdate, Filter: raw(fmt.Sprintf(`{"id": %q}`, event)), Data: raw(`{"name": "Once"}`)})
	if res.Affected != 1 || !res.Replayed {
		t.Fatalf("redelivered update = %+v", res)
	}
	// An event ID reused for another operation is refused.
	_, err := exec(t, s, tpl, "u1", &wire.Request{Op: wire.OpDelete, Filter: raw(fmt.Sprintf(`{"id": %q}`, event))})
	we := wantCode(t, err, wire.CodeConflict)
	if !strings.Contains(we.Message, "event IDs must be unique") {
		t.Errorf("conflict message %q", we.Message)
	}
	// A duplicate given key.
	mustExec(t, s, tpl, "e2", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": "dup", "name": "A"}`)})
	_, err = exec(t, s, tpl, "e3", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": "dup", "name": "B"}`)})
	wantCode(t, err, wire.CodeConflict)
	res = mustExec(t, s, tpl, "e4", &wire.Request{Op: wire.OpCount})
	if res.Count != 2 {
		t.Fatalf("count = %d, want 2", res.Count)
	}

	// An int key has no generated value.
	itpl, err := template.Parse("items.toml", []byte(`
name = "items"
tla = "itm"
kind = "rec"
store = "mongo"
[fields]
id = { type = "int", key = true }
label = { type = "string" }
[objects]
collection = "items"
[ops]
allow = ["create", "read", "count", "update", "delete"]
`), map[string]string{"mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = exec(t, s, itpl, "e5", &wire.Request{Op: wire.OpCreate, Data: raw(`{"label": "x"}`)})
	we = wantCode(t, err, wire.CodeBadValue)
	if we.Field != "id" || !strings.Contains(we.Message, "create must set key id") {
		t.Errorf("int key error = %+v", we)
	}
	res = mustExec(t, s, itpl, "e6", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": 7, "label": "x"}`)})
	if res.Key != int64(7) {
		t.Fatalf("int key = %#v, want int64 7", res.Key)
	}
	_, err = exec(t, s, itpl, "e7", &wire.Request{Op: wire.OpCreate, Data: raw(`{"id": 7}`)})
	wantCode(t, err, wire.CodeConflict)
	res = mustExec(t, s, itpl, "e8", &wire.Request{Op: wire.OpRead, Filter: raw(`{"id": 7}`)})
	if len(res.Rows) != 1 || res.Rows[0]["id"] != int64(7) || res.Rows[0]["label"] != "x" {
		t.Fatalf("read int key = %#v", res.Rows)
	}
}

// seed creates the records of the filter tests. Fields a record lacks are
// missing from its document; "nul" stores explicit nulls.
func seed(t *testing.T, s *Store, tpl *template.Template) {
	t.Helper()
	recs := []string{
		`{"id": "ann", "name": "Ann",     "age": 30, "score": 1.5, "active": true,  "born": "2020-01-01T00:00:00Z", "nick": "an_1"}`,
		`{"id": "bob", "name": "Bob",     "age": 40, "score": 2.5, "active": false, "born": "2021-06-01T12:00:00Z", "nick": "b%b"}`,
		`{"id": "cid", "name": "Cid",     "age": 25, "score": -1,  "active": true,  "born": "1999-12-31T23:59:59Z", "nick": "C.*"}`,
		`{"id": "dan", "name": "dan.*",   "age": 30}`,
		`{"id": "nul", "name": "{\"$where\": \"1\"}", "age": null, "score": null, "active": null, "born": null, "nick": null, "meta": null}`,
		`{"id": "eve", "name": "Eve\nNL", "meta": {"k": 1}}`,
	}
	for i, r := range recs {
		mustExec(t, s, tpl, fmt.Sprintf("seed%d", i), &wire.Request{Op: wire.OpCreate, Data: raw(r)})
	}
}

func TestFilterOperators(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)

	tests := []struct {
		filter string
		want   []string // ids, any order
	}{
		{`{}`, []string{"ann", "bob", "cid", "dan", "nul", "eve"}},
		{`{"name": "Ann"}`, []string{"ann"}},
		{`{"name": "ann"}`, nil}, // case-sensitive
		{`{"age": {"eq": 30}}`, []string{"ann", "dan"}},
		{`{"age": {"ne": 30}}`, []string{"bob", "cid"}}, // null and missing never match ne
		{`{"age": {"gt": 30}}`, []string{"bob"}},
		{`{"age": {"gte": 30}}`, []string{"ann", "bob", "dan"}},
		{`{"age": {"lt": 30}}`, []string{"cid"}},
		{`{"age": {"lte": 30}}`, []string{"ann", "cid", "dan"}},
		{`{"age": {"in": [25, 40, 99]}}`, []string{"bob", "cid"}},
		{`{"age": {"nin": [25, 40]}}`, []string{"ann", "dan"}}, // as NOT IN: nulls excluded
		{`{"score": {"gt": 0}}`, []string{"ann", "bob"}},
		{`{"score": {"lte": -1}}`, []string{"cid"}},
		{`{"score": {"gte": 2}}`, []string{"bob"}},
		{`{"active": true}`, []string{"ann", "cid"}},
		{`{"active": false}`, []string{"bob"}},
		{`{"active": {"ne": true}}`, []string{"bob"}},
		{`{"born": {"gte": "2020-01-01T00:00:00Z"}}`, []string{"ann", "bob"}},
		{`{"born": {"lt": "2020-01-01"}}`, []string{"cid"}},
		{`{"born": {"gt": "2021-06-01T13:00:00+02:00"}}`, []string{"bob"}}, // 11:00 UTC
		{`{"born": {"in": ["2021-06-01T12:00:00Z"]}}`, []string{"bob"}},
		// null semantics: null or missing count as null.
		{`{"age": null}`, []string{"nul", "eve"}},
		{`{"age": {"eq": null}}`, []string{"nul", "eve"}},
		{`{"age": {"null": true}}`, []string{"nul", "eve"}},
		{`{"age": {"ne": null}}`, []string{"ann", "bob", "cid", "dan"}},
		{`{"age": {"null": false}}`, []string{"ann", "bob", "cid", "dan"}},
		{`{"meta": {"null": true}}`, []string{"ann", "bob", "cid", "dan", "nul"}},
		{`{"meta": {"null": false}}`, []string{"eve"}},
		{`{"nick": {"null": true}}`, []string{"dan", "nul", "eve"}},
		// like
		{`{"name": {"like": "%"}}`, []string{"ann", "bob", "cid", "dan", "nul", "eve"}},
		{`{"name": {"like": "A%"}}`, []string{"ann"}},
		{`{"name": {"like": "%o%"}}`, []string{"bob"}},
		{`{"name": {"like": "_i_"}}`, []string{"cid"}},
		{`{"name": {"like": "Eve%"}}`, []string{"eve"}},   // % spans the newline
		{`{"name": {"like": "Eve_NL"}}`, []string{"eve"}}, // _ matches it
		{`{"name": {"like": "Eve"}}`, nil},                // anchored at the end
		{`{"name": {"like": ".*"}}`, nil},                 // regex syntax is literal
		{`{"name": {"like": "dan.*"}}`, []string{"dan"}},
		{`{"name": {"like": "dan.%"}}`, []string{"dan"}},
		{`{"name": {"like": "d.n%"}}`, nil},
		{`{"nick": {"like": "an\\_1"}}`, []string{"ann"}},
		{`{"nick": {"like": "an\\_%"}}`, []string{"ann"}},
		{`{"nick": {"like": "b\\%b"}}`, []string{"bob"}},
		{`{"nick": {"like": "b\\%"}}`, nil},
		{`{"nick": {"like": "C.*"}}`, []string{"cid"}},
		{`{"nick": {"like": "%"}}`, []string{"ann", "bob", "cid"}}, // never null
		{`{"name": {"like": "{\"$where\": %"}}`, []string{"nul"}},
		// operator-looking values are values
		{`{"name": "{\"$where\": \"1\"}"}`, []string{"nul"}},
		{`{"name": {"in": ["$where", "{\"$where\": \"1\"}"]}}`, []string{"nul"}},
		{`{"name": {"gt": "$"}}`, []string{"ann", "bob", "cid", "dan", "nul", "eve"}},
		// and / or
		{`{"age": 30, "active": true}`, []string{"ann"}},
		{`{"age": {"gte": 25, "lt": 40}}`, []string{"ann", "cid", "dan"}},
		{`{"or": [{"age": 25}, {"name": "Bob"}]}`, []string{"bob", "cid"}},
		{`{"and": [{"age": 30}, {"or": [{"active": true}, {"active": null}]}]}`, []string{"ann", "dan"}},
		{`{"or": [{"and": [{"age": {"gt": 20}}, {"age": {"lt": 35}}]}, {"meta": {"null": false}}], "name": {"ne": "Cid"}}`, []string{"ann", "dan", "eve"}},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			res := mustExec(t, s, tpl, "read", &wire.Request{Op: wire.OpRead, Filter: raw(tc.filter), Fields: []string{"id"}})
			got := ids(res.Rows)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("read %s = %v, want %v", tc.filter, got, want)
			}
			if tc.filter == "{}" {
				return
			}
			cnt := mustExec(t, s, tpl, "count", &wire.Request{Op: wire.OpCount, Filter: raw(tc.filter)})
			if cnt.Count != int64(len(want)) {
				t.Errorf("count %s = %d, want %d", tc.filter, cnt.Count, len(want))
			}
		})
	}
}

// TestLikeNULAnswersBadValue runs a like pattern with a NUL through Exec:
// the caller's fault (bad_value), not internal.
func TestLikeNULAnswersBadValue(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	for _, op := range []wire.Op{wire.OpRead, wire.OpCount, wire.OpDelete} {
		_, err := exec(t, s, tpl, "ev", &wire.Request{Op: op, Filter: raw(`{"name": {"like": "a\u0000%"}}`)})
		if we := wantCode(t, err, wire.CodeBadValue); we.Field != "name" {
			t.Errorf("%s: field %q", op, we.Field)
		}
	}
}

func ids(rows []wire.Row) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r["id"].(string))
	}
	slices.Sort(out)
	return out
}

func TestSortAndPaging(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)

	read := func(sort []string, limit, offset int) []string {
		t.Helper()
		res := mustExec(t, s, tpl, "read", &wire.Request{Op: wire.OpRead, Filter: raw(`{"age": {"ne": null}}`),
			Fields: []string{"id"}, Sort: sort, Limit: limit, Offset: offset})
		out := make([]string, len(res.Rows))
		for i, r := range res.Rows {
			out[i] = r["id"].(string)
		}
		if res.Count != int64(len(out)) {
			t.Errorf("count %d for %d rows", res.Count, len(out))
		}
		return out
	}
	cases := []struct {
		sort          []string
		limit, offset int
		want          []string
	}{
		{[]string{"-age", "id"}, 0, 0, []string{"bob", "ann", "dan", "cid"}},
		{[]string{"age", "-id"}, 0, 0, []string{"cid", "dan", "ann", "bob"}},
		{[]string{"-age", "id"}, 2, 0, []string{"bob", "ann"}},
		{[]string{"-age", "id"}, 2, 2, []string{"dan", "cid"}},
		{[]string{"-age", "id"}, 10, 3, []string{"cid"}},
		{[]string{"-age", "id"}, 10, 4, []string{}},
		{[]string{"born"}, 1, 0, []string{"dan"}}, // missing sorts first, as null
		{[]string{"-born"}, 1, 0, []string{"bob"}},
	}
	for _, c := range cases {
		if got := read(c.sort, c.limit, c.offset); !slices.Equal(got, c.want) {
			t.Errorf("sort %v limit %d offset %d = %v, want %v", c.sort, c.limit, c.offset, got, c.want)
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")

	mustExec(t, s, tpl, "c1", &wire.Request{Op: wire.OpCreate, Data: raw(`{
		"id": "rt", "name": "Zoë \"quoted\" $name {x} \\",
		"age": 9007199254740993, "score": 0.1,
		"born": "2026-01-02T03:04:05.123456789+02:00",
		"meta": {"list": [1, -2.5, "x", null, true, {"deep": {"er": [{}]}}], "n": 12345678901, "s": "$not_an_op", "empty": {}}
	}`)})
	res := mustExec(t, s, tpl, "r1", &wire.Request{Op: wire.OpRead, Filter: raw(`{"id": "rt"}`)})
	row := res.Rows[0]
	if row["name"] != `Zoë "quoted" $name {x} \` {
		t.Errorf("name = %q", row["name"])
	}
	if row["age"] != int64(9007199254740993) {
		t.Errorf("age = %#v, want the exact int64", row["age"])
	}
	if row["score"] != 0.1 {
		t.Errorf("score = %#v", row["score"])
	}
	// BSON dates hold milliseconds; they come back in UTC.
	wantBorn := time.Date(2026, 1, 2, 1, 4, 5, 123_000_000, time.UTC)
	born, ok := row["born"].(time.Time)
	if !ok || !born.Equal(wantBorn) || born.Location() != time.UTC {
		t.Errorf("born = %#v, want %v in UTC", row["born"], wantBorn)
	}
	wantMeta := map[string]any{
		"list":  []any{int64(1), -2.5, "x", nil, true, map[string]any{"deep": map[string]any{"er": []any{map[string]any{}}}}},
		"n":     int64(12345678901),
		"s":     "$not_an_op",
		"empty": map[string]any{},
	}
	if !reflect.DeepEqual(row["meta"], wantMeta) {
		t.Errorf("meta = %#v\nwant %#v", row["meta"], wantMeta)
	}
	// The row encodes as the reply will.
	if _, err := json.Marshal(row); err != nil {
		t.Errorf("row does not encode: %v", err)
	}

	// update of a json field and a datetime; a filter on the exact time.
	mustExec(t, s, tpl, "u1", &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"born": "2026-01-02T01:04:05.123Z"}`),
		Data: raw(`{"meta": [1, {"a": "b"}], "born": "1970-01-01T00:00:00Z"}`)})
	res = mustExec(t, s, tpl, "r2", &wire.Request{Op: wire.OpRead, Filter: raw(`{"id": "rt"}`), Fields: []string{"meta", "born"}})
	if got := res.Rows[0]; !reflect.DeepEqual(got["meta"], []any{int64(1), map[string]any{"a": "b"}}) || !got["born"].(time.Time).Equal(time.Unix(0, 0)) {
		t.Errorf("after update: %#v", got)
	}

	// A json key MongoDB cannot store is the request's fault.
	_, err := exec(t, s, tpl, "u2", &wire.Request{Op: wire.OpUpdate, Filter: raw(`{"id": "rt"}`), Data: raw(`{"meta": {"$set": {"x": 1}}}`)})
	wantCode(t, err, wire.CodeBadValue)
}

func TestUnexpectedStoredType(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	// A document written by someone else, with a string where the
	// template says int.
	_, err := s.coll(tpl).InsertOne(t.Context(), bson.D{{Key: "_id", Value: "odd"}, {Key: "ppl_age", Value: "forty"}, {Key: "ppl_score", Value: int32(3)}})
	if err != nil {
		t.Fatal(err)
	}
	res := mustExec(t, s, tpl, "r", &wire.Request{Op: wire.OpRead, Fields: []string{"score"}})
	if res.Rows[0]["score"] != 3.0 {
		t.Errorf("int32 into float = %#v", res.Rows[0]["score"])
	}
	_, err = exec(t, s, tpl, "r", &wire.Request{Op: wire.OpRead, Fields: []string{"id", "age"}})
	var we *wire.Error
	if err == nil || errors.As(err, &we) || !strings.Contains(err.Error(), "age") {
		t.Fatalf("err = %v, want an internal (non-contract) error naming the field", err)
	}
}

func TestConcurrent(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			req := &wire.Request{Template: tpl.Name, Op: wire.OpCreate, Data: raw(`{"name": "n"}`)}
			q, err := store.Build(tpl, fmt.Sprintf("ev-%02d", i), req, store.DefaultLimits)
			if err == nil {
				_, err = s.Exec(t.Context(), q)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if res := mustExec(t, s, tpl, "c", &wire.Request{Op: wire.OpCount}); res.Count != 40 {
		t.Fatalf("count = %d, want 40", res.Count)
	}
}

func TestDeadline(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpCount})
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := s.Exec(ctx, q)
	wantCode(t, err, wire.CodeTimeout)
}

// closedPort returns a local TCP address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestServerDown needs no server: a store pointed at a closed port must
// answer unavailable within a few seconds, not hang.
func TestServerDown(t *testing.T) {
	uri := "mongodb://user:pw-not-shown@" + closedPort(t) + "/beds_down"
	s, err := Open(t.Context(), Config{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tpl := testTemplate(t, "people")

	// Ping, a read and a create at once: each must give up after about
	// the selection timeout.
	start := time.Now()
	calls := []func() error{func() error { return s.Ping(t.Context()) }}
	for _, req := range []*wire.Request{
		{Template: tpl.Name, Op: wire.OpRead},
		{Template: tpl.Name, Op: wire.OpCreate, Data: raw(`{"name": "x"}`)},
	} {
		q := build(t, tpl, "ev", req)
		calls = append(calls, func() error { _, err := s.Exec(t.Context(), q); return err })
	}
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { errs[i] = call() })
	}
	wg.Wait()
	if el := time.Since(start); el > DefaultServerSelectionTimeout+3*time.Second {
		t.Errorf("calls took %v; each should give up after about %v", el, DefaultServerSelectionTimeout)
	}
	for _, err := range errs {
		we := wantCode(t, err, wire.CodeUnavailable)
		if strings.Contains(we.Message, "pw-not-shown") || strings.Contains(we.Message, "127.0.0.1") {
			t.Errorf("message shows server details: %q", we.Message)
		}
	}

	// A short request deadline wins over the selection timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = s.Exec(ctx, build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpCount}))
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("count with a 300ms deadline took %v", el)
	}
	var we *wire.Error
	if !errors.As(err, &we) || !we.Code.Retryable() {
		t.Errorf("err = %v, want a retryable contract error", err)
	}
}

func TestClosedStore(t *testing.T) {
	s := testStore(t)
	tpl := testTemplate(t, "people")
	other, err := Open(t.Context(), Config{URI: withDB(testURI(), s.Database())})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = other.Exec(t.Context(), build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpCount}))
	wantCode(t, err, wire.CodeUnavailable)
}
