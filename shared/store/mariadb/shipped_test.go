package mariadb

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// shipped loads the repository's template folder.
func shipped(t *testing.T) *template.Registry {
	t.Helper()
	r, err := template.Load(filepath.Join(testenv.Root(t), "templates"),
		map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Every shipped MariaDB template reads and counts through the view that
// deploy/mariadb/*.sql creates for it, every field of it: a column the
// view lacks or misnames fails here, not in a caller's read.
func TestShippedViews(t *testing.T) {
	reg := shipped(t)
	s, err := Open(Config{DSN: testenv.MariaDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range reg.Names() {
		tpl := reg.Get(name)
		if tpl.StoreKind != template.StoreMariaDB {
			continue
		}
		for _, body := range []string{
			`{"template":"` + name + `","op":"read","limit":1}`,
			`{"template":"` + name + `","op":"count"}`,
		} {
			if _, err := run(t, s, tpl, body); err != nil {
				t.Errorf("%s: %v", body, err)
			}
		}
	}
}

// The orders and items domains behind the shipped relations: their
// procedures take the default parameter lists, and the child rows of an
// order are selected by one in query on the join field, as include does.
func TestShippedOrderDomains(t *testing.T) {
	reg := shipped(t)
	orders, items := reg.Get("orders"), reg.Get("items")
	s, err := Open(Config{DSN: testenv.MariaDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must := func(tpl *template.Template, body string) []wire.Row {
		t.Helper()
		res, err := run(t, s, tpl, body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return res.Rows
	}
	for _, body := range []string{
		`{"template":"orders","op":"create","data":{"user":7,"total":12.5,"status":"new"}}`,
		`{"template":"orders","op":"create","data":{"user":8,"total":3}}`,
	} {
		must(orders, body)
	}
	for _, body := range []string{
		`{"template":"items","op":"create","data":{"order":1,"sku":"A-1","qty":2,"price":5}}`,
		`{"template":"items","op":"create","data":{"order":1,"sku":"B-2","qty":1,"price":2.5}}`,
		`{"template":"items","op":"create","data":{"order":2,"sku":"C-3","qty":3,"price":1}}`,
	} {
		must(items, body)
	}
	rows := must(items, `{"template":"items","op":"read","filter":{"order":{"in":[1,2]}},"sort":["order","id"]}`)
	if len(rows) != 3 || rows[0]["order"] != int64(1) || rows[0]["sku"] != "A-1" || rows[0]["price"] != 5.0 || rows[2]["order"] != int64(2) {
		t.Errorf("items of orders 1 and 2: %v", rows)
	}
	must(orders, `{"template":"orders","op":"update","filter":{"id":1},"data":{"status":"paid"}}`)
	rows = must(orders, `{"template":"orders","op":"read","filter":{"user":{"in":[7]}},"sort":["-placed"]}`)
	if len(rows) != 1 || rows[0]["status"] != "paid" || rows[0]["total"] != 12.5 || rows[0]["user"] != int64(7) || rows[0]["placed"] == nil {
		t.Errorf("orders of user 7: %v", rows)
	}
	must(items, `{"template":"items","op":"update","filter":{"sku":"C-3"},"data":{"qty":4}}`)
	must(items, `{"template":"items","op":"delete","filter":{"order":1}}`)
	must(orders, `{"template":"orders","op":"delete","filter":{"id":1}}`)
	rows = must(items, `{"template":"items","op":"read"}`)
	if len(rows) != 1 || rows[0]["qty"] != int64(4) {
		t.Errorf("items left: %v", rows)
	}
	if rows = must(orders, `{"template":"orders","op":"read"}`); len(rows) != 1 || rows[0]["id"] != int64(2) {
		t.Errorf("orders left: %v", rows)
	}
}

// terceroTemplates loads the templates the tercero role embeds
// (services/tercero/templates), whose objects deploy/mariadb ships too.
func terceroTemplates(t *testing.T) *template.Registry {
	t.Helper()
	r, err := template.Load(filepath.Join(testenv.Root(t), "services", "tercero", "templates"),
		map[string]string{"mariadb": template.StoreMariaDB, "mongo": template.StoreMongo})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// generatedHeaders returns the headers of the generated scripts src holds,
// one file possibly holding several (005_tercero.sql): template name ->
// fingerprint.
func generatedHeaders(src []byte) map[string]string {
	out := map[string]string{}
	for len(src) > 0 {
		name, fp, ok := schema.ParseHeader(src)
		if !ok {
			break
		}
		out[name] = fp
		i := bytes.Index(src, []byte("fingerprint "+fp))
		src = src[i+len("fingerprint ")+len(fp):]
	}
	return out
}

// The checked-in objects (deploy/mariadb/*.sql, hand edits included) agree
// with every shipped MariaDB template, the template folder's and the ones
// tercero embeds, and each script was generated from the template as it
// is now: a template changed without its objects, or objects changed
// against their template, fail here, in CI.
func TestCheckShipped(t *testing.T) {
	ts := mariaTemplates(t)
	own := terceroTemplates(t)
	for _, n := range own.Names() {
		ts = append(ts, own.Get(n))
	}
	s, err := Open(Config{DSN: testenv.MariaDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range checkSchema(t, s, ts) {
		t.Errorf("deploy/mariadb disagrees with the templates: %s", d)
	}

	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), "deploy", "mariadb", "*.sql"))
	headers := map[string]string{} // template -> file
	reg := shipped(t)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// A file without a header holds BEDS's own tables (000_beds.sql).
		for name, fp := range generatedHeaders(src) {
			tpl := reg.Get(name)
			if tpl == nil {
				tpl = own.Get(name)
			}
			switch {
			case tpl == nil:
				t.Errorf("%s: generated for template %s, which is not shipped", f, name)
			case fp != tpl.Fingerprint():
				t.Errorf("%s: generated from another version of template %s (fingerprint %s, now %s): run bedsctl schema gen %s, review the difference and apply it", f, name, fp, tpl.Fingerprint(), name)
			}
			headers[name] = f
		}
	}
	for _, tpl := range ts {
		if headers[tpl.Name] == "" {
			t.Errorf("template %s: no deploy/mariadb file generated for it (bedsctl schema gen --out deploy %s)", tpl.Name, tpl.Name)
		}
	}
}
