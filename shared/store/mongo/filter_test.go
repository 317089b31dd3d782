package mongo

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// testTemplate is the template every test in the package uses; coll is
// its collection.
func testTemplate(t testing.TB, coll string) *template.Template {
	t.Helper()
	src := fmt.Sprintf(`
name  = "people"
tla   = "ppl"
kind  = "rec"
store = "mongo"

[fields]
id      = { type = "string", key = true }
name    = { type = "string", required = true, max = 100, sortable = true }
age     = { type = "int", sortable = true }
score   = { type = "float" }
active  = { type = "bool" }
born    = { type = "datetime", sortable = true }
meta    = { type = "json" }
nick    = { type = "string", stored = "nickname" }

[objects]
collection = %q

[ops]
allow = ["create", "read", "update", "delete", "count"]
`, coll)
	tpl, err := template.Parse("people.toml", []byte(src), map[string]string{"mongo": "mongo"})
	if err != nil {
		t.Fatalf("parse template: %v", err)
	}
	return tpl
}

// build runs a request through store.Build, the real validation path.
func build(t testing.TB, tpl *template.Template, event string, req *wire.Request) *store.Query {
	t.Helper()
	q, err := store.Build(tpl, event, req, store.DefaultLimits)
	if err != nil {
		t.Fatalf("build %s: %v", req.Op, err)
	}
	return q
}

// filterOfJSON builds a read with filter f and translates its filter.
func filterOfJSON(t *testing.T, tpl *template.Template, f string) bson.D {
	t.Helper()
	q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpRead, Filter: json.RawMessage(f)})
	doc, err := filterDoc(q.Filter)
	if err != nil {
		t.Fatalf("filter %s: %v", f, err)
	}
	return doc
}

func d(k string, v any) bson.D { return bson.D{{Key: k, Value: v}} }

func TestFilterDoc(t *testing.T) {
	tpl := testTemplate(t, "people")
	born := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		filter string
		want   bson.D
	}{
		{"none", `null`, bson.D{}},
		{"empty object", `{}`, bson.D{}},
		{"bare value is eq", `{"name": "Ann"}`, d("ppl_name", d("$eq", "Ann"))},
		{"eq", `{"age": {"eq": 7}}`, d("ppl_age", d("$eq", int64(7)))},
		{"eq key is _id", `{"id": "k1"}`, d("_id", d("$eq", "k1"))},
		{"eq custom stored name", `{"nick": "A"}`, d("nickname", d("$eq", "A"))},
		{"eq null", `{"age": {"eq": null}}`, d("ppl_age", d("$eq", nil))},
		{"bare null", `{"age": null}`, d("ppl_age", d("$eq", nil))},
		{"ne", `{"age": {"ne": 7}}`, d("ppl_age", d("$nin", bson.A{int64(7), nil}))},
		{"ne null", `{"age": {"ne": null}}`, d("ppl_age", d("$ne", nil))},
		{"gt", `{"age": {"gt": 1}}`, d("ppl_age", d("$gt", int64(1)))},
		{"gte float", `{"score": {"gte": 1.5}}`, d("ppl_score", d("$gte", 1.5))},
		{"lt", `{"age": {"lt": -3}}`, d("ppl_age", d("$lt", int64(-3)))},
		{"lte datetime", `{"born": {"lte": "2026-01-02T03:04:05Z"}}`, d("ppl_born", d("$lte", born))},
		{"in", `{"age": {"in": [1, 2]}}`, d("ppl_age", d("$in", bson.A{int64(1), int64(2)}))},
		{"nin", `{"name": {"nin": ["a", "b"]}}`, d("ppl_name", d("$nin", bson.A{"a", "b", nil}))},
		{"like", `{"name": {"like": "A%"}}`, d("ppl_name", d("$regex", bson.Regex{Pattern: `^A.*\z`, Options: "s"}))},
		{"null true", `{"meta": {"null": true}}`, d("ppl_meta", d("$eq", nil))},
		{"null false", `{"meta": {"null": false}}`, d("ppl_meta", d("$ne", nil))},
		{"bool", `{"active": true}`, d("ppl_active", d("$eq", true))},
		{"bool ne", `{"active": {"ne": false}}`, d("ppl_active", d("$nin", bson.A{false, nil}))},
		{"two fields are and", `{"age": 1, "name": "x"}`, d("$and", bson.A{
			d("ppl_age", d("$eq", int64(1))),
			d("ppl_name", d("$eq", "x")),
		})},
		{"two operators on one field", `{"age": {"gte": 1, "lt": 9}}`, d("$and", bson.A{
			d("ppl_age", d("$gte", int64(1))),
			d("ppl_age", d("$lt", int64(9))),
		})},
		{"or", `{"or": [{"age": 1}, {"name": "x"}]}`, d("$or", bson.A{
			d("ppl_age", d("$eq", int64(1))),
			d("ppl_name", d("$eq", "x")),
		})},
		{"nested", `{"active": true, "or": [{"and": [{"age": {"gt": 1}}, {"age": {"lt": 5}}]}, {"name": {"like": "z_"}}]}`,
			d("$and", bson.A{
				d("ppl_active", d("$eq", true)),
				d("$or", bson.A{
					d("$and", bson.A{
						d("ppl_age", d("$gt", int64(1))),
						d("ppl_age", d("$lt", int64(5))),
					}),
					d("ppl_name", d("$regex", bson.Regex{Pattern: `^z.\z`, Options: "s"})),
				}),
			})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := filterOfJSON(t, tpl, tc.filter)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("filter %s\n got %#v\nwant %#v", tc.filter, got, tc.want)
			}
			// Every filter must encode.
			if _, err := bson.Marshal(got); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

// TestFilterValuesStayValues checks that request strings that look like
// operators, code or regular expressions end up as plain values under an
// explicit operator, never as keys.
func TestFilterValuesStayValues(t *testing.T) {
	tpl := testTemplate(t, "people")
	hostile := []string{
		`{"$where": "sleep(1000)"}`,
		`$where`,
		`$gt`,
		`.*`,
		`^admin$`,
		`this.ppl_name == 'x' || true`,
		`"; db.dropDatabase(); "`,
		`$ppl_name`,
	}
	for _, h := range hostile {
		for _, op := range []string{"eq", "ne", "gt", "in", "nin", "like"} {
			val, _ := json.Marshal(h)
			if op == "in" || op == "nin" {
				val = []byte("[" + string(val) + "]")
			}
			f := fmt.Sprintf(`{"name": {%q: %s}}`, op, val)
			got := filterOfJSON(t, tpl, f)
			raw, err := bson.Marshal(got)
			if err != nil {
				t.Fatalf("%s: marshal: %v", f, err)
			}
			// The only keys anywhere are the stored name and one operator.
			var keys []string
			collectKeys(bson.Raw(raw), &keys)
			if len(keys) != 2 || keys[0] != "ppl_name" || !strings.HasPrefix(keys[1], "$") {
				t.Errorf("%s: keys %v", f, keys)
			}
			inner := got[0].Value.(bson.D)[0]
			switch v := inner.Value.(type) {
			case string:
				if v != h {
					t.Errorf("%s: value %q", f, v)
				}
			case bson.A:
				if v[0] != h {
					t.Errorf("%s: value %v", f, v)
				}
			case bson.Regex:
				if !regexp.MustCompile(v.Pattern).MatchString(h) {
					t.Errorf("%s: pattern %q does not match the literal %q", f, v.Pattern, h)
				}
				if regexp.MustCompile(v.Pattern).MatchString(h + "x") {
					t.Errorf("%s: pattern %q matches more than the literal", f, v.Pattern)
				}
			default:
				t.Errorf("%s: unexpected value %T", f, v)
			}
		}
	}
}

func collectKeys(doc bson.Raw, keys *[]string) {
	elems, _ := doc.Elements()
	for _, e := range elems {
		*keys = append(*keys, e.Key())
		if sub, ok := e.Value().DocumentOK(); ok {
			collectKeys(sub, keys)
		}
	}
}

func TestLikeRegex(t *testing.T) {
	tests := []struct {
		like    string
		want    string
		match   []string
		nomatch []string
	}{
		{"abc", `^abc\z`, []string{"abc"}, []string{"abcd", "xabc", "ABC", "abc\n"}},
		{"a%", `^a.*\z`, []string{"a", "abc", "a\nb"}, []string{"ba"}},
		{"%a%", `^.*a.*\z`, []string{"a", "bab"}, []string{"b"}},
		{"a_c", `^a.c\z`, []string{"abc", "aéc", "a\nc"}, []string{"ac", "abbc"}},
		{`50\%`, `^50%\z`, []string{"50%"}, []string{"500"}},
		{`a\_b`, `^a_b\z`, []string{"a_b"}, []string{"axb"}},
		{`a\\b`, `^a\\b\z`, []string{`a\b`}, []string{`a\\b`, "ab"}},
		{`a\b`, `^ab\z`, []string{"ab"}, []string{`a\b`}},
		{`end\`, `^end\\\z`, []string{`end\`}, []string{"end"}},
		{`\é`, `^é\z`, []string{"é"}, []string{"e"}},
		{".*", `^\.\*\z`, []string{".*"}, []string{"abc", ""}},
		{"a+b(c)|[d]{2}^$?", `^a\+b\(c\)\|\[d\]\{2\}\^\$\?\z`, []string{"a+b(c)|[d]{2}^$?"}, []string{"aab"}},
		{`(?i)x`, `^\(\?i\)x\z`, []string{"(?i)x"}, []string{"X", "x"}},
		{"日本%語", `^日本.*語\z`, []string{"日本語", "日本のX語"}, []string{"日本"}},
		{"", `^\z`, []string{""}, []string{"a"}},
		{"%", `^.*\z`, []string{"", "anything\nat all"}, nil},
	}
	for _, tc := range tests {
		got := likeRegex(tc.like)
		if got != tc.want {
			t.Errorf("likeRegex(%q) = %q, want %q", tc.like, got, tc.want)
			continue
		}
		re := regexp.MustCompile("(?s)" + got) // the "s" option
		for _, s := range tc.match {
			if !re.MatchString(s) {
				t.Errorf("like %q should match %q", tc.like, s)
			}
		}
		for _, s := range tc.nomatch {
			if re.MatchString(s) {
				t.Errorf("like %q should not match %q", tc.like, s)
			}
		}
	}
}

// TestLikeNUL: a NUL cannot be part of a BSON regular expression, so a
// like pattern holding one is the caller's bad value, not an internal
// error (which clients retry), wherever it sits in the filter.
func TestLikeNUL(t *testing.T) {
	tpl := testTemplate(t, "people")
	for _, f := range []string{
		`{"name": {"like": "a\u0000%"}}`,
		`{"name": {"like": "\u0000"}}`,
		`{"age": 1, "or": [{"id": "x"}, {"nick": {"like": "%\u0000"}}]}`,
	} {
		for _, op := range []wire.Op{wire.OpRead, wire.OpCount, wire.OpDelete} {
			q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: op, Filter: json.RawMessage(f)})
			_, err := filterOf(q)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeBadValue || (we.Field != "name" && we.Field != "nick") {
				t.Errorf("%s %s: err %v, want bad_value on the field", op, f, err)
			}
		}
	}
}

func TestSortDoc(t *testing.T) {
	tpl := testTemplate(t, "people")
	q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpRead, Sort: []string{"-born", "name", "+id"}})
	want := bson.D{{Key: "ppl_born", Value: -1}, {Key: "ppl_name", Value: 1}, {Key: "_id", Value: 1}}
	if got := sortDoc(q.Sort); !reflect.DeepEqual(got, want) {
		t.Errorf("sort = %v, want %v", got, want)
	}
	if got := sortDoc(nil); len(got) != 0 {
		t.Errorf("no sort = %v", got)
	}
}

func TestProjectionDoc(t *testing.T) {
	tpl := testTemplate(t, "people")
	tests := []struct {
		fields []string
		want   bson.D
	}{
		{[]string{"name", "age"}, bson.D{{Key: "ppl_name", Value: 1}, {Key: "ppl_age", Value: 1}, {Key: "_id", Value: 0}}},
		{[]string{"id", "nick"}, bson.D{{Key: "_id", Value: 1}, {Key: "nickname", Value: 1}}},
		{nil, bson.D{
			{Key: "_id", Value: 1}, {Key: "ppl_name", Value: 1}, {Key: "ppl_age", Value: 1}, {Key: "ppl_score", Value: 1},
			{Key: "ppl_active", Value: 1}, {Key: "ppl_born", Value: 1}, {Key: "ppl_meta", Value: 1}, {Key: "nickname", Value: 1},
		}},
	}
	for _, tc := range tests {
		q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpRead, Fields: tc.fields})
		if got := projectionDoc(q.Fields); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("fields %v: projection %v, want %v", tc.fields, got, tc.want)
		}
	}
}

func TestToBSONJSON(t *testing.T) {
	tpl := testTemplate(t, "people")
	meta := tpl.Field("meta")
	q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpCreate,
		Data: json.RawMessage(`{"name": "x", "meta": {"b": [1, 2.5, "s", null, {"z": true}], "a": {}}}`)})
	var v any
	for _, a := range q.Data {
		if a.Field == meta {
			v = a.Value
		}
	}
	got, err := toBSON(meta, v)
	if err != nil {
		t.Fatal(err)
	}
	want := bson.D{
		{Key: "a", Value: bson.D{}},
		{Key: "b", Value: bson.A{int64(1), 2.5, "s", nil, bson.D{{Key: "z", Value: true}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}

	for _, bad := range []string{`{"$where": 1}`, `{"a.b": 1}`, `{"": 1}`, `[{"ok": {"$set": 1}}]`, strings.Repeat("[", 95) + strings.Repeat("]", 95)} {
		q := build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpUpdate,
			Filter: json.RawMessage(`{"id": "x"}`), Data: json.RawMessage(`{"meta": ` + bad + `}`)})
		_, err := toBSON(meta, q.Data[0].Value)
		if we, ok := err.(*wire.Error); !ok || we.Code != wire.CodeBadValue || we.Field != "meta" {
			t.Errorf("meta %s: err %v, want bad_value on meta", bad, err)
		}
	}
}

func TestFromBSON(t *testing.T) {
	tpl := testTemplate(t, "people")
	ts := time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	oid := bson.NewObjectID()
	doc, err := bson.Marshal(bson.D{
		{Key: "_id", Value: oid},
		{Key: "ppl_name", Value: "Ann"},
		{Key: "ppl_age", Value: int32(42)},
		{Key: "ppl_score", Value: int64(3)},
		{Key: "ppl_active", Value: false},
		{Key: "ppl_born", Value: bson.NewDateTimeFromTime(ts)},
		{Key: "ppl_meta", Value: bson.D{{Key: "n", Value: int32(1)}, {Key: "l", Value: bson.A{"x", 2.5, nil}}}},
		{Key: "other", Value: "ignored"},
	})
	if err != nil {
		t.Fatal(err)
	}
	row, err := decodeRow(doc, tpl.Fields)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Row{
		"id": oid.Hex(), "name": "Ann", "age": int64(42), "score": 3.0, "active": false, "born": ts,
		"meta": map[string]any{"n": int64(1), "l": []any{"x", 2.5, nil}}, "nick": nil,
	}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("row\n got %#v\nwant %#v", row, want)
	}

	age := tpl.Field("age")
	for _, ok := range []any{2.0, int64(-5), int32(9)} {
		if _, err := fromBSON(age, rawValue(t, ok)); err != nil {
			t.Errorf("int from %T %v: %v", ok, ok, err)
		}
	}
	for _, bad := range []any{2.5, "7", true, bson.D{}} {
		if v, err := fromBSON(age, rawValue(t, bad)); err == nil {
			t.Errorf("int from %T %v = %v, want an error", bad, bad, v)
		}
	}
}

func rawValue(t *testing.T, v any) bson.RawValue {
	t.Helper()
	raw, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	return bson.Raw(raw).Lookup("v")
}

func TestURI(t *testing.T) {
	tests := []struct {
		uri, addr, db string
		bad           bool
	}{
		{uri: "mongodb://127.0.0.1:27017/beds", addr: "127.0.0.1:27017", db: "beds"},
		{uri: "mongodb://user:s3cret@db1:27017,db2:27018/app?replicaSet=rs0", addr: "db1:27017,db2:27018", db: "app"},
		{uri: "mongodb+srv://u:p%40ss@cluster.example.com/x?retryWrites=true", addr: "cluster.example.com", db: "x"},
		{uri: "mongodb://localhost", addr: "localhost"},
		{uri: "mongodb://localhost/?w=1", addr: "localhost"},
		{uri: "mongodb://u:p@ss@host/db", addr: "(invalid mongodb URI)", bad: true},
		{uri: "postgres://u:p@host/db", addr: "(invalid mongodb URI)", bad: true},
		{uri: "mongodb://host?x=1", addr: "(invalid mongodb URI)", bad: true},
	}
	for _, tc := range tests {
		if got := Addr(tc.uri); got != tc.addr {
			t.Errorf("Addr(%q) = %q, want %q", tc.uri, got, tc.addr)
		}
		if strings.Contains(Addr(tc.uri), "s3cret") || strings.Contains(Addr(tc.uri), "ss@") {
			t.Errorf("Addr(%q) leaks credentials", tc.uri)
		}
		p, err := parseURI(tc.uri)
		if (err != nil) != tc.bad {
			t.Errorf("parseURI(%q) error %v", tc.uri, err)
		}
		if !tc.bad && p.db != tc.db {
			t.Errorf("parseURI(%q).db = %q, want %q", tc.uri, p.db, tc.db)
		}
	}
	p, _ := parseURI("mongodb://admin:hunter%2F2@h/db")
	if got := p.redact("auth failed for admin:hunter%2F2 (hunter/2)"); strings.Contains(got, "hunter") {
		t.Errorf("redact left the password: %q", got)
	}
}

func TestOpenNeedsDatabase(t *testing.T) {
	for _, uri := range []string{"mongodb://127.0.0.1:1", "mongodb://127.0.0.1:1/", "mongodb://u:topsecret@127.0.0.1:1/?w=1", "mongodb://127.0.0.1:1/a.b"} {
		s, err := Open(t.Context(), Config{URI: uri})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", uri)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("Open(%q) error leaks the password: %v", uri, err)
		}
	}
}

// TestOpenRedactsQuerySecrets: a driver error quoting an option's value
// never shows a secret of the query (or the password).
func TestOpenRedactsQuerySecrets(t *testing.T) {
	const secret = "s3cr3tQ"
	for _, uri := range []string{
		"mongodb://127.0.0.1:1/db?tlsCertificateKeyFilePassword=xyz%zz" + secret,
		"mongodb://127.0.0.1:1/db?sslClientCertificateKeyPassword=%zz" + secret,
		"mongodb://127.0.0.1:1/db?authMechanismProperties=AWS_SESSION_TOKEN%zz" + secret,
		"mongodb://127.0.0.1:1/db?authMechanismProperties=AWS_SESSION_TOKEN" + secret,
		"mongodb://127.0.0.1:1/db?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:" + secret + "&w=%zz",
		"mongodb://u:" + secret + "@127.0.0.1:1/db?authMechanism=MONGODB-X509",
		"mongodb://127.0.0.1:1/db?tls=true&tlsCertificateKeyFile=/nonexistent/" + secret + "&tlsCertificateKeyFilePassword=" + secret,
	} {
		s, err := Open(t.Context(), Config{URI: uri})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", uri)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open(%q) error leaks a secret: %v", uri, err)
		}
	}
	p, _ := parseURI("mongodb://h/db?authMechanismProperties=AWS_SESSION_TOKEN:tok%2Fen,SERVICE_NAME:svc&tlsCertificateKeyFilePassword=kfp")
	got := p.redact(`bad "tok%2Fen" / tok/en, key password kfp, service svc`)
	if want := `bad "****" / ****, key password ****, service svc`; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}

func TestClientOptions(t *testing.T) {
	sec := func(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }
	tests := []struct {
		cfg                    Config
		pool                   uint64
		selection, connect, op time.Duration
	}{
		{Config{URI: "mongodb://h/db"}, DefaultMaxConns, DefaultServerSelectionTimeout, DefaultConnectTimeout, DefaultOpTimeout},
		{Config{URI: "mongodb://h/db?maxPoolSize=5&serverSelectionTimeoutMS=1500&connectTimeoutMS=700&timeoutMS=9000"},
			5, sec(1.5), sec(0.7), sec(9)},
		{Config{URI: "mongodb://h/db?maxPoolSize=5&serverSelectionTimeoutMS=1500", MaxConns: 8, ServerSelectionTimeout: sec(2), ConnectTimeout: sec(1), OpTimeout: sec(4)},
			8, sec(2), sec(1), sec(4)},
	}
	for _, tc := range tests {
		o, _, err := clientOptions(tc.cfg)
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		if *o.MaxPoolSize != tc.pool || *o.ServerSelectionTimeout != tc.selection || *o.ConnectTimeout != tc.connect || *o.Timeout != tc.op {
			t.Errorf("%s: pool %d selection %v connect %v op %v, want %d %v %v %v", tc.cfg.URI,
				*o.MaxPoolSize, *o.ServerSelectionTimeout, *o.ConnectTimeout, *o.Timeout, tc.pool, tc.selection, tc.connect, tc.op)
		}
		if *o.AppName != "beds" {
			t.Errorf("app name %q", *o.AppName)
		}
	}
}
