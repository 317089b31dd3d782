package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/beds-project/beds/shared/testenv"
)

// bedsctlRun runs bedsctl with args and returns its exit code and output.
func bedsctlRun(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSchemaGen(t *testing.T) {
	tpl := "../../../templates"
	golden := func(name string) string {
		f := filepath.Join("..", "..", "store", "mariadb", "testdata", "schema", name+".sql")
		if name == "profiles" || name == "logs" {
			f = filepath.Join("..", "..", "store", "mongo", "testdata", "schema", name+".js")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// One template to stdout: the generator's text, nothing else.
	code, out, errOut := bedsctlRun("schema", "gen", "--dir", tpl, "users")
	if code != 0 || out != golden("users") {
		t.Fatalf("gen users: exit %d, stderr %s, stdout:\n%s", code, errOut, out)
	}
	code, out, errOut = bedsctlRun("schema", "gen", "--dir", tpl, "profiles")
	if code != 0 || out != golden("profiles") {
		t.Fatalf("gen profiles: exit %d, stderr %s, stdout:\n%s", code, errOut, out)
	}
	// All of them, of both store kinds.
	code, out, errOut = bedsctlRun("schema", "gen", "--dir", tpl)
	for _, name := range []string{"example", "items", "logs", "orders", "profiles", "users"} {
		if !strings.Contains(out, golden(name)) {
			t.Errorf("gen: output lacks %s's objects", name)
		}
	}
	if code != 0 || errOut != "" {
		t.Fatalf("gen: exit %d, stderr %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"schema", "gen", "--dir", tpl, "nosuch"}, 2, `no rec template "nosuch"`},
		{[]string{"schema", "gen", "--dir", tpl, "user_orders"}, 2, `no rec template "user_orders"`},
		{[]string{"schema", "gen", "--dir", filepath.Join(t.TempDir(), "none")}, 1, "not valid"},
		{[]string{"schema"}, 2, "bedsctl schema gen"},
		{[]string{"schema", "drop"}, 2, `unknown command "drop"`},
	} {
		code, out, errOut := bedsctlRun(tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}

	// --out: DEPLOY/mariadb/NNN_<template>.sql, after the files already
	// there; a file with hand edits is kept unless --force.
	deploy := t.TempDir()
	dir := filepath.Join(deploy, "mariadb")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"000_beds.sql", "007_users.sql", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("-- edited\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut = bedsctlRun("schema", "gen", "--dir", tpl, "--out", deploy, "orders", "items", "users", "profiles")
	want := []string{
		"wrote " + filepath.Join(dir, "008_orders.sql"),
		"wrote " + filepath.Join(dir, "009_items.sql"),
		"kept " + filepath.Join(dir, "007_users.sql") + ": it differs",
		"wrote " + filepath.Join(deploy, "mongo", "001_profiles.js"),
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("gen --out: output lacks %q:\n%s%s", w, out, errOut)
		}
	}
	if code != 0 {
		t.Errorf("gen --out: exit %d", code)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "009_items.sql")); string(b) != golden("items") {
		t.Errorf("009_items.sql:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(deploy, "mongo", "001_profiles.js")); string(b) != golden("profiles") {
		t.Errorf("001_profiles.js:\n%s", b)
	}
	code, out, _ = bedsctlRun("schema", "gen", "--dir", tpl, "--out", deploy, "--force", "users", "items")
	if code != 0 || !strings.Contains(out, "wrote "+filepath.Join(dir, "007_users.sql")) || !strings.Contains(out, "unchanged "+filepath.Join(dir, "009_items.sql")) {
		t.Errorf("gen --force: exit %d:\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "007_users.sql")); string(b) != golden("users") {
		t.Errorf("007_users.sql not overwritten:\n%s", b)
	}
}

// schema check with the node's config: the shipped objects agree; an
// object changed by hand is printed as a difference and exits 1.
func TestSchemaCheck(t *testing.T) {
	dsn := testenv.MariaDB(t)
	cfgDir := t.TempDir()
	base, err := os.ReadFile(filepath.Join(testenv.Root(t), "deploy", "config", "beds.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "beds.toml"), base, 0o644); err != nil {
		t.Fatal(err)
	}
	mongoURI := testenv.Mongo(t)
	env := fmt.Sprintf("[stores.mariadb]\ndsn = %q\n\n[stores.mongo]\nuri = %q\n", dsn, mongoURI)
	if err := os.WriteFile(filepath.Join(cfgDir, "env_dev.toml"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl := filepath.Join(testenv.Root(t), "templates")
	code, out, errOut := bedsctlRun("schema", "check", "--config-dir", cfgDir, "--dir", tpl)
	if code != 0 || !strings.Contains(out, "6 templates agree with their databases") || strings.Contains(errOut, "not checked") {
		t.Fatalf("check: exit %d:\n%s%s", code, out, errOut)
	}

	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE OR REPLACE PROCEDURE sp_usr_delete(IN beds_event VARCHAR(200), IN p_id BIGINT, IN p_why TEXT) BEGIN CALL beds_record(beds_event, 'users', 'delete', 1, NULL); END"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = bedsctlRun("schema", "check", "--config-dir", cfgDir, "--dir", tpl, "users", "orders")
	for _, w := range []string{"TEMPLATE", "users", "procedure sp_usr_delete", "2 parameters (beds_event, id)", "3 (beds_event, p_id, p_why)", "1 differences"} {
		if !strings.Contains(out, w) {
			t.Errorf("check: output lacks %q:\n%s%s", w, out, errOut)
		}
	}
	if code != 1 {
		t.Errorf("check with a difference: exit %d", code)
	}

	// And on MongoDB: an index dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	u, err := url.Parse(mongoURI)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Database(strings.TrimPrefix(u.Path, "/")).Collection("profiles").Indexes().DropOne(ctx, "ix_prf_user"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = bedsctlRun("schema", "check", "--config-dir", cfgDir, "--dir", tpl, "profiles", "logs")
	for _, w := range []string{"profiles", "collection profiles", "an index starting with prf_user", "none", "1 differences"} {
		if !strings.Contains(out, w) {
			t.Errorf("check: output lacks %q:\n%s%s", w, out, errOut)
		}
	}
	if code != 1 {
		t.Errorf("check with a MongoDB difference: exit %d", code)
	}

	// A store that cannot be reached is a failure to check, named.
	bad := fmt.Sprintf("[stores.mariadb]\ndsn = %q\n", "root@tcp(127.0.0.1:1)/beds")
	if err := os.WriteFile(filepath.Join(cfgDir, "env_dev.toml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = bedsctlRun("schema", "check", "--config-dir", cfgDir, "--dir", tpl, "--timeout", "5s", "users")
	if code != 1 || !strings.Contains(errOut, "store mariadb (127.0.0.1:1)") {
		t.Errorf("unreachable store: exit %d:\n%s%s", code, out, errOut)
	}
}

// bedsctl templates prints the lint's warnings, and a folder that breaks
// a lint rule is not valid.
func TestTemplatesLint(t *testing.T) {
	src, err := os.ReadFile("../../../templates/users_rec.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users_rec.toml"), bytes.Replace(src, []byte(`read   = "vw_usr"`), []byte(`read   = "vw_people"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	line := func(text string) int { return 1 + bytes.Count(src[:bytes.Index(src, []byte(text))], []byte("\n")) }
	code, out, errOut := bedsctlRun("templates", "--dir", dir)
	want := fmt.Sprintf(`warning: %s:%d: objects.read "vw_people" does not follow the convention vw_usr`, filepath.Join(dir, "users_rec.toml"), line(`read   = "vw_usr"`))
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("templates: exit %d:\n%s%s", code, out, errOut)
	}
	// A second domain with the TLA usr.
	if err := os.WriteFile(filepath.Join(dir, "people_rec.toml"), bytes.Replace(src, []byte(`name  = "users"`), []byte(`name  = "people"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = bedsctlRun("templates", "--dir", dir)
	want = fmt.Sprintf(`users_rec.toml:%d: tla "usr" is already used by template people`, line(`tla   = "usr"`))
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("templates: exit %d:\n%s%s", code, out, errOut)
	}
}

// schema apply puts the checked-in MongoDB scripts into an empty database,
// which then agrees with its templates; applied again it changes nothing.
func TestSchemaApply(t *testing.T) {
	cfgDir := t.TempDir()
	base, err := os.ReadFile(filepath.Join(testenv.Root(t), "deploy", "config", "beds.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "beds.toml"), base, 0o644); err != nil {
		t.Fatal(err)
	}
	env := fmt.Sprintf("[stores.mariadb]\ndsn = %q\n\n[stores.mongo]\nuri = %q\n", "root@tcp(127.0.0.1:1)/beds", testenv.MongoWith(t))
	if err := os.WriteFile(filepath.Join(cfgDir, "env_dev.toml"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	root := testenv.Root(t)
	tpl, deploy := filepath.Join(root, "templates"), filepath.Join(root, "deploy")

	code, out, errOut := bedsctlRun("schema", "check", "--config-dir", cfgDir, "--dir", tpl, "profiles", "logs")
	if code != 1 || !strings.Contains(out, "collection profiles") || !strings.Contains(out, "collection msLogs") {
		t.Fatalf("check before apply: exit %d:\n%s%s", code, out, errOut)
	}
	for range 2 {
		code, out, errOut = bedsctlRun("schema", "apply", "--config-dir", cfgDir, "--dir", tpl, "--deploy", deploy)
		for _, w := range []string{"applied " + filepath.Join(deploy, "mongo", "001_logs.js") + " to store mongo", "applied " + filepath.Join(deploy, "mongo", "002_profiles.js") + " to store mongo"} {
			if !strings.Contains(out, w) {
				t.Errorf("apply: output lacks %q", w)
			}
		}
		if code != 0 || errOut != "" {
			t.Fatalf("apply: exit %d:\n%s%s", code, out, errOut)
		}
	}
	code, out, errOut = bedsctlRun("schema", "check", "--config-dir", cfgDir, "--dir", tpl, "profiles", "logs")
	if code != 0 || !strings.Contains(out, "2 templates agree with their databases") {
		t.Fatalf("check after apply: exit %d:\n%s%s", code, out, errOut)
	}

	// A MariaDB template named is skipped, saying how; a template without
	// a script is a failure naming the command that writes it.
	code, out, errOut = bedsctlRun("schema", "apply", "--config-dir", cfgDir, "--dir", tpl, "--deploy", deploy, "users")
	if code != 0 || !strings.Contains(errOut, "skipped users: mariadb files are applied with the database's own client") {
		t.Errorf("apply users: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = bedsctlRun("schema", "apply", "--config-dir", cfgDir, "--dir", tpl, "--deploy", t.TempDir(), "profiles")
	if code != 1 || !strings.Contains(errOut, "template profiles: no script to apply") || !strings.Contains(errOut, "bedsctl schema gen --out") {
		t.Errorf("apply without scripts: exit %d:\n%s%s", code, out, errOut)
	}
}
