package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/ipl/ipltest"
	"github.com/beds-project/beds/shared/store/mariadb"
	mongostore "github.com/beds-project/beds/shared/store/mongo"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// A domain is its template plus what bedsctl schema gen writes: on
// databases holding only the generated objects of every shipped template,
// MariaDB's and MongoDB's, a node with templates.check = strict starts and
// serves every operation each template allows; once an object disagrees
// with its template, a node refuses to start, naming the template, the
// object and the difference, and with templates.check = warn it starts.
func TestSchemaEndToEnd(t *testing.T) {
	root := testenv.Root(t)
	reg, err := template.Load(filepath.Join(root, "templates"), map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo})
	must(t, err)
	gen := t.TempDir()
	files := []string{filepath.Join(root, "deploy", "mariadb", "000_beds.sql")}
	mongoFiles := []string{filepath.Join(root, "deploy", "mongo", "indexes.json")}
	script := map[string]string{} // template -> its generated file
	var ts []*template.Template
	for _, name := range reg.Names() {
		tpl := reg.Get(name)
		switch tpl.StoreKind {
		case template.StoreMariaDB:
			src, err := mariadb.GenerateSchema(tpl)
			must(t, err)
			f := filepath.Join(gen, name+".sql")
			must(t, os.WriteFile(f, src, 0o644))
			files, script[name] = append(files, f), f
		case template.StoreMongo:
			src, err := mongostore.GenerateSchema(tpl)
			must(t, err)
			f := filepath.Join(gen, name+".js")
			must(t, os.WriteFile(f, src, 0o644))
			mongoFiles = append(mongoFiles, f)
		}
		ts = append(ts, tpl)
	}
	dsn := testenv.MariaDBWith(t, files...)
	mongoURI := testenv.MongoWith(t, mongoFiles...)
	env := ipltest.Env(t, map[string]string{
		"BEDS_MARIADB_DSN": dsn,
		"BEDS_MONGO_URI":   mongoURI,
		"BEDS_CONFIG_DIR":  configDir(t, "[templates]\ncheck = \"strict\"\n"),
		"BEDS_NODE_NAME":   "schema-strict",
	})
	ipltest.Start(t, role, env)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, env["BEDS_AMQP_URL"], client.Options{Name: "schema-test"})
	must(t, err)
	defer c.Close()
	for _, tpl := range ts {
		t.Run("ops "+tpl.Name, func(t *testing.T) { everyOp(t, c, tpl) })
	}

	db, err := sql.Open("mysql", dsn)
	must(t, err)
	defer db.Close()
	for _, tc := range []struct {
		name, template string
		alter          string
		want           string
	}{
		{"a view column dropped", "users",
			"CREATE OR REPLACE VIEW vw_usr AS SELECT usr_id, usr_name, usr_age, usr_score, usr_active, usr_prefs, usr_created FROM tbl_usr",
			"template users: view vw_usr: expected column usr_email (field email, string), found none"},
		{"a procedure parameter more", "orders",
			"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(200), IN beds_set TEXT, IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20), IN p_note TEXT) BEGIN END",
			"template orders: procedure sp_ord_update: expected 6 parameters (beds_event, beds_set, id, user, total, status), found 7 (beds_event, beds_set, p_id, p_user, p_total, p_status, p_note)"},
		{"an update procedure of the previous convention", "orders",
			"CREATE OR REPLACE PROCEDURE sp_ord_update(IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN END",
			"template orders: procedure sp_ord_update: expected 6 parameters (beds_event, beds_set, id, user, total, status): the event ID and the names of the fields the request sets first (regenerate with bedsctl schema gen"},
		{"a delete procedure of the previous convention", "orders",
			"CREATE OR REPLACE PROCEDURE sp_ord_delete(IN p_id BIGINT) BEGIN END",
			"template orders: procedure sp_ord_delete: expected 2 parameters (beds_event, id): the event ID first (regenerate with bedsctl schema gen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.ExecContext(ctx, tc.alter)
			must(t, err)
			defer func() { must(t, testenv.ApplySQL(ctx, dsn, script[tc.template])) }()

			strict := ipltest.Env(t, map[string]string{"BEDS_MARIADB_DSN": dsn, "BEDS_CONFIG_DIR": env["BEDS_CONFIG_DIR"], "BEDS_NODE_NAME": "schema-refused"})
			n, err := ipl.Boot(ctx, role, strict)
			if err == nil {
				t.Fatalf("node %v started on a database that disagrees with template %s", n.Addr(), tc.template)
			}
			var se *ipl.StepError
			if !errors.As(err, &se) || se.Step != "schema" || se.Target != "mariadb" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("boot: %v\nwant step schema (mariadb) naming %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "disagrees with its templates in 1 place") {
				t.Errorf("boot: %v: want exactly the one difference", err)
			}

			warn := ipltest.Env(t, map[string]string{"BEDS_MARIADB_DSN": dsn, "BEDS_CONFIG_DIR": configDir(t, "[templates]\ncheck = \"warn\"\n"),
				"BEDS_NODE_NAME": "schema-warn", "BEDS_LOG_LEVEL": "error"})
			ipltest.Start(t, role, warn)
		})
	}

	t.Run("a MongoDB index dropped", func(t *testing.T) {
		mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
		must(t, err)
		defer mc.Disconnect(ctx)
		u, err := url.Parse(mongoURI)
		must(t, err)
		must(t, mc.Database(strings.TrimPrefix(u.Path, "/")).Collection("profiles").Indexes().DropOne(ctx, "ix_prf_user"))

		strict := ipltest.Env(t, map[string]string{"BEDS_MARIADB_DSN": dsn, "BEDS_MONGO_URI": mongoURI, "BEDS_CONFIG_DIR": env["BEDS_CONFIG_DIR"], "BEDS_NODE_NAME": "schema-refused"})
		n, err := ipl.Boot(ctx, role, strict)
		if err == nil {
			t.Fatalf("node %v started on a database that disagrees with template profiles", n.Addr())
		}
		want := "template profiles: collection profiles: expected an index starting with prf_user, neither partial nor sparse (field user: sortable, joined), found none"
		var se *ipl.StepError
		if !errors.As(err, &se) || se.Step != "schema" || se.Target != "mongo" || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), "disagrees with its templates in 1 place") {
			t.Fatalf("boot: %v\nwant step schema (mongo) naming only %q", err, want)
		}
		warn := ipltest.Env(t, map[string]string{"BEDS_MARIADB_DSN": dsn, "BEDS_MONGO_URI": mongoURI, "BEDS_CONFIG_DIR": configDir(t, "[templates]\ncheck = \"warn\"\n"),
			"BEDS_NODE_NAME": "schema-warn", "BEDS_LOG_LEVEL": "error"})
		ipltest.Start(t, role, warn)
	})
}

// everyOp runs each operation tpl allows on one record, with a value of
// every field it can set, and checks what a read returns.
func everyOp(t *testing.T, c *client.Client, tpl *template.Template) {
	data := map[string]any{}
	for _, f := range tpl.Params(wire.OpCreate) {
		if !f.Readonly {
			data[f.Name] = sample(f, 1)
		}
	}
	send := func(op wire.Op, filter, data any) *wire.Reply {
		t.Helper()
		req := map[string]any{"template": tpl.Name, "op": op}
		if filter != nil {
			req["filter"] = filter
		}
		if data != nil {
			req["data"] = data
		}
		b, err := json.Marshal(req)
		must(t, err)
		return do(t, c, string(b))
	}
	if !tpl.Allows(wire.OpCreate) {
		t.Fatalf("template %s allows no create; the test needs a record", tpl.Name)
	}
	r := send(wire.OpCreate, nil, data)
	if r.Affected != 1 || r.Key == nil {
		t.Fatalf("create: affected %d, key %v", r.Affected, r.Key)
	}
	byKey := map[string]any{tpl.Key.Name: r.Key}
	check := func(want map[string]any) {
		t.Helper()
		if tpl.Allows(wire.OpCount) {
			if n := send(wire.OpCount, byKey, nil).Count; n != 1 {
				t.Errorf("count = %d", n)
			}
		}
		rows := send(wire.OpRead, byKey, nil).Rows
		if len(rows) != 1 {
			t.Fatalf("read: %d rows", len(rows))
		}
		for name, v := range want {
			got, _ := json.Marshal(rows[0][name])
			exp, _ := json.Marshal(v)
			if string(got) != string(exp) {
				t.Errorf("field %s = %s, want %s", name, got, exp)
			}
		}
		for _, f := range tpl.Fields {
			if f.Readonly && f.Type == template.TypeDatetime && rows[0][f.Name] == nil {
				t.Errorf("readonly %s is null: the table's default did not set it", f.Name)
			}
		}
	}
	check(data)
	if tpl.Allows(wire.OpUpdate) {
		change := map[string]any{}
		for _, f := range tpl.Params(wire.OpUpdate)[1:] {
			if !f.Readonly {
				change[f.Name] = sample(f, 2)
			}
		}
		if r := send(wire.OpUpdate, byKey, change); r.Affected != 1 {
			t.Fatalf("update affected %d", r.Affected)
		}
		for k, v := range change {
			data[k] = v
		}
		check(data)
	}
	if tpl.Allows(wire.OpDelete) {
		if r := send(wire.OpDelete, byKey, nil); r.Affected != 1 {
			t.Fatalf("delete affected %d", r.Affected)
		}
		if n := send(wire.OpCount, byKey, nil).Count; n != 0 {
			t.Errorf("count after delete = %d", n)
		}
	}
}

// sample is a value of f's type that fits it, different for each i.
func sample(f *template.Field, i int) any {
	switch f.Type {
	case template.TypeString:
		s := fmt.Sprintf("%s-%d", f.Name, i)
		if f.Max > 0 && len(s) > f.Max {
			s = s[len(s)-f.Max:]
		}
		return s
	case template.TypeInt:
		return 40 + i
	case template.TypeFloat:
		return 1.5 * float64(i)
	case template.TypeBool:
		return i%2 == 1
	case template.TypeDatetime:
		return fmt.Sprintf("2026-0%d-02T03:04:05.123Z", i) // milliseconds: what MongoDB keeps
	}
	return map[string]any{"n": i, "tags": []string{"a", "b"}}
}
