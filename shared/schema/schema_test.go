package schema_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
)

func TestDifferenceString(t *testing.T) {
	d := schema.Difference{Template: "users", Object: "view vw_usr", Expected: "column usr_email (field email, string)", Found: "none"}
	if got, want := d.String(), "template users: view vw_usr: expected column usr_email (field email, string), found none"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want schema.Mode
		ok   bool
	}{
		{"strict", schema.Strict, true},
		{"warn", schema.Warn, true},
		{"", "", false},
		{"Strict", "", false},
		{"off", "", false},
	} {
		got, err := schema.ParseMode(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseMode(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "strict") {
			t.Errorf("ParseMode(%q): %v does not name the modes", tc.in, err)
		}
	}
}

func TestSortAndMismatch(t *testing.T) {
	ds := []schema.Difference{
		{Template: "users", Object: "view vw_usr", Expected: "b", Found: "none"},
		{Template: "orders", Object: "table tbl_ord", Expected: "x", Found: "none"},
		{Template: "users", Object: "procedure sp_usr_create", Expected: "z", Found: "none"},
		{Template: "users", Object: "view vw_usr", Expected: "a", Found: "none"},
	}
	schema.Sort(ds)
	var got []string
	for _, d := range ds {
		got = append(got, d.Template+"/"+d.Object+"/"+d.Expected)
	}
	want := []string{"orders/table tbl_ord/x", "users/procedure sp_usr_create/z", "users/view vw_usr/a", "users/view vw_usr/b"}
	if !slices.Equal(got, want) {
		t.Errorf("Sort: %v, want %v", got, want)
	}
	err := &schema.MismatchError{Store: "mariadb", Diffs: ds[:1]}
	if msg := err.Error(); !strings.HasPrefix(msg, "store mariadb disagrees with its templates in 1 place (") ||
		!strings.HasSuffix(msg, "\n  template orders: table tbl_ord: expected x, found none") || !strings.Contains(msg, `templates.check = "warn"`) {
		t.Errorf("one difference: %q", msg)
	}
	err.Diffs = ds
	if msg := err.Error(); !strings.Contains(msg, "in 4 places") || strings.Count(msg, "\n  template ") != 4 {
		t.Errorf("four differences: %q", msg)
	}
}

func shipped(t *testing.T) *template.Registry {
	t.Helper()
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestIndexes(t *testing.T) {
	reg := shipped(t)
	for _, tc := range []struct {
		template string
		want     []string
	}{
		{"users", []string{"id unique (the key)", "email unique (unique, sortable)", "name (sortable)", "age (sortable)", "created (sortable)"}},
		{"items", []string{"id unique (the key)", "order (sortable, joined)"}},
		{"profiles", []string{"id unique (the key)", "user (sortable, joined)", "handle unique (unique, sortable)"}},
	} {
		var got []string
		for _, ix := range schema.Indexes(reg.Get(tc.template)) {
			s := ix.Field.Name
			if ix.Unique {
				s += " unique"
			}
			got = append(got, s+" ("+ix.Why+")")
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.template, got, tc.want)
		}
	}
}

func TestHeader(t *testing.T) {
	users := shipped(t).Get("users")
	h := schema.Header(users, "-- ")
	for _, l := range strings.Split(strings.TrimSuffix(h, "\n"), "\n") {
		if !strings.HasPrefix(l, "-- ") || len(l) > 80 {
			t.Errorf("header line %q", l)
		}
	}
	if !strings.Contains(h, "users_rec.toml") || !strings.Contains(h, "the DBA owns this file") || !strings.Contains(h, "bedsctl schema gen") {
		t.Errorf("header:\n%s", h)
	}
	for _, src := range []string{h, "\n\n" + schema.Header(users, "// ") + "db.x.find()\n"} {
		name, fp, ok := schema.ParseHeader([]byte(src))
		if !ok || name != "users" || fp != users.Fingerprint() {
			t.Errorf("ParseHeader: %q %q %v", name, fp, ok)
		}
	}
	if _, _, ok := schema.ParseHeader([]byte("-- BEDS's own tables\nCREATE TABLE x (a INT);\n")); ok {
		t.Error("ParseHeader found a header in a file without one")
	}
}
