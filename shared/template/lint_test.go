package template_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
)

// The lint's errors, at the line a person fixes.
func TestLintErrors(t *testing.T) {
	users := usersTOML(t)
	e := func(src, old, new string) string { return edit(t, src, old, new) }
	key := `id      = { type = "int", key = true }`
	for _, tc := range []struct {
		name, src, reason string
	}{
		{"key named on create, not required",
			e(users, key, key+" # HERE") + "[params]\ncreate = [\"id\", \"email\"]\n",
			"field id: the key is a parameter of create, so callers name each record and the database makes none; mark it required = true"},
		{"string key named on create, not required",
			e(users, key, `id      = { type = "string", key = true, max = 20 } # HERE`) + "[params]\ncreate = [\"email\", \"id\"]\n",
			"field id: the key is a parameter of create"},
		{"unique key", e(users, key, `id      = { type = "int", key = true, unique = true } # HERE`), "field id: the key is unique already"},
		{"unique json", e(users, `prefs   = { type = "json" }`, `prefs   = { type = "json", unique = true } # HERE`), "field prefs: a json field cannot be unique"},
		{"unique misspelt", e(users, `prefs   = { type = "json" }`, `prefs   = { type = "json", uniq = true } # HERE`), `unknown key "fields.prefs.uniq"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := template.Parse("t.toml", []byte(tc.src), stores)
			var te *template.Error
			if !errors.As(err, &te) || te.Line != marked(tc.src) || !strings.Contains(te.Reason, tc.reason) {
				t.Errorf("err %v, want line %d: %q", err, marked(tc.src), tc.reason)
			}
		})
	}

	// Not an error: the key named on create and required (the shipped
	// example), and a key named on create when the template allows no
	// create.
	for _, src := range []string{
		e(users, key, `id      = { type = "int", key = true, required = true }`) + "[params]\ncreate = [\"id\", \"email\"]\n",
		e(e(users, key, `id      = { type = "int", key = true }`), `allow = ["create", "read", "update", "delete", "count"]`, `allow = ["read", "update"]`) + "[params]\ncreate = [\"id\", \"email\"]\n",
	} {
		if _, err := template.Parse("t.toml", []byte(src), stores); err != nil {
			t.Errorf("Parse: %v", err)
		}
	}
}

// Two REC templates of one folder never share a TLA: the second file in
// name order is refused at its tla line.
func TestLintTLAUnique(t *testing.T) {
	dir := t.TempDir()
	users := usersTOML(t)
	other := edit(t, users, `name  = "users"`, `name  = "accounts"`)
	for f, src := range map[string]string{"users_rec.toml": users, "accounts_rec.toml": other} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := template.Load(dir, stores)
	var te *template.Error
	if !errors.As(err, &te) || filepath.Base(te.File) != "users_rec.toml" || te.Line != lineOf(t, users, `tla   = "usr"`) ||
		!strings.Contains(te.Reason, `tla "usr" is already used by template accounts`) {
		t.Errorf("Load: %v", err)
	}
}

// An object name off the convention is a warning, located, never an error.
func TestLintObjectNames(t *testing.T) {
	users := usersTOML(t)
	src := edit(t, edit(t, users, `read   = "vw_usr"`, `read   = "vw_people"`), `delete = "sp_usr_delete"`, `delete = "sp_usr_remove"`)
	tpl, err := template.Parse("t.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	ws := tpl.Warnings()
	if len(ws) != 2 || ws[0].Line != lineOf(t, src, `read   = "vw_people"`) || !strings.Contains(ws[0].Reason, `objects.read "vw_people" does not follow the convention vw_usr`) ||
		ws[1].Line != lineOf(t, src, `delete = "sp_usr_remove"`) || !strings.Contains(ws[1].Reason, "sp_usr_delete") {
		t.Errorf("warnings %v", ws)
	}
	// The shipped folder follows the convention.
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), stores)
	if err != nil {
		t.Fatal(err)
	}
	if ws := reg.Warnings(); len(ws) != 0 {
		t.Errorf("shipped templates: warnings %v", ws)
	}
	if ws := mustParse(t, profiles).Warnings(); len(ws) != 0 {
		t.Errorf("a MongoDB template has no object names to warn of: %v", ws)
	}
}

// Load marks the fields relations join child rows on.
func TestJoined(t *testing.T) {
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), stores)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"orders.user": true, "items.order": true, "users.id": true, "profiles.user": true}
	for _, n := range reg.Names() {
		for _, f := range reg.Get(n).Fields {
			if f.Joined != want[n+"."+f.Name] {
				t.Errorf("%s.%s: Joined %v", n, f.Name, f.Joined)
			}
		}
	}
	if f := mustParse(t, usersTOML(t)).Field("id"); f.Joined {
		t.Error("Parse, which sees one file, set Joined")
	}
}

func mustParse(t *testing.T, src string) *template.Template {
	t.Helper()
	tpl, err := template.Parse("t.toml", []byte(src), stores)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// The fingerprint ignores how the file is written and changes with what
// the database objects depend on.
func TestFingerprint(t *testing.T) {
	users := usersTOML(t)
	base := mustParse(t, users).Fingerprint()
	if len(base) != 16 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q: want 16 hex digits", base)
	}
	e := func(old, new string) string { return edit(t, users, old, new) }
	same := map[string]string{
		"comments and blank lines": "# a comment\n\n" + strings.ReplaceAll(users, "\n", "\n\n"),
		"key order in a field":     e(`email   = { type = "string", required = true, max = 254, sortable = true, unique = true }`, `email = { unique = true, sortable = true, max = 254, required = true, type = "string" }`),
		"description":              e(`description = "Application accounts"`, `description = "Something else"`),
		"defaults spelt out":       e(`score   = { type = "float" }`, `score   = { type = "float", required = false, readonly = false, sortable = false, stored = "usr_score" }`),
		"another store name":       e(`store = "mariadb"`, `store = "mariadb2"`),
	}
	twoMaria := map[string]string{"mariadb": template.StoreMariaDB, "mariadb2": template.StoreMariaDB, "mongo": template.StoreMongo}
	for name, src := range same {
		tpl, err := template.Parse("t.toml", []byte(src), twoMaria)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fp := tpl.Fingerprint(); fp != base {
			t.Errorf("%s: fingerprint %s, want %s", name, fp, base)
		}
	}
	changed := map[string]string{
		"name":     e(`name  = "users"`, `name  = "people"`),
		"tla":      e(`tla   = "usr"`, `tla   = "ppl"`),
		"type":     e(`score   = { type = "float" }`, `score   = { type = "int" }`),
		"required": e(`score   = { type = "float" }`, `score   = { type = "float", required = true }`),
		"readonly": e(`score   = { type = "float" }`, `score   = { type = "float", readonly = true }`),
		"sortable": e(`score   = { type = "float" }`, `score   = { type = "float", sortable = true }`),
		"unique":   e(`score   = { type = "float" }`, `score   = { type = "float", unique = true }`),
		"stored":   e(`score   = { type = "float" }`, `score   = { type = "float", stored = "usr_points" }`),
		"max":      e(`max = 200`, `max = 201`),
		"order":    e("score   = { type = \"float\" }\nactive  = { type = \"bool\" }", "active  = { type = \"bool\" }\nscore   = { type = \"float\" }"),
		"object":   e(`read   = "vw_usr"`, `read   = "vw_users"`),
		"ops":      e(`allow = ["create", "read", "update", "delete", "count"]`, `allow = ["create", "read", "update", "delete"]`),
		"params":   users + "[params]\nupdate = [\"id\", \"email\"]\n",
	}
	seen := map[string]string{base: "base"}
	for name, src := range changed {
		fp := mustParse(t, src).Fingerprint()
		if prev, dup := seen[fp]; dup {
			t.Errorf("%s: fingerprint %s, as %s", name, fp, prev)
		}
		seen[fp] = name
	}
}
