package mariadb

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
)

// mariaTemplates returns the shipped MariaDB templates, by name.
func mariaTemplates(t *testing.T) []*template.Template {
	t.Helper()
	reg := shipped(t)
	var out []*template.Template
	for _, n := range reg.Names() {
		if tpl := reg.Get(n); tpl.StoreKind == template.StoreMariaDB {
			out = append(out, tpl)
		}
	}
	return out
}

// generatedDB returns a fresh database holding BEDS's own tables and the
// generated objects of ts, and the store on it.
func generatedDB(t *testing.T, ts []*template.Template) (*Store, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	files := []string{filepath.Join(testenv.Root(t), "deploy", "mariadb", "000_beds.sql")}
	for _, tpl := range ts {
		src, err := GenerateSchema(tpl)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, tpl.Name+".sql")
		if err := os.WriteFile(f, src, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return openStore(t, testenv.MariaDBWith(t, files...), 4)
}

// openStore returns a store on dsn with conns connections and a pool for
// the test's own statements, both closed when the test ends.
func openStore(tb testing.TB, dsn string, conns int) (*Store, *sql.DB) {
	tb.Helper()
	s, err := Open(Config{DSN: dsn, MaxConns: conns})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return s, db
}

func checkSchema(t *testing.T, s *Store, ts []*template.Template) []schema.Difference {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	diffs, err := s.CheckSchema(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	return diffs
}

// The generated objects of every shipped template pass the check as they
// are, and each way of breaking one is reported as the difference it is.
func TestCheckFindsDifferences(t *testing.T) {
	ts := mariaTemplates(t)
	s, db := generatedDB(t, ts)
	if diffs := checkSchema(t, s, ts); len(diffs) != 0 {
		t.Fatalf("generated objects: %v", diffs)
	}
	for _, tc := range []struct {
		name  string
		alter []string
		want  []schema.Difference
	}{
		{"view lacks a column",
			[]string{"CREATE OR REPLACE VIEW vw_usr AS SELECT usr_id, usr_name, usr_age, usr_score, usr_active, usr_prefs, usr_created FROM tbl_usr"},
			[]schema.Difference{{Template: "users", Object: "view vw_usr", Expected: "column usr_email (field email, string)", Found: "none"}}},
		{"procedure takes one parameter less",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_create(IN beds_event VARCHAR(200), IN p_user BIGINT, IN p_total DOUBLE) BEGIN INSERT INTO tbl_ord (ord_user, ord_total) VALUES (p_user, p_total); CALL beds_record(beds_event, 'orders', 'create', 1, LAST_INSERT_ID()); SELECT LAST_INSERT_ID(); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_create", Expected: "4 parameters (beds_event, user, total, status)", Found: "3 (beds_event, p_user, p_total)"}}},
		{"create procedure without the event ID",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_create(IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN INSERT INTO tbl_ord (ord_user, ord_total, ord_status) VALUES (p_user, p_total, p_status); SELECT LAST_INSERT_ID(); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_create",
				Expected: "4 parameters (beds_event, user, total, status): the event ID first (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the others and record it with an INSERT into beds_events, as the create skeleton it writes does; see deploy/mariadb/000_beds.sql)",
				Found:    "3 (p_user, p_total, p_status)"}}},
		{"event ID too short",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_create(IN beds_event VARCHAR(100), IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN CALL beds_record(beds_event, 'orders', 'create', 1, NULL); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_create",
				Expected: "parameter 1 IN beds_event, a string of at least 200 characters: the event ID (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the template's parameters; see deploy/mariadb/000_beds.sql)",
				Found:    "IN beds_event varchar(100)"}}},
		{"create procedure that does not record",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_create(IN beds_event VARCHAR(200), IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN INSERT INTO tbl_ord (ord_user, ord_total, ord_status) VALUES (p_user, p_total, p_status); SELECT LAST_INSERT_ID(); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_create",
				Expected: "a body that records its event: INSERT INTO beds_events (evt_id, ...) VALUES (beds_event, ...), or CALL beds_record(beds_event, ...), after the insert, in its transaction (regenerate with bedsctl schema gen, or add the create skeleton it writes; see deploy/mariadb/000_beds.sql)",
				Found:    "a body that names neither beds_events nor beds_record"}}},
		{"update procedure of the previous convention",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN UPDATE tbl_ord SET ord_user = p_user, ord_total = p_total, ord_status = p_status WHERE ord_id = p_id; END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_update",
				Expected: "6 parameters (beds_event, beds_set, id, user, total, status): the event ID and the names of the fields the request sets first (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii and IN beds_set TEXT CHARACTER SET ascii before the others and the update skeleton it writes, which merges with FIND_IN_SET and records the event in beds_events; see docs/templates.md and deploy/mariadb/000_beds.sql)",
				Found:    "4 (p_id, p_user, p_total, p_status)"}}},
		{"update procedure without beds_set",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(200), IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN CALL beds_record(beds_event, 'orders', 'update', 1, NULL); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_update",
				Expected: "6 parameters (beds_event, beds_set, id, user, total, status): the names of the fields the request sets second (regenerate with bedsctl schema gen, or add IN beds_set TEXT CHARACTER SET ascii after beds_event and merge each column with IF(FIND_IN_SET('<field>', beds_set), p_<field>, <column>); see docs/templates.md)",
				Found:    "5 (beds_event, p_id, p_user, p_total, p_status)"}}},
		{"beds_set too short for the names",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(200), IN beds_set VARCHAR(19), IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN CALL beds_record(beds_event, 'orders', 'update', 1, NULL); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_update",
				Expected: "parameter 2 IN beds_set, a string of at least 20 characters: the names of the fields the request sets, comma-separated (regenerate with bedsctl schema gen, or declare IN beds_set TEXT CHARACTER SET ascii after beds_event; see docs/templates.md)",
				Found:    "IN beds_set varchar(19)"}}},
		{"beds_set of a type that holds no list",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(200), IN beds_set ENUM('id', 'user', 'total', 'status'), IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN CALL beds_record(beds_event, 'orders', 'update', 1, NULL); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_update",
				Expected: "parameter 2 IN beds_set, a string of at least 20 characters: the names of the fields the request sets, comma-separated (regenerate with bedsctl schema gen, or declare IN beds_set TEXT CHARACTER SET ascii after beds_event; see docs/templates.md)",
				Found:    "IN beds_set enum('id','user','total','status')"}}},
		{"update event ID too short",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(36), IN beds_set TEXT, IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN CALL beds_record(beds_event, 'orders', 'update', 1, NULL); END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_update",
				Expected: "parameter 1 IN beds_event, a string of at least 200 characters: the event ID (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before beds_set and the template's parameters; see docs/templates.md and deploy/mariadb/000_beds.sql)",
				Found:    "IN beds_event varchar(36)"}}},
		{"update procedure that does not record",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN beds_set TEXT CHARACTER SET ascii, IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN UPDATE tbl_ord SET ord_status = IF(FIND_IN_SET('status', beds_set), p_status, ord_status) WHERE ord_id = p_id; SELECT ROW_COUNT() AS beds_affected; END"},
			[]schema.Difference{{Template: "orders", Object: "procedure sp_ord_update",
				Expected: "a body that records its event: INSERT INTO beds_events (evt_id, ...) VALUES (beds_event, ...), or CALL beds_record(beds_event, ...), after the update, with the rows it matched, in its transaction (regenerate with bedsctl schema gen, or add the update skeleton it writes; see docs/templates.md and deploy/mariadb/000_beds.sql)",
				Found:    "a body that names neither beds_events nor beds_record"}}},
		{"hand-written update procedure of the convention passes",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(255) CHARACTER SET ascii, IN beds_set TINYTEXT CHARACTER SET ascii, IN p_id BIGINT, IN p_user BIGINT, IN p_total DECIMAL(12,2), IN p_status VARCHAR(20)) BEGIN DECLARE n BIGINT; SELECT COUNT(*) INTO n FROM tbl_ord WHERE ord_id = p_id FOR UPDATE; UPDATE tbl_ord SET ord_total = IF(FIND_IN_SET('total', beds_set), p_total, ord_total) WHERE ord_id = p_id; IF beds_event IS NOT NULL AND n > 0 THEN CALL beds_record(beds_event, 'orders', 'update', n, NULL); END IF; SELECT n AS beds_affected; END"},
			nil},
		{"delete procedure of the previous convention",
			[]string{"CREATE OR REPLACE PROCEDURE sp_itm_delete(IN p_id BIGINT) BEGIN DELETE FROM tbl_itm WHERE itm_id = p_id; END"},
			[]schema.Difference{{Template: "items", Object: "procedure sp_itm_delete",
				Expected: "2 parameters (beds_event, id): the event ID first (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the others and the delete skeleton it writes, which records the event in beds_events and answers the rows it deleted; see docs/templates.md and deploy/mariadb/000_beds.sql)",
				Found:    "1 (p_id)"}}},
		{"delete event ID too short",
			[]string{"CREATE OR REPLACE PROCEDURE sp_itm_delete(IN beds_event VARCHAR(199), IN p_id BIGINT) BEGIN CALL beds_record(beds_event, 'items', 'delete', 1, NULL); END"},
			[]schema.Difference{{Template: "items", Object: "procedure sp_itm_delete",
				Expected: "parameter 1 IN beds_event, a string of at least 200 characters: the event ID (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the template's parameters; see docs/templates.md and deploy/mariadb/000_beds.sql)",
				Found:    "IN beds_event varchar(199)"}}},
		{"delete procedure that does not record",
			[]string{"CREATE OR REPLACE PROCEDURE sp_itm_delete(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_id BIGINT) BEGIN DELETE FROM tbl_itm WHERE itm_id = p_id; SELECT ROW_COUNT() AS beds_affected; END"},
			[]schema.Difference{{Template: "items", Object: "procedure sp_itm_delete",
				Expected: "a body that records its event: INSERT INTO beds_events (evt_id, ...) VALUES (beds_event, ...), or CALL beds_record(beds_event, ...), after the delete, with the rows it deleted, in its transaction (regenerate with bedsctl schema gen, or add the delete skeleton it writes; see docs/templates.md and deploy/mariadb/000_beds.sql)",
				Found:    "a body that names neither beds_events nor beds_record"}}},
		{"hand-written delete procedure of the convention passes",
			[]string{"CREATE OR REPLACE PROCEDURE sp_itm_delete(IN beds_event TEXT CHARACTER SET ascii, IN p_id INT) BEGIN DECLARE n BIGINT; DELETE FROM tbl_itm WHERE itm_id = p_id; SET n = ROW_COUNT(); IF beds_event IS NOT NULL AND n > 0 THEN CALL beds_record(beds_event, 'items', 'delete', n, NULL); END IF; SELECT n AS beds_affected; END"},
			nil},
		{"beds_record missing, no procedure calls it",
			[]string{"DROP PROCEDURE beds_record"},
			nil},
		{"beds_record missing, a procedure calls it",
			[]string{"DROP PROCEDURE beds_record",
				"CREATE OR REPLACE PROCEDURE sp_itm_delete(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_id BIGINT) BEGIN DECLARE n BIGINT; DELETE FROM tbl_itm WHERE itm_id = p_id; SET n = ROW_COUNT(); IF beds_event IS NOT NULL AND n > 0 THEN CALL beds_record(beds_event, 'items', 'delete', n, NULL); END IF; SELECT n AS beds_affected; END"},
			[]schema.Difference{{Template: "items", Object: "procedure beds_record",
				Expected: "BEDS's procedure that records a create's, an update's or a delete's event, which procedure sp_itm_delete calls (apply deploy/mariadb/000_beds.sql to this database)",
				Found:    "none"}}},
		{"hand-written update procedure that inserts its record passes",
			[]string{"CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN beds_set TEXT CHARACTER SET ascii, IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN DECLARE n BIGINT; SELECT COUNT(*) INTO n FROM tbl_ord WHERE ord_id = p_id FOR UPDATE; UPDATE tbl_ord SET ord_total = IF(FIND_IN_SET('total', beds_set), p_total, ord_total) WHERE ord_id = p_id; IF beds_event IS NOT NULL AND n > 0 THEN INSERT INTO beds_events (evt_id, evt_template, evt_op, evt_affected) VALUES (beds_event, 'orders', 'update', n); END IF; SELECT n AS beds_affected; END"},
			nil},
		{"procedure missing",
			[]string{"DROP PROCEDURE sp_itm_delete"},
			[]schema.Difference{{Template: "items", Object: "procedure sp_itm_delete", Expected: "a procedure taking 2 parameters (beds_event, id)", Found: "none"}}},
		{"view missing",
			[]string{"DROP VIEW vw_itm"},
			[]schema.Difference{{Template: "items", Object: "view vw_itm", Expected: "a view with a column for each of the 5 fields", Found: "none"}}},
		{"parameter of another type",
			[]string{"CREATE OR REPLACE PROCEDURE sp_itm_delete(IN beds_event VARCHAR(200), IN p_id DATETIME) BEGIN CALL beds_record(beds_event, 'items', 'delete', 1, NULL); END"},
			[]schema.Difference{{Template: "items", Object: "procedure sp_itm_delete", Expected: "parameter 2 of an integer type (field id, int)", Found: "p_id datetime"}}},
		{"parameter OUT",
			[]string{"CREATE OR REPLACE PROCEDURE sp_itm_delete(IN beds_event VARCHAR(200), OUT p_id BIGINT) BEGIN CALL beds_record(beds_event, 'items', 'delete', 1, NULL); END"},
			[]schema.Difference{{Template: "items", Object: "procedure sp_itm_delete", Expected: "parameter 2 (field id) IN", Found: "OUT p_id"}}},
		{"parameter too short for max",
			[]string{"CREATE OR REPLACE PROCEDURE sp_exm_delete(IN beds_event VARCHAR(200), IN p_code VARCHAR(10)) BEGIN CALL beds_record(beds_event, 'example', 'delete', 1, NULL); END"},
			[]schema.Difference{{Template: "example", Object: "procedure sp_exm_delete", Expected: "parameter 2 holding 32 characters (field code, max 32)", Found: "p_code varchar(10)"}}},
		{"column of another type",
			[]string{"ALTER TABLE tbl_itm MODIFY itm_sku DATETIME NULL"},
			[]schema.Difference{{Template: "items", Object: "view vw_itm", Expected: "column itm_sku of a string type (char, varchar, text) (field sku, string)", Found: "column itm_sku datetime"}}},
		{"column too short for max",
			[]string{"ALTER TABLE tbl_itm MODIFY itm_sku VARCHAR(10) NOT NULL"},
			[]schema.Difference{{Template: "items", Object: "view vw_itm", Expected: "column itm_sku holding 64 characters (field sku, max 64)", Found: "column itm_sku varchar(10)"}}},
		{"sortable field without index",
			[]string{"ALTER TABLE tbl_ord DROP INDEX ix_ord_placed"},
			[]schema.Difference{{Template: "orders", Object: "table tbl_ord", Expected: "an index starting with ord_placed (field placed: sortable)", Found: "none"}}},
		{"unique field with a plain index",
			[]string{"ALTER TABLE tbl_usr DROP INDEX uq_usr_email, ADD INDEX ix_usr_email (usr_email)"},
			[]schema.Difference{{Template: "users", Object: "table tbl_usr", Expected: "a unique index on usr_email alone (field email: unique, sortable)", Found: "ix_usr_email (not unique)"}}},
		{"joined field without index",
			[]string{"ALTER TABLE tbl_itm DROP INDEX ix_itm_order"},
			[]schema.Difference{{Template: "items", Object: "table tbl_itm", Expected: "an index starting with itm_order (field order: sortable, joined)", Found: "none"}}},
		{"index through a view on a view",
			[]string{"ALTER TABLE tbl_ord DROP INDEX ix_ord_placed", "CREATE OR REPLACE VIEW vw_ord_base AS SELECT * FROM tbl_ord", "CREATE OR REPLACE VIEW vw_ord AS SELECT ord_id, ord_user, ord_total, ord_status, ord_placed FROM vw_ord_base"},
			[]schema.Difference{{Template: "orders", Object: "table tbl_ord", Expected: "an index starting with ord_placed (field placed: sortable)", Found: "none"}}},
		{"index through a view with aliases",
			[]string{"ALTER TABLE tbl_ord DROP INDEX ix_ord_placed", "CREATE OR REPLACE VIEW vw_ord AS SELECT o.ord_id, o.ord_user, o.ord_total, o.ord_status, o.ord_placed FROM tbl_ord o JOIN tbl_ord p ON p.ord_id = o.ord_id"},
			[]schema.Difference{{Template: "orders", Object: "table tbl_ord", Expected: "an index starting with ord_placed (field placed: sortable)", Found: "none"}}},
		{"computed column: its index is not checked",
			[]string{"ALTER TABLE tbl_ord DROP INDEX ix_ord_placed", "CREATE OR REPLACE VIEW vw_ord AS SELECT ord_id, ord_user, ord_total, ord_status, COALESCE(ord_placed, NOW(6)) AS ord_placed FROM tbl_ord"},
			nil},
		{"table without transactions",
			[]string{"ALTER TABLE tbl_exm ENGINE=MyISAM"},
			[]schema.Difference{{Template: "example", Object: "table tbl_exm", Expected: "a transactional engine, InnoDB (BEDS applies each write once, in a transaction with its event record)", Found: "engine MyISAM"}}},
		{"hand edits that keep the convention pass",
			[]string{"ALTER TABLE tbl_exm MODIFY exm_price DECIMAL(12,2) NULL, MODIFY exm_qty INT NOT NULL DEFAULT 0",
				"CREATE OR REPLACE PROCEDURE sp_exm_delete(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_code VARCHAR(64)) BEGIN IF p_code = 'keep' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kept'; END IF; DELETE FROM tbl_exm WHERE exm_code = p_code; IF beds_event IS NOT NULL AND ROW_COUNT() > 0 THEN CALL beds_record(beds_event, 'example', 'delete', 1, NULL); END IF; SELECT 1 AS beds_affected; END"},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := s, db
			if tc.name != "view lacks a column" { // each case on objects of its own
				s, db = generatedDB(t, ts)
			}
			for _, stmt := range tc.alter {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			got := checkSchema(t, s, ts)
			if !slices.Equal(got, tc.want) {
				t.Errorf("differences:\n%v\nwant:\n%v", got, tc.want)
			}
		})
	}
}

// A template that updates or deletes but does not create records its
// events too: its generated procedure inserts the record itself and needs
// no beds_record, and one that calls beds_record needs it.
func TestCheckNeedsRecord(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace [][2]string // in orders_rec.toml
		calls   string      // a procedure of the convention that calls beds_record
		proc    string
	}{
		{"update only", [][2]string{
			{`allow = ["create", "read", "update", "delete", "count"]`, `allow = ["read", "update", "count"]`},
			{`create = ["member"]`, ``},
		}, "CREATE OR REPLACE PROCEDURE sp_ord_update(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN beds_set TEXT CHARACTER SET ascii, IN p_id BIGINT, IN p_user BIGINT, IN p_total DOUBLE, IN p_status VARCHAR(20)) BEGIN DECLARE n BIGINT; SELECT COUNT(*) INTO n FROM tbl_ord WHERE ord_id = p_id FOR UPDATE; UPDATE tbl_ord SET ord_total = IF(FIND_IN_SET('total', beds_set), p_total, ord_total) WHERE ord_id = p_id; IF beds_event IS NOT NULL AND n > 0 THEN CALL beds_record(beds_event, 'orders', 'update', n, NULL); END IF; SELECT n AS beds_affected; END",
			"sp_ord_update"},
		{"delete only", [][2]string{
			{`allow = ["create", "read", "update", "delete", "count"]`, `allow = ["read", "delete", "count"]`},
			{`create = ["member"]`, ``},
			{`update = ["member"]`, ``},
		}, "CREATE OR REPLACE PROCEDURE sp_ord_delete(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_id BIGINT) BEGIN DECLARE n BIGINT; DELETE FROM tbl_ord WHERE ord_id = p_id; SET n = ROW_COUNT(); IF beds_event IS NOT NULL AND n > 0 THEN CALL beds_record(beds_event, 'orders', 'delete', n, NULL); END IF; SELECT n AS beds_affected; END",
			"sp_ord_delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testenv.TemplateFile(t, "orders_rec.toml")
			for _, r := range tc.replace {
				if !strings.Contains(src, r[0]) {
					t.Fatalf("orders_rec.toml lacks %q", r[0])
				}
				src = strings.Replace(src, r[0], r[1], 1)
			}
			tpl, err := template.Parse("orders_rec.toml", []byte(src), map[string]string{"mariadb": template.StoreMariaDB})
			if err != nil {
				t.Fatal(err)
			}
			ts := []*template.Template{tpl}
			s, db := generatedDB(t, ts)
			if diffs := checkSchema(t, s, ts); len(diffs) != 0 {
				t.Fatalf("generated objects: %v", diffs)
			}
			if _, err := db.Exec("DROP PROCEDURE beds_record"); err != nil {
				t.Fatal(err)
			}
			if diffs := checkSchema(t, s, ts); len(diffs) != 0 {
				t.Fatalf("generated objects without beds_record: %v", diffs)
			}
			if _, err := db.Exec(tc.calls); err != nil {
				t.Fatal(err)
			}
			want := []schema.Difference{{Template: "orders", Object: "procedure beds_record",
				Expected: "BEDS's procedure that records a create's, an update's or a delete's event, which procedure " + tc.proc + " calls (apply deploy/mariadb/000_beds.sql to this database)",
				Found:    "none"}}
			if got := checkSchema(t, s, ts); !slices.Equal(got, want) {
				t.Errorf("differences:\n%v\nwant:\n%v", got, want)
			}
		})
	}
}

// The check reads what the templates name, whatever else the database
// holds, and a template of another store kind is not its business.
func TestCheckScope(t *testing.T) {
	reg := shipped(t)
	users := reg.Get("users")
	s, db := generatedDB(t, []*template.Template{users})
	if _, err := db.Exec("CREATE TABLE unrelated (x INT)"); err != nil {
		t.Fatal(err)
	}
	if diffs := checkSchema(t, s, []*template.Template{users, reg.Get("profiles")}); len(diffs) != 0 {
		t.Errorf("differences %v", diffs)
	}
	diffs := checkSchema(t, s, []*template.Template{reg.Get("orders")})
	if len(diffs) != 4 || diffs[0].Object != "procedure sp_ord_create" || diffs[3].Object != "view vw_ord" {
		t.Errorf("orders without its objects: %v", diffs)
	}
}
