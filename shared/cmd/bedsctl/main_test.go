package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/wire"
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
		code := run(context.Background(), tc.args, nil, &out, &errOut)
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
		code := run(context.Background(), args, nil, &out, &errOut)
		all := out.String() + errOut.String()
		if code == 0 || strings.Contains(all, "s3cr") || !strings.Contains(all, "malformed AMQP URL") {
			t.Errorf("%v: exit %d, output must refuse the URL without its password:\n%s", args, code, all)
		}
	}
}

func TestRenderLineage(t *testing.T) {
	const root = "01JDQ3V0Z8K4M6T2X9B7C5N1PA"
	ev := func(id string, op wire.Op, tmpl, outcome string, us int64, children ...*wire.Lineage) *wire.Lineage {
		return &wire.Lineage{Event: id, Op: op, Template: tmpl, Outcome: outcome, DurationUS: us, Node: "appserver@h1", Children: children}
	}
	for _, tc := range []struct {
		name string
		tree *wire.Lineage
		want string
	}{
		{"the example", ev(root, wire.OpRead, "users", "ok", 1240,
			ev(root+".1", wire.OpRead, "orders", "ok", 810,
				ev(root+".1.1", wire.OpRead, "items", "ok", 500)),
			ev(root+".2", wire.OpRead, "profiles", "timeout", 30_000_000)), `
01JDQ3V0Z8K4M6T2X9B7C5N1PA  read users  ok  1.24ms  appserver@h1
├─ 01JDQ3V0Z8K4M6T2X9B7C5N1PA.1  read orders  ok  0.81ms  appserver@h1
│  └─ 01JDQ3V0Z8K4M6T2X9B7C5N1PA.1.1  read items  ok  0.50ms  appserver@h1
└─ 01JDQ3V0Z8K4M6T2X9B7C5N1PA.2  read profiles  timeout  30.00s  appserver@h1
`},
		// Siblings keep the order given, not the order of their IDs; a
		// deep last branch indents with blanks, a deep middle one with
		// bars.
		{"deep, siblings as given", ev("r", wire.OpBatch, "", "ok", 999_994,
			ev("r.3", wire.OpCreate, "users", "ok", 1,
				ev("r.3.1", wire.OpRead, "a", "ok", 1,
					ev("r.3.1.1", wire.OpRead, "b", "ok", 1,
						ev("r.3.1.1.1", wire.OpRead, "c", "not_found", 1))),
				ev("r.3.2", wire.OpRead, "d", "ok", 1)),
			ev("r.1", wire.OpCount, "users", "ok", 999_995),
			ev("r.2", wire.OpUpdate, "users", "conflict", 1_000_000,
				ev("r.2.1", wire.OpRead, "e", "ok", 1,
					ev("r.2.1.1", wire.OpRead, "f", "ok", 1)))), `
r  batch  ok  999.99ms  appserver@h1
├─ r.3  create users  ok  0.00ms  appserver@h1
│  ├─ r.3.1  read a  ok  0.00ms  appserver@h1
│  │  └─ r.3.1.1  read b  ok  0.00ms  appserver@h1
│  │     └─ r.3.1.1.1  read c  not_found  0.00ms  appserver@h1
│  └─ r.3.2  read d  ok  0.00ms  appserver@h1
├─ r.1  count users  ok  1.00s  appserver@h1
└─ r.2  update users  conflict  1.00s  appserver@h1
   └─ r.2.1  read e  ok  0.00ms  appserver@h1
      └─ r.2.1.1  read f  ok  0.00ms  appserver@h1
`},
		{"missing parts, nil children, hostile text", &wire.Lineage{Event: "p", Op: wire.OpPing, Children: []*wire.Lineage{
			nil, {Event: "p.1", Op: wire.OpRead, Template: "x", Outcome: "ok", DurationUS: 120_500_000, Node: "evil\x1b[2J\nnode"}, nil}}, `
p  ping  -  0.00ms
└─ p.1  read x  ok  120.50s  "evil\x1b[2J\nnode"
`},
		{"no tree", nil, "\n"},
	} {
		if got, want := renderLineage(tc.tree), tc.want[1:]; got != want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", tc.name, got, want)
		}
	}
}

const testTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseCall(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // error text; "" for none
		req  wire.Request
		flag sendFlags
	}{
		{args: []string{"users", "read", "--include", "orders,orders.items", "--include", " profile ", "--record"},
			req: wire.Request{Template: "users", Op: wire.OpRead, Include: []string{"orders", "orders.items", "profile"}, Record: true}},
		{args: []string{"--parent", "01JDQ3V0Z8K4M6T2X9B7C5N1PA.2", "users", "count", "--traceparent", testTrace, "--filter", `{"a":1}`},
			req:  wire.Request{Template: "users", Op: wire.OpCount, Filter: json.RawMessage(`{"a":1}`)},
			flag: sendFlags{parent: "01JDQ3V0Z8K4M6T2X9B7C5N1PA.2", trace: testTrace}},
		{args: []string{"users", "read", "--fields", "id,name", "--sort", "-id", "--limit", "3"},
			req: wire.Request{Template: "users", Op: wire.OpRead, Fields: []string{"id", "name"}, Sort: []string{"-id"}, Limit: 3}},
		{args: []string{"users"}, want: "takes a template and an op, got 1"},
		{args: []string{"users", "read", "x"}, want: "got 3"},
		{args: []string{"users", "read", "--filter", "{"}, want: "--filter is not valid JSON"},
		{args: []string{"users", "read", "--parent", "two words"}, want: `--parent "two words" is not an event ID`},
		{args: []string{"users", "read", "--traceparent", strings.ToUpper(testTrace)}, want: "--traceparent: traceparent"},
		{args: []string{"users", "read", "--traceparent", "00-1"}, want: "has 4 characters"},
		{args: []string{"users", "read", "--nope"}, want: "bad flags"},
		{args: []string{"users", "read", "--include"}, want: "bad flags"},
	} {
		cmd, err := parseCall(tc.args, io.Discard)
		switch {
		case tc.want != "":
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.args, err)
		default:
			if !reflect.DeepEqual(*cmd.req, tc.req) {
				t.Errorf("%v: request %+v, want %+v", tc.args, *cmd.req, tc.req)
			}
			if cmd.parent != tc.flag.parent || cmd.trace != tc.flag.trace || cmd.record != tc.req.Record {
				t.Errorf("%v: flags %+v", tc.args, cmd.sendFlags)
			}
		}
	}
}

func TestParseBatch(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `[{"template":"users","op":"read","include":["orders"]},
	          {"template":"users","op":"create","data":{"name":"Ann"}}]`
	goodFile := file("good.json", good)
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string // error text; "" for none
		key   string // the request's routing key
	}{
		{args: []string{goodFile}, key: wire.RouteWrite},
		{args: []string{"-", "--record", "--parent", "01JDQ3V0Z8K4M6T2X9B7C5N1PA"}, stdin: `[{"template":"users","op":"count"}]`, key: wire.RouteRead},
		{args: []string{file("obj.json", `{"template":"users","op":"count"}`)}, want: "obj.json: not a JSON array"},
		{args: []string{file("null.json", `null`)}, want: "null.json: not a JSON array"},
		{args: []string{file("empty.json", ``)}, want: "empty.json: not a JSON array"},
		{args: []string{file("cut.json", `[{"op":"count"`)}, want: "cut.json: not a JSON array (unexpected end"},
		{args: []string{file("nums.json", `[{"template":"users","op":"count"}, 1]`)}, want: "nums.json: item 1 is not a request object but 1"},
		{args: []string{file("none.json", ` [ ] `)}, want: "none.json: batch is empty"},
		{args: []string{file("typo.json", `[{"tempate":"users","op":"count"}]`)}, want: `typo.json: batch[0]: body is not a valid request: unknown field "tempate"`},
		{args: []string{file("nest.json", `[{"op":"batch","batch":[{"op":"ping"}]}]`)}, want: "nest.json: batch[0] is a batch"},
		{args: []string{file("inc.json", `[{"template":"users","op":"count","include":["x"]}]`)}, want: "inc.json: batch[0]: include applies to read only"},
		{args: []string{"-"}, stdin: "[", want: "stdin: not a JSON array"},
		{args: []string{filepath.Join(dir, "missing.json")}, want: "missing.json: no such file"},
		{args: nil, want: "takes one file (or - for stdin), got 0"},
		{args: []string{goodFile, goodFile}, want: "got 2"},
		{args: []string{goodFile, "--traceparent", "00"}, want: "--traceparent"},
	} {
		cmd, err := parseBatch(tc.args, strings.NewReader(tc.stdin), io.Discard)
		switch {
		case tc.want != "":
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.args, err)
		default:
			if cmd.req.Op != wire.OpBatch || len(cmd.req.Batch) == 0 || cmd.req.RoutingKey() != tc.key || cmd.req.Record != cmd.record {
				t.Errorf("%v: request %+v, want a batch routed %s", tc.args, cmd.req, tc.key)
			}
		}
	}
	big := bytes.Repeat([]byte(" "), maxBatchFile+1)
	if _, err := parseBatch([]string{"-"}, bytes.NewReader(big), io.Discard); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("a file over the bound: %v", err)
	}
}

func TestParseLineage(t *testing.T) {
	cmd, err := parseLineage([]string{"--json", "01JDQ3V0Z8K4M6T2X9B7C5N1PA.1"}, io.Discard)
	if err != nil || !cmd.json || cmd.event != "01JDQ3V0Z8K4M6T2X9B7C5N1PA.1" {
		t.Fatalf("parsed %+v, %v", cmd, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "one event ID, got 0"},
		{[]string{"a", "b"}, "got 2"},
		{[]string{"two words"}, "is not an event ID"},
		{[]string{"x", "--json=maybe"}, "bad flags"},
	} {
		if _, err := parseLineage(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

// Refused usage exits 2 before dialing, with one message saying why.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "users", "read", "--traceparent", "nope"}, "bedsctl: --traceparent: traceparent \"nope\""},
		{[]string{"call", "users", "read", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"batch"}, "bedsctl: batch takes one file"},
		{[]string{"batch", "-"}, "bedsctl: stdin: not a JSON array"},
		{[]string{"lineage", "a b"}, `bedsctl: "a b" is not an event ID`},
		{[]string{"lineage", "-h"}, "Prints the lineage tree"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(tc.args, "--url", "amqp://guest:guest@127.0.0.1:1/"), strings.NewReader("{}"), &out, &errOut)
		if code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d (want 2), stdout %q, stderr lacks %q:\n%s", tc.args, code, out.String(), tc.want, errOut.String())
		}
		if strings.Count(errOut.String(), "bedsctl: ") > 1 {
			t.Errorf("%v: more than one message:\n%s", tc.args, errOut.String())
		}
	}
}
