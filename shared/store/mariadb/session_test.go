package mariadb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// TestWriteSession runs the write path both ways a pool can send it: the
// statements of a write joined in two round trips (values bound client
// side, the default), and one by one (interpolateParams=false). On one
// connection, so a transaction left open would show.
func TestWriteSession(t *testing.T) {
	for _, mode := range []struct{ name, param string }{{"joined", ""}, {"one by one", "?interpolateParams=false"}} {
		t.Run(mode.name, func(t *testing.T) {
			dsn := testenv.MariaDB(t) + mode.param
			s, err := Open(Config{DSN: dsn, MaxConns: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.multi != (mode.param == "") {
				t.Fatalf("multi %v", s.multi)
			}
			writeSession(t, s, dsn)
		})
	}
}

func writeSession(t *testing.T, s *Store, dsn string) {
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), map[string]string{"mariadb": "mariadb", "mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exec := func(event, body string) (*store.Result, error) {
		t.Helper()
		req, err := wire.DecodeRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Build(reg.Get(req.Template), event, req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return s.Exec(ctx, q)
	}
	code := func(err error) wire.Code {
		var we *wire.Error
		if errors.As(err, &we) {
			return we.Code
		}
		return ""
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recorded := func(event string) int64 {
		t.Helper()
		return scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_id = ?", event)
	}

	first, err := exec("w-1", `{"template":"users","op":"create","data":{"email":"s1@example.com"}}`)
	if err != nil || first.Key == nil || first.Replayed {
		t.Fatalf("create: %+v, %v", first, err)
	}
	again, err := exec("w-1", `{"template":"users","op":"create","data":{"email":"s1@example.com"}}`)
	if err != nil || !again.Replayed || again.Key != first.Key {
		t.Fatalf("resent create: %+v, %v", again, err)
	}
	outside(t, s)

	// A duplicate in the write itself, not in the event: conflict, and
	// nothing recorded. The example's key is the caller's, so it can even
	// equal the event ID.
	if _, err := exec("w-2", `{"template":"users","op":"create","data":{"email":"s1@example.com"}}`); code(err) != wire.CodeConflict || recorded("w-2") != 0 {
		t.Fatalf("duplicate email: %v (recorded %d)", err, recorded("w-2"))
	}
	if _, err := exec("w-3", `{"template":"example","op":"create","data":{"code":"K-1","title":"a"}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := exec("K-1", `{"template":"example","op":"create","data":{"code":"K-1","title":"b"}}`); code(err) != wire.CodeConflict || recorded("K-1") != 0 {
		t.Fatalf("duplicate key equal to the event ID: %v", err)
	}
	outside(t, s)

	// An update of three records: their CALLs, the record and the commit
	// go together; sent again, it is answered from its record.
	for _, e := range []string{"s2", "s3", "s4"} {
		if _, err := exec("c-"+e, `{"template":"example","op":"create","data":{"code":"`+e+`","title":"t","qty":1}}`); err != nil {
			t.Fatal(err)
		}
	}
	up, err := exec("w-4", `{"template":"example","op":"update","filter":{"code":{"in":["s2","s3","s4"]}},"data":{"qty":5}}`)
	if err != nil || up.Affected != 3 {
		t.Fatalf("update: %+v, %v", up, err)
	}
	var qty int
	if err := db.QueryRow("SELECT SUM(exm_qty) FROM tbl_exm WHERE exm_code IN ('s2','s3','s4')").Scan(&qty); err != nil || qty != 15 {
		t.Fatalf("qty %d, %v", qty, err)
	}
	if up, err := exec("w-4", `{"template":"example","op":"update","filter":{"code":{"in":["s2","s3","s4"]}},"data":{"qty":5}}`); err != nil || !up.Replayed || up.Affected != 3 {
		t.Fatalf("resent update: %+v, %v", up, err)
	}
	// The procedure refuses in the second round trip: nothing changes.
	if _, err := exec("w-5", `{"template":"example","op":"update","filter":{"code":{"in":["s2","s3"]}},"data":{"qty":-1}}`); code(err) != wire.CodeBadValue || recorded("w-5") != 0 {
		t.Fatalf("refused update: %v", err)
	}
	if err := db.QueryRow("SELECT SUM(exm_qty) FROM tbl_exm WHERE exm_code IN ('s2','s3','s4')").Scan(&qty); err != nil || qty != 15 {
		t.Fatalf("qty %d after a refused update, %v", qty, err)
	}
	outside(t, s)

	// A batch: the third write fails, nothing applies; then it succeeds,
	// and sent again it is answered from its records.
	build := func(event, body string) *store.Query {
		req, _ := wire.DecodeRequest([]byte(body))
		q, err := store.Build(reg.Get(req.Template), event, req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	batch := func(bad bool) []*store.Query {
		third := `{"template":"users","op":"create","data":{"email":"b3@example.com"}}`
		if bad {
			third = `{"template":"users","op":"create","data":{"email":"s1@example.com"}}`
		}
		return []*store.Query{
			build("b.1", `{"template":"users","op":"create","data":{"email":"b1@example.com"}}`),
			build("b.2", `{"template":"example","op":"delete","filter":{"code":"s4"}}`),
			build("b.3", third),
		}
	}
	_, err = s.ExecBatch(ctx, "b", batch(true))
	var be *store.BatchError
	if !errors.As(err, &be) || be.Index != 2 || code(err) != wire.CodeConflict || recorded("b") != 0 || recorded("b.1") != 0 {
		t.Fatalf("failing batch: %v", err)
	}
	outside(t, s)
	res, err := s.ExecBatch(ctx, "b", batch(false))
	if err != nil || len(res) != 3 || res[0].Key == nil || res[1].Affected != 1 {
		t.Fatalf("batch: %+v, %v", res, err)
	}
	res2, err := s.ExecBatch(ctx, "b", batch(false))
	if err != nil || !res2[0].Replayed || res2[0].Key != res[0].Key || res2[2].Key != res[2].Key {
		t.Fatalf("resent batch: %+v, %v", res2, err)
	}
	// A batch whose second write reuses an event another request recorded.
	_, err = s.ExecBatch(ctx, "b2", []*store.Query{
		build("b2.1", `{"template":"users","op":"create","data":{"email":"c1@example.com"}}`),
		build("w-1", `{"template":"users","op":"create","data":{"email":"c2@example.com"}}`),
	})
	if !errors.As(err, &be) || be.Index != 1 || code(err) != wire.CodeConflict || recorded("b2") != 0 {
		t.Fatalf("batch reusing an event: %v", err)
	}
	outside(t, s)
}

// TestTwinCreates delivers one create eight times at once, on a template
// with no unique field: every CALL can insert its row, and all but one
// must roll back at the event's record. One row stays, every answer has
// its key.
func TestTwinCreates(t *testing.T) {
	dsn := testenv.MariaDB(t)
	s, err := Open(Config{DSN: dsn, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), map[string]string{"mariadb": "mariadb", "mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := wire.DecodeRequest([]byte(`{"template":"orders","op":"create","data":{"user":1,"total":7}}`))
	if err != nil {
		t.Fatal(err)
	}
	q, err := store.Build(reg.Get("orders"), "twin", req, store.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	keys := make(chan any, 8)
	for range 8 {
		go func() {
			res, err := s.Exec(context.Background(), q)
			if err != nil {
				t.Error(err)
				keys <- nil
				return
			}
			keys <- res.Key
		}()
	}
	first := <-keys
	for range 7 {
		if k := <-keys; k != first {
			t.Errorf("key %v, want %v", k, first)
		}
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM tbl_ord").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d orders, want 1 (%v)", n, err)
	}
}

// uuidTemplate's key is a UUID() its create procedure makes.
const uuidTemplate = `name = "tokens"
tla = "tok"
kind = "rec"
store = "mariadb"

[fields]
id   = { type = "string", key = true, max = 36 }
note = { type = "string", max = 40 }

[objects]
read   = "vw_tok"
create = "sp_tok_create"

[ops]
allow = ["create", "read", "count"]
`

// TestCreateRecordsItself: a create is one CALL whose procedure records
// its event in its own transaction. Sent again it is answered Replayed
// with the first key, for a key the database makes (int, UUID) and one
// the caller names (string). A procedure that fails after its insert (its
// event was recorded by another template's write) leaves no row and no
// transaction on the store's one connection, and so does one that ends
// inside its transaction without rolling back (as one stopped by its time
// limit or killed may, before its handler runs).
func TestCreateRecordsItself(t *testing.T) {
	dsn := testenv.MariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tokens, err := template.Parse("tokens_rec.toml", []byte(uuidTemplate), map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	ddl, err := GenerateSchema(tokens)
	if err != nil {
		t.Fatal(err)
	}
	tokensSQL := filepath.Join(t.TempDir(), "tokens.sql")
	if err := os.WriteFile(tokensSQL, ddl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testenv.ApplySQL(ctx, dsn, tokensSQL); err != nil {
		t.Fatal(err)
	}
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), map[string]string{"mariadb": "mariadb", "mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	broken, s, db := openWithBroken(ctx, t, dsn)
	tpls := map[string]*template.Template{"users": reg.Get("users"), "example": reg.Get("example"), "tokens": tokens, "broken": broken}
	exec := func(ctx context.Context, event, body string) (*store.Result, error) {
		t.Helper()
		req, err := wire.DecodeRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Build(tpls[req.Template], event, req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return s.Exec(ctx, q)
	}

	for _, tc := range []struct {
		name, body, rows string
		key              func(any) bool
	}{
		{"int key", `{"template":"users","op":"create","data":{"email":"r1@example.com"}}`, "SELECT COUNT(*) FROM tbl_usr WHERE usr_email = 'r1@example.com'",
			func(k any) bool { _, ok := k.(int64); return ok }},
		{"caller's string key", `{"template":"example","op":"create","data":{"code":"R-1","title":"t"}}`, "SELECT COUNT(*) FROM tbl_exm WHERE exm_code = 'R-1'",
			func(k any) bool { return k == "R-1" }},
		{"uuid key", `{"template":"tokens","op":"create","data":{"note":"r1"}}`, "SELECT COUNT(*) FROM tbl_tok WHERE tok_note = 'r1'",
			func(k any) bool { s, ok := k.(string); return ok && len(s) == 36 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			event := "rec-" + tc.name
			first, err := exec(ctx, event, tc.body)
			if err != nil || first.Replayed || first.Affected != 1 || !tc.key(first.Key) {
				t.Fatalf("create: %+v, %v", first, err)
			}
			var tmpl, op, key string
			if err := db.QueryRow("SELECT evt_template, evt_op, evt_key FROM beds_events WHERE evt_id = ?", event).Scan(&tmpl, &op, &key); err != nil {
				t.Fatal(err)
			}
			if want, _ := json.Marshal(first.Key); tmpl != tpls[tmpl].Name || op != "create" || key != string(want) {
				t.Errorf("recorded %s %s %s, want the key as %s", tmpl, op, key, want)
			}
			again, err := exec(ctx, event, tc.body)
			if err != nil || !again.Replayed || again.Affected != 1 || again.Key != first.Key {
				t.Fatalf("redelivered create: %+v, %v; first %+v", again, err, first)
			}
			if n := scalar(t, db, tc.rows); n != 1 {
				t.Errorf("%d rows, want 1", n)
			}
			outside(t, s)
		})
	}

	// The event was recorded by the users create: the example's and the
	// token's procedures insert their row, fail at beds_record and roll
	// it back; the answer is a conflict.
	for _, body := range []string{
		`{"template":"example","op":"create","data":{"code":"R-2","title":"t"}}`,
		`{"template":"tokens","op":"create","data":{"note":"r2"}}`,
	} {
		_, err := exec(ctx, "rec-int key", body)
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeConflict {
			t.Errorf("%s under a used event: %v, want conflict", body, err)
		}
		outside(t, s)
	}
	if n := scalar(t, db, "SELECT COUNT(*) FROM tbl_exm WHERE exm_code = 'R-2'") + scalar(t, db, "SELECT COUNT(*) FROM tbl_tok WHERE tok_note = 'r2'"); n != 0 {
		t.Errorf("%d rows of failed creates, want 0", n)
	}

	// A procedure that fails inside the transaction it began, without a
	// handler: the adapter's ROLLBACK undoes its insert.
	_, err = exec(ctx, "rec-broken", `{"template":"broken","op":"create","data":{"n":1}}`)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeBadValue {
		t.Errorf("broken create: %v, want bad_value", err)
	}
	outside(t, s)
	if n := scalar(t, db, "SELECT COUNT(*) FROM tbl_brk"); n != 0 {
		t.Errorf("%d rows of the broken create, want 0", n)
	}
	// A NULL event records nothing (a DBA's call by hand, the baseline).
	if _, err := db.Exec("CALL sp_usr_create(NULL, 'r3@example.com', NULL, NULL, NULL, NULL, NULL)"); err != nil {
		t.Fatal(err)
	}
	if n := scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_template = 'users'"); n != 1 {
		t.Errorf("%d records of users creates, want 1", n)
	}
}

// TestChangeRecordsItself: an update or delete by key is one CALL whose
// procedure writes (an update merges the request's data into the row,
// beds_set) and records its event in its own transaction, or in a
// batch's. Sent again it is answered Replayed and changes nothing; a key
// that matches no row is not_found and records nothing; an event another
// write recorded is a conflict and the row keeps its values; a procedure
// that answers no row count (the former convention) fails with what to
// do. Both ways a pool sends statements: text with values bound client
// side, and prepared (the count arrives as an int64 there, as text here).
func TestChangeRecordsItself(t *testing.T) {
	for _, mode := range []struct{ name, param string }{{"joined", ""}, {"one by one", "?interpolateParams=false"}} {
		t.Run(mode.name, func(t *testing.T) { changeRecordsItself(t, testenv.MariaDB(t)+mode.param) })
	}
}

func changeRecordsItself(t *testing.T, dsn string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), map[string]string{"mariadb": "mariadb", "mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	broken, s, db := openWithBroken(ctx, t, dsn)
	build := func(event, body string) *store.Query {
		t.Helper()
		req, err := wire.DecodeRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		tpl := reg.Get(req.Template)
		if req.Template == "broken" {
			tpl = broken
		}
		q, err := store.Build(tpl, event, req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	exec := func(event, body string) (*store.Result, error) {
		t.Helper()
		return s.Exec(ctx, build(event, body))
	}
	code := func(err error) wire.Code {
		var we *wire.Error
		if errors.As(err, &we) {
			return we.Code
		}
		return ""
	}
	row := func(id any) string {
		t.Helper()
		var email, name, age sql.NullString
		if err := db.QueryRow("SELECT usr_email, usr_name, usr_age FROM tbl_usr WHERE usr_id = ?", id).Scan(&email, &name, &age); err != nil {
			t.Fatal(err)
		}
		return email.String + "|" + name.String + "|" + age.String
	}

	made, err := exec("u-c", `{"template":"users","op":"create","data":{"email":"u1@example.com","name":"one","age":30}}`)
	if err != nil {
		t.Fatal(err)
	}
	id := made.Key
	body := func(data string) string {
		b, _ := json.Marshal(id)
		return `{"template":"users","op":"update","filter":{"id":` + string(b) + `},"data":` + data + `}`
	}

	// Only the fields the request sets change; null sets NULL.
	for _, tc := range []struct{ event, data, want string }{
		{"u-1", `{"name":"two"}`, "u1@example.com|two|30"},
		{"u-2", `{"age":null}`, "u1@example.com|two|"},
		{"u-3", `{"name":"three","age":31}`, "u1@example.com|three|31"},
	} {
		res, err := exec(tc.event, body(tc.data))
		if err != nil || res.Replayed || res.Affected != 1 {
			t.Fatalf("update %s: %+v, %v", tc.data, res, err)
		}
		if got := row(id); got != tc.want {
			t.Errorf("after update %s the row is %s, want %s", tc.data, got, tc.want)
		}
		var op string
		var affected int64
		var key sql.NullString
		if err := db.QueryRow("SELECT evt_op, evt_affected, evt_key FROM beds_events WHERE evt_id = ?", tc.event).Scan(&op, &affected, &key); err != nil {
			t.Fatal(err)
		}
		if op != "update" || affected != 1 || key.Valid {
			t.Errorf("recorded %s %d %v, want update 1 NULL", op, affected, key)
		}
		outside(t, s)
	}

	// Sent again after the row changed by other means: answered from the
	// record, the row keeps what it holds now.
	if _, err := db.Exec("UPDATE tbl_usr SET usr_name = 'by hand' WHERE usr_id = ?", id); err != nil {
		t.Fatal(err)
	}
	again, err := exec("u-1", body(`{"name":"two"}`))
	if err != nil || !again.Replayed || again.Affected != 1 {
		t.Fatalf("redelivered update: %+v, %v", again, err)
	}
	if got := row(id); got != "u1@example.com|by hand|31" {
		t.Errorf("a redelivered update changed the row: %s", got)
	}
	outside(t, s)

	// No row of the key: not_found, nothing recorded.
	if _, err := exec("u-4", `{"template":"users","op":"update","filter":{"id":987654321},"data":{"name":"x"}}`); code(err) != wire.CodeNotFound {
		t.Errorf("update of a missing key: %v, want not_found", err)
	}
	if n := scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_id = 'u-4'"); n != 0 {
		t.Errorf("a not_found update recorded %d events", n)
	}
	outside(t, s)

	// The event was recorded by the create: conflict, the row unchanged.
	if _, err := exec("u-c", body(`{"name":"conflict"}`)); code(err) != wire.CodeConflict {
		t.Errorf("update under a create's event: %v, want conflict", err)
	}
	if got := row(id); got != "u1@example.com|by hand|31" {
		t.Errorf("an update under a used event changed the row: %s", got)
	}
	outside(t, s)

	// An update the table refuses (a taken email) rolls the procedure's
	// transaction back: the row unchanged, nothing recorded.
	other, err := exec("u-c2", `{"template":"users","op":"create","data":{"email":"u2@example.com"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec("u-6", body(`{"email":"u2@example.com","name":"dup"}`)); code(err) != wire.CodeConflict {
		t.Errorf("update to a taken email: %v, want conflict", err)
	}
	if got := row(id); got != "u1@example.com|by hand|31" || scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_id = 'u-6'") != 0 {
		t.Errorf("a failed update left the row %s", got)
	}
	outside(t, s)

	// In a batch the procedure records in the batch's transaction: a later
	// write that fails takes the update back with it.
	otherBody := func(data string) string {
		b, _ := json.Marshal(other.Key)
		return `{"template":"users","op":"update","filter":{"id":` + string(b) + `},"data":` + data + `}`
	}
	batch := func(third string) []*store.Query {
		return []*store.Query{
			build("ub.1", otherBody(`{"name":"batched"}`)),
			build("ub.2", body(`{"age":40}`)),
			build("ub.3", third),
		}
	}
	_, err = s.ExecBatch(ctx, "ub", batch(`{"template":"users","op":"create","data":{"email":"u2@example.com"}}`))
	var be *store.BatchError
	if !errors.As(err, &be) || be.Index != 2 || code(err) != wire.CodeConflict {
		t.Fatalf("failing batch: %v", err)
	}
	if got := row(other.Key); got != "u2@example.com||" || scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_id LIKE 'ub%'") != 0 {
		t.Errorf("a failed batch left its update: %s", got)
	}
	outside(t, s)
	ok := `{"template":"users","op":"create","data":{"email":"u3@example.com"}}`
	res, err := s.ExecBatch(ctx, "ub", batch(ok))
	if err != nil || res[0].Affected != 1 || res[1].Affected != 1 || row(other.Key) != "u2@example.com|batched|" || row(id) != "u1@example.com|by hand|40" {
		t.Fatalf("batch: %+v, %v", res, err)
	}
	res, err = s.ExecBatch(ctx, "ub", batch(ok))
	if err != nil || !res[0].Replayed || res[0].Affected != 1 {
		t.Fatalf("resent batch: %+v, %v", res, err)
	}
	outside(t, s)

	// A procedure of the former convention answers no count.
	_, err = exec("u-7", `{"template":"broken","op":"update","filter":{"id":1},"data":{"n":2}}`)
	if err == nil || !strings.Contains(err.Error(), "bedsctl schema gen") {
		t.Errorf("update through a procedure without a count: %v, want what to do", err)
	}
	outside(t, s)

	// A NULL event records nothing (a DBA's call by hand, the baseline).
	if _, err := db.Exec("CALL sp_usr_update(NULL, 'name', ?, NULL, 'by hand again', NULL, NULL, NULL, NULL)", id); err != nil {
		t.Fatal(err)
	}
	if n := scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_op = 'update'"); n != 5 { // u-1, u-2, u-3, ub.1, ub.2
		t.Errorf("%d records of updates, want 5", n)
	}
	if got := row(id); got != "u1@example.com|by hand again|40" {
		t.Errorf("after a call by hand the row is %s", got)
	}

	// Delete by key: under a used event a conflict, the row stays; then
	// deleted and recorded once; sent again answered from the record; a
	// key with no row is not_found and records nothing.
	del := strings.Replace(body(`{}`), `"op":"update"`, `"op":"delete"`, 1)
	del = strings.Replace(del, `,"data":{}`, ``, 1)
	if _, err := exec("u-1", del); code(err) != wire.CodeConflict || scalar(t, db, "SELECT COUNT(*) FROM tbl_usr WHERE usr_id = ?", id) != 1 {
		t.Errorf("delete under an update's event: %v, want conflict and the row kept", err)
	}
	outside(t, s)
	for _, replayed := range []bool{false, true} {
		res, err := exec("d-1", del)
		if err != nil || res.Replayed != replayed || res.Affected != 1 {
			t.Fatalf("delete (replayed %v): %+v, %v", replayed, res, err)
		}
		outside(t, s)
	}
	if n := scalar(t, db, "SELECT COUNT(*) FROM tbl_usr WHERE usr_id = ?", id); n != 0 {
		t.Errorf("%d rows left by a delete", n)
	}
	if n := scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_id = 'd-1' AND evt_op = 'delete' AND evt_affected = 1"); n != 1 {
		t.Errorf("%d records of the delete, want 1", n)
	}
	if _, err := exec("d-2", del); code(err) != wire.CodeNotFound || scalar(t, db, "SELECT COUNT(*) FROM beds_events WHERE evt_id = 'd-2'") != 0 {
		t.Errorf("delete of a gone key: %v, want not_found and no record", err)
	}
	outside(t, s)
}

// TestWriteIsOneStatement: a create, and an update or delete by key, is
// one statement from the node to the server (its procedure's CALL), the
// property their speed rests on (docs/performance.md, Writes). Counted by
// the server: the Questions of the store's only connection.
func TestWriteIsOneStatement(t *testing.T) {
	dsn := testenv.MariaDB(t)
	reg, err := template.Load(filepath.Join(testenv.Root(t), "templates"), map[string]string{"mariadb": "mariadb", "mongo": "mongo"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{DSN: dsn, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	questions := func() int64 {
		t.Helper()
		var name string
		var n int64
		if err := s.primary.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var key any
	for _, tc := range []struct{ name, event, body string }{
		{"create", "one-1", `{"template":"users","op":"create","data":{"email":"one@example.com"}}`},
		{"update by key", "one-2", `{"template":"users","op":"update","filter":{"id":KEY},"data":{"name":"x","age":3}}`},
		{"delete by key", "one-3", `{"template":"users","op":"delete","filter":{"id":KEY}}`},
	} {
		body := tc.body
		if key != nil {
			b, _ := json.Marshal(key)
			body = strings.Replace(body, "KEY", string(b), 1)
		}
		req, err := wire.DecodeRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Build(reg.Get("users"), tc.event, req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		before := questions()
		res, err := s.Exec(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := questions() - before - 1; n != 1 { // the second SHOW counts itself
			t.Errorf("%s: %d statements, want 1", tc.name, n)
		}
		if key == nil {
			key = res.Key
		}
	}
}

// brokenTemplate's create procedure (brokenSQL) begins a transaction,
// inserts and fails without rolling back; its update procedure answers no
// count of rows.
const brokenTemplate = `name = "broken"
tla = "brk"
kind = "rec"
store = "mariadb"

[fields]
id = { type = "int", key = true }
n  = { type = "int" }

[objects]
read   = "vw_brk"
create = "sp_brk_create"
update = "sp_brk_update"

[ops]
allow = ["create", "read", "update"]
`

var brokenSQL = []string{
	"CREATE TABLE tbl_brk (brk_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, brk_n INT NULL) ENGINE=InnoDB",
	"CREATE VIEW vw_brk AS SELECT brk_id, brk_n FROM tbl_brk",
	"CREATE PROCEDURE sp_brk_create(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN p_n INT) " +
		"BEGIN START TRANSACTION; INSERT INTO tbl_brk (brk_n) VALUES (p_n); SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'half done'; END",
	"CREATE PROCEDURE sp_brk_update(IN beds_event VARCHAR(200) CHARACTER SET ascii, IN beds_set TEXT, IN p_id BIGINT, IN p_n INT) " +
		"BEGIN UPDATE tbl_brk SET brk_n = p_n WHERE brk_id = p_id; END",
}

// openWithBroken adds brokenSQL's objects to the database of dsn and
// returns their template, a store on one connection and a pool for the
// test's own statements (openStore).
func openWithBroken(ctx context.Context, t *testing.T, dsn string) (*template.Template, *Store, *sql.DB) {
	t.Helper()
	broken, err := template.Parse("broken_rec.toml", []byte(brokenTemplate), map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	s, db := openStore(t, dsn, 1)
	for _, stmt := range brokenSQL {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return broken, s, db
}

// outside checks that the store's one connection holds no transaction.
func outside(t *testing.T, s *Store) {
	t.Helper()
	if in := scalar(t, s.primary, "SELECT @@in_transaction"); in != 0 {
		t.Fatalf("the connection is left in a transaction (@@in_transaction %d)", in)
	}
}
