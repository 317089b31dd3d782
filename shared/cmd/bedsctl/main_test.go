package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplatesOffline validates template folders without any server.
func TestTemplatesOffline(t *testing.T) {
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "x_rec.toml"), []byte("name = \"x\"\ntla = \"xx\"\nkind = \"rec\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The shipped folder plus a relation to a template it lacks.
	badRel := t.TempDir()
	shipped, err := filepath.Glob("../../../templates/*.toml")
	if err != nil || len(shipped) == 0 {
		t.Fatalf("no shipped templates (%v)", err)
	}
	for _, f := range shipped {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(badRel, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel := "name = \"user_carts\"\nkind = \"rel\"\nparent = \"users\"\nchild = \"carts\"\n[on]\nparent = \"id\"\nchild = \"user\"\n"
	if err := os.WriteFile(filepath.Join(badRel, "user_carts_rel.toml"), []byte(rel), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"templates", "--dir", "../../../templates"}, 0, "6 templates and 4 relations valid"},
		{[]string{"templates", "--dir", "../../../templates"}, 0, "users -> orders as orders"},
		{[]string{"templates", "--dir", "../../../templates"}, 0, "orders.user = users.id"},
		{[]string{"templates", "--dir", badRel}, 1, `user_carts_rel.toml:4: child "carts" is not a rec template`},
		{[]string{"templates", "--dir", bad}, 1, `x_rec.toml:2: tla "xx"`},
		{[]string{"templates", "--dir", filepath.Join(bad, "missing")}, 1, "no such file"},
		{[]string{"help"}, 0, "bedsctl call"},
		{nil, 2, "bedsctl call"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		all := out.String() + errOut.String()
		if code != tc.code || !strings.Contains(all, tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s", tc.args, code, tc.code, tc.want, all)
		}
	}
}

func TestParseFlagsAnywhere(t *testing.T) {
	var limit int
	fs := newTestFlagSet(&limit)
	pos, err := parse(fs, []string{"--limit", "3", "users", "read", "--limit", "5"})
	if err != nil || len(pos) != 2 || pos[0] != "users" || pos[1] != "read" || limit != 5 {
		t.Fatalf("pos %v limit %d err %v", pos, limit, err)
	}
	if got := splitList(" a, ,b "); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("splitList = %v", got)
	}
}

func newTestFlagSet(limit *int) *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.IntVar(limit, "limit", 0, "")
	return fs
}

// bedsctl never prints the password of a malformed --url.
func TestMalformedURLHidesThePassword(t *testing.T) {
	for _, args := range [][]string{
		{"call", "users", "read", "--url", "amqp://guest:s3cr%zzet@127.0.0.1:5672/", "--timeout", "2s"},
		{"ping", "--url", "amqp://guest:s3cr/et@127.0.0.1:5672/", "--timeout", "2s"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		all := out.String() + errOut.String()
		if code == 0 || strings.Contains(all, "s3cr") || !strings.Contains(all, "malformed AMQP URL") {
			t.Errorf("%v: exit %d, output must refuse the URL without its password:\n%s", args, code, all)
		}
	}
}
