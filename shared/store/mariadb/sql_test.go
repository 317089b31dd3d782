package mariadb

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

const allCols = "`usr_id`, `usr_email`, `usr_name`, `usr_age`, `usr_score`, `usr_active`, `usr_prefs`, `usr_created`, `select`"

// usersTemplate is the shipped users template, which has a field of every
// type, plus one whose stored name is an SQL reserved word.
func usersTemplate(t testing.TB) *template.Template {
	t.Helper()
	const fieldsEnd = "\n\n[objects]"
	src := testenv.TemplateFile(t, "users_rec.toml")
	if !strings.Contains(src, fieldsEnd) {
		t.Fatalf("templates/users_rec.toml: no %q after its fields", fieldsEnd)
	}
	src = strings.Replace(src, fieldsEnd, "\ngrp = { type = \"string\", stored = \"select\", sortable = true }"+fieldsEnd, 1)
	tpl, err := template.Parse("users.toml", []byte(src), map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func query(t testing.TB, tpl *template.Template, body string) *store.Query {
	t.Helper()
	req, err := wire.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatalf("DecodeRequest(%s): %v", body, err)
	}
	q, err := store.Build(tpl, "ev-1", req, store.DefaultLimits)
	if err != nil {
		t.Fatalf("Build(%s): %v", body, err)
	}
	return q
}

var (
	identRE = regexp.MustCompile("`[A-Za-z0-9_]+`")
	punctRE = regexp.MustCompile(`([(),])`)
	// Every token an adapter statement may hold once identifiers are out.
	sqlTokens = map[string]bool{
		"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true, "IN": true,
		"IS": true, "NULL": true, "LIKE": true, "ORDER": true, "BY": true, "DESC": true, "LIMIT": true,
		"OFFSET": true, "FOR": true, "UPDATE": true, "CALL": true, "COUNT(*)": true,
		"IDENT": true, "?": true, "(": true, ")": true, ",": true,
		"=": true, "<>": true, ">": true, ">=": true, "<": true, "<=": true,
	}
)

// checkSQL asserts stmt is made only of quoted identifiers, fixed keywords
// and operators, and placeholders, and that it has one placeholder per arg.
func checkSQL(t testing.TB, stmt string, args []any) {
	t.Helper()
	rest := identRE.ReplaceAllString(strings.ReplaceAll(stmt, "COUNT(*)", " COUNT_ALL "), " IDENT ")
	rest = strings.ReplaceAll(punctRE.ReplaceAllString(rest, " $1 "), "COUNT_ALL", "COUNT(*)")
	for _, tok := range strings.Fields(rest) {
		if !sqlTokens[tok] {
			t.Errorf("statement %q holds the token %q", stmt, tok)
		}
	}
	if n := strings.Count(stmt, "?"); n != len(args) {
		t.Errorf("statement %q has %d placeholders for %d args", stmt, n, len(args))
	}
}

func TestSelectSQL(t *testing.T) {
	tpl := usersTemplate(t)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		body string
		sql  string
		args []any
	}{
		{"everything", `{"template":"users","op":"read"}`,
			"SELECT " + allCols + " FROM `vw_usr` LIMIT ? OFFSET ?", []any{100, 0}},
		{"fields, filter, sort, paging", `{"template":"users","op":"read","fields":["id","email"],"filter":{"email":"a@b"},"sort":["-created","name"],"limit":5,"offset":10}`,
			"SELECT `usr_id`, `usr_email` FROM `vw_usr` WHERE `usr_email` = ? ORDER BY `usr_created` DESC, `usr_name` LIMIT ? OFFSET ?",
			[]any{"a@b", 5, 10}},
		{"limit clamped", `{"template":"users","op":"read","fields":["id"],"limit":999999}`,
			"SELECT `usr_id` FROM `vw_usr` LIMIT ? OFFSET ?", []any{1000, 0}},
		{"reserved word column", `{"template":"users","op":"read","fields":["grp"],"filter":{"grp":"g"},"sort":["-grp"]}`,
			"SELECT `select` FROM `vw_usr` WHERE `select` = ? ORDER BY `select` DESC LIMIT ? OFFSET ?", []any{"g", 100, 0}},
		{"ne", `{"template":"users","op":"read","fields":["id"],"filter":{"age":{"ne":3}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_age` <> ? LIMIT ? OFFSET ?", []any{int64(3), 100, 0}},
		{"gt", `{"template":"users","op":"read","fields":["id"],"filter":{"score":{"gt":1.5}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_score` > ? LIMIT ? OFFSET ?", []any{1.5, 100, 0}},
		{"gte datetime", `{"template":"users","op":"read","fields":["id"],"filter":{"created":{"gte":"2026-01-01T01:00:00+01:00"}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_created` >= ? LIMIT ? OFFSET ?", []any{created, 100, 0}},
		{"lt", `{"template":"users","op":"read","fields":["id"],"filter":{"age":{"lt":3}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_age` < ? LIMIT ? OFFSET ?", []any{int64(3), 100, 0}},
		{"lte", `{"template":"users","op":"read","fields":["id"],"filter":{"age":{"lte":3}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_age` <= ? LIMIT ? OFFSET ?", []any{int64(3), 100, 0}},
		{"eq bool", `{"template":"users","op":"read","fields":["id"],"filter":{"active":{"eq":true}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_active` = ? LIMIT ? OFFSET ?", []any{true, 100, 0}},
		{"like", `{"template":"users","op":"read","fields":["id"],"filter":{"email":{"like":"%@x.org"}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_email` LIKE ? LIMIT ? OFFSET ?", []any{"%@x.org", 100, 0}},
		{"in", `{"template":"users","op":"read","fields":["id"],"filter":{"age":{"in":[1,2,3]}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_age` IN (?, ?, ?) LIMIT ? OFFSET ?", []any{int64(1), int64(2), int64(3), 100, 0}},
		{"nin", `{"template":"users","op":"read","fields":["id"],"filter":{"email":{"nin":["a"]}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_email` NOT IN (?) LIMIT ? OFFSET ?", []any{"a", 100, 0}},
		{"null true", `{"template":"users","op":"read","fields":["id"],"filter":{"name":{"null":true}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_name` IS NULL LIMIT ? OFFSET ?", []any{100, 0}},
		{"null false", `{"template":"users","op":"read","fields":["id"],"filter":{"prefs":{"null":false}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_prefs` IS NOT NULL LIMIT ? OFFSET ?", []any{100, 0}},
		{"bare null", `{"template":"users","op":"read","fields":["id"],"filter":{"name":null}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_name` IS NULL LIMIT ? OFFSET ?", []any{100, 0}},
		{"eq null", `{"template":"users","op":"read","fields":["id"],"filter":{"age":{"eq":null}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_age` IS NULL LIMIT ? OFFSET ?", []any{100, 0}},
		{"ne null", `{"template":"users","op":"read","fields":["id"],"filter":{"age":{"ne":null}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_age` IS NOT NULL LIMIT ? OFFSET ?", []any{100, 0}},
		{"two operators", `{"template":"users","op":"read","fields":["id"],"filter":{"age":{"lt":65,"gte":18}}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE (`usr_age` >= ? AND `usr_age` < ?) LIMIT ? OFFSET ?", []any{int64(18), int64(65), 100, 0}},
		{"or with nested and", `{"template":"users","op":"read","fields":["id"],"filter":{"or":[{"email":"a"},{"and":[{"age":{"gt":1}},{"active":true}]}]}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE (`usr_email` = ? OR (`usr_age` > ? AND `usr_active` = ?)) LIMIT ? OFFSET ?",
			[]any{"a", int64(1), true, 100, 0}},
		{"field and or", `{"template":"users","op":"read","fields":["id"],"filter":{"email":"a","or":[{"age":1},{"name":{"null":true}}]}}`,
			"SELECT `usr_id` FROM `vw_usr` WHERE (`usr_email` = ? AND (`usr_age` = ? OR `usr_name` IS NULL)) LIMIT ? OFFSET ?",
			[]any{"a", int64(1), 100, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := query(t, tpl, tc.body)
			stmt, args := selectSQL(q, q.Fields, false)
			if stmt != tc.sql {
				t.Errorf("sql\n got  %s\n want %s", stmt, tc.sql)
			}
			if !reflect.DeepEqual(args, tc.args) {
				t.Errorf("args\n got  %#v\n want %#v", args, tc.args)
			}
			checkSQL(t, stmt, args)
		})
	}
}

// An update or delete reads its rows through the view, locking them, with
// no paging, and at most one row past its bound when it has one.
func TestSelectForUpdate(t *testing.T) {
	tpl := usersTemplate(t)
	for _, tc := range []struct {
		body        string
		maxAffected int
		op          wire.Op
		sql         string
		args        []any
	}{
		{`{"template":"users","op":"update","filter":{"id":7},"data":{"name":"x"}}`, 0, wire.OpUpdate,
			"SELECT `usr_id`, `usr_email`, `usr_name`, `usr_age`, `usr_score`, `usr_active`, `usr_prefs`, `select` FROM `vw_usr` WHERE `usr_id` = ? FOR UPDATE",
			[]any{int64(7)}},
		{`{"template":"users","op":"delete","filter":{"email":{"like":"%@gone.org"},"age":{"gt":90}}}`, 0, wire.OpDelete,
			"SELECT `usr_id` FROM `vw_usr` WHERE (`usr_age` > ? AND `usr_email` LIKE ?) FOR UPDATE",
			[]any{int64(90), "%@gone.org"}},
		{`{"template":"users","op":"update","filter":{"active":true},"data":{"name":"x"}}`, 1000, wire.OpUpdate,
			"SELECT `usr_id`, `usr_email`, `usr_name`, `usr_age`, `usr_score`, `usr_active`, `usr_prefs`, `select` FROM `vw_usr` WHERE `usr_active` = ? LIMIT ? FOR UPDATE",
			[]any{true, 1001}},
		{`{"template":"users","op":"delete","filter":{"age":{"gt":90}}}`, 3, wire.OpDelete,
			"SELECT `usr_id` FROM `vw_usr` WHERE `usr_age` > ? LIMIT ? FOR UPDATE",
			[]any{int64(90), 4}},
	} {
		q := query(t, tpl, tc.body)
		q.MaxAffected = tc.maxAffected
		stmt, args := selectSQL(q, tpl.Params(tc.op), true)
		if stmt != tc.sql {
			t.Errorf("sql\n got  %s\n want %s", stmt, tc.sql)
		}
		if !reflect.DeepEqual(args, tc.args) {
			t.Errorf("args\n got  %#v\n want %#v", args, tc.args)
		}
		checkSQL(t, stmt, args)
	}
}

func TestWhere(t *testing.T) {
	tpl := usersTemplate(t)
	// Count builds its statement from where alone.
	for _, tc := range []struct {
		filter string
		sql    string
		args   []any
	}{
		{``, "SELECT COUNT(*) FROM `vw_usr`", nil},
		{`,"filter":{}`, "SELECT COUNT(*) FROM `vw_usr`", nil},
		{`,"filter":{"active":false}`, "SELECT COUNT(*) FROM `vw_usr` WHERE `usr_active` = ?", []any{false}},
		{`,"filter":{"or":[{"age":{"in":[1,2]}},{"age":{"nin":[3,4]}}]}`,
			"SELECT COUNT(*) FROM `vw_usr` WHERE (`usr_age` IN (?, ?) OR `usr_age` NOT IN (?, ?))", []any{int64(1), int64(2), int64(3), int64(4)}},
	} {
		q := query(t, tpl, `{"template":"users","op":"count"`+tc.filter+`}`)
		b, args := appendCount(nil, nil, q)
		if string(b) != tc.sql {
			t.Errorf("sql\n got  %s\n want %s", b, tc.sql)
		}
		if !reflect.DeepEqual(args, tc.args) {
			t.Errorf("args\n got  %#v\n want %#v", args, tc.args)
		}
		checkSQL(t, string(b), args)
	}
}

func TestCallSQL(t *testing.T) {
	for _, tc := range []struct {
		proc string
		n    int
		want string
	}{
		{"sp_usr_delete", 1, "CALL `sp_usr_delete`(?)"},
		{"sp_usr_create", 3, "CALL `sp_usr_create`(?, ?, ?)"},
		{"sp_noargs", 0, "CALL `sp_noargs`()"},
	} {
		got := callSQL(tc.proc, tc.n)
		if got != tc.want {
			t.Errorf("callSQL(%s, %d) = %q, want %q", tc.proc, tc.n, got, tc.want)
		}
		checkSQL(t, got, make([]any, tc.n))
	}
	// The procedures of a template, with its parameter lists.
	tpl := usersTemplate(t)
	for op, want := range map[wire.Op]string{
		wire.OpCreate: "CALL `sp_usr_create`(?, ?, ?, ?, ?, ?, ?)",
		wire.OpUpdate: "CALL `sp_usr_update`(?, ?, ?, ?, ?, ?, ?, ?)",
		wire.OpDelete: "CALL `sp_usr_delete`(?)",
	} {
		proc := map[wire.Op]string{wire.OpCreate: tpl.Objects.Create, wire.OpUpdate: tpl.Objects.Update, wire.OpDelete: tpl.Objects.Delete}[op]
		if got := callSQL(proc, len(tpl.Params(op))); got != want {
			t.Errorf("%s: %q, want %q", op, got, want)
		}
	}
}

var evil = []string{
	"'; DROP TABLE tbl_usr; --",
	"\"; DROP TABLE tbl_usr; --",
	"` OR 1=1 -- ",
	"x' OR '1'='1",
	"a\\'; DELETE FROM vw_usr; #",
	"1); CALL sp_usr_delete(1); --",
	"/* comment */ UNION SELECT * FROM mysql.user",
	"?",
	"%' AND SLEEP(5) AND '%'='",
}

// Values never reach the statement text: they are args, unchanged.
func TestInjectionValuesAreBound(t *testing.T) {
	tpl := usersTemplate(t)
	for _, v := range evil {
		js, _ := json.Marshal(v)
		s := string(js)
		for _, filter := range []string{
			`{"email":` + s + `}`,
			`{"name":{"ne":` + s + `}}`,
			`{"name":{"gt":` + s + `}}`,
			`{"email":{"like":` + s + `}}`,
			`{"email":{"in":["ok",` + s + `]}}`,
			`{"grp":{"nin":[` + s + `]}}`,
			`{"or":[{"name":` + s + `},{"and":[{"email":` + s + `},{"age":1}]}]}`,
		} {
			q := query(t, tpl, `{"template":"users","op":"read","fields":["id"],"filter":`+filter+`}`)
			for _, forUpdate := range []bool{false, true} {
				stmt, args := selectSQL(q, q.Fields, forUpdate)
				checkSQL(t, stmt, args)
				if v != "?" && strings.Contains(stmt, v) {
					t.Errorf("filter %s: statement %q contains the value", filter, stmt)
				}
				for _, bad := range []string{"DROP", "DELETE", "UNION", "SLEEP", "'", "\"", "--", ";", "#", "/*"} {
					if strings.Contains(stmt, bad) {
						t.Errorf("filter %s: statement %q contains %q", filter, stmt, bad)
					}
				}
				found := false
				for _, a := range args {
					if a == v {
						found = true
					}
				}
				if !found {
					t.Errorf("filter %s: value not among args %#v", filter, args)
				}
			}
		}
	}
}

func TestBindValue(t *testing.T) {
	tpl := usersTemplate(t)
	ts := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, tc := range []struct {
		field string
		in    any
		want  any
	}{
		{"name", nil, nil},
		{"prefs", nil, nil},
		{"name", "'; DROP TABLE x; --", "'; DROP TABLE x; --"},
		{"age", int64(5), int64(5)},
		{"score", 1.25, 1.25},
		{"active", true, true},
		{"created", ts, ts},
		{"prefs", map[string]any{"a": int64(1), "b": []any{"x", nil}}, `{"a":1,"b":["x",null]}`},
		{"prefs", "text", `"text"`},
		{"prefs", json.RawMessage(`{"raw":true}`), `{"raw":true}`},
	} {
		got := bindValue(tpl.Field(tc.field), tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("bindValue(%s, %#v) = %#v, want %#v", tc.field, tc.in, got, tc.want)
		}
	}
}

func TestKeyValue(t *testing.T) {
	tpl := usersTemplate(t)
	str := &template.Field{Name: "code", Type: template.TypeString}
	for _, tc := range []struct {
		f    *template.Field
		in   any
		want any
	}{
		{tpl.Key, []byte("42"), int64(42)},
		{tpl.Key, uint64(42), int64(42)},
		{tpl.Key, int64(42), int64(42)},
		{tpl.Key, []byte("x"), "x"},
		{str, []byte("A-1"), "A-1"},
	} {
		if got := keyValue(tc.f, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("keyValue(%s, %#v) = %#v, want %#v", tc.f.Name, tc.in, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"vw_usr": "`vw_usr`", "select": "`select`", "Mixed_1": "`Mixed_1`"} {
		if got := string(appendQuoted([]byte("x "), in)); got != "x "+want {
			t.Errorf("appendQuoted(%q) = %q", in, got)
		}
	}
}

// FuzzSelectSQL: whatever filter Build accepts yields a statement of quoted
// identifiers, fixed tokens and one placeholder per argument.
func FuzzSelectSQL(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a"}`,
		`{"age":{"gte":1,"lt":2}}`,
		`{"or":[{"name":null},{"and":[{"score":{"in":[1,2]}},{"active":false}]}]}`,
		`{"email":{"like":"'; DROP TABLE tbl_usr; --"}}`,
		`{"created":{"nin":["2026-01-01"]}}`,
		`{"prefs":{"null":true},"grp":{"ne":null}}`,
		`{"email; DROP TABLE users":"a"}`,
	} {
		f.Add(seed, "-created")
	}
	tpl := usersTemplate(f)
	f.Fuzz(func(t *testing.T, filter, sort string) {
		body, err := json.Marshal(map[string]any{"template": "users", "op": "read", "filter": json.RawMessage(filter), "sort": []string{sort}})
		if err != nil {
			return // not JSON
		}
		req, err := wire.DecodeRequest(body)
		if err != nil {
			return
		}
		q, err := store.Build(tpl, "ev", req, store.DefaultLimits)
		if err != nil {
			if _, ok := wire.AsError(err); !ok {
				t.Fatalf("Build returned a non-contract error: %v", err)
			}
			return
		}
		stmt, args := selectSQL(q, q.Fields, false)
		checkSQL(t, stmt, args)
		if strings.ContainsAny(stmt, "'\";#") || strings.Contains(stmt, "--") {
			t.Fatalf("statement %q", stmt)
		}
	})
}
