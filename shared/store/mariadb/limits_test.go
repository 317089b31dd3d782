package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// openAdmin opens a plain pool on dsn for the test's own look at the
// database, closed when the test ends.
func openAdmin(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func scalar(t *testing.T, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// rowsSent is the Rows_sent counter of the store's only connection: the
// rows the server sent to the node.
func rowsSent(t *testing.T, s *Store) int64 {
	t.Helper()
	var name string
	var n int64
	if err := s.primary.QueryRowContext(context.Background(), "SHOW SESSION STATUS LIKE 'Rows_sent'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMaxAffected: an update or delete that matches more records than
// q.MaxAffected answers too_large and changes nothing, having read at most
// one row past the bound from the server; its event is not recorded, so a
// redelivery is judged afresh (too_large again, or applied once the data
// fits), never answered with a stale success.
func TestMaxAffected(t *testing.T) {
	dsn := testenv.MariaDB(t)
	admin := openAdmin(t, dsn)
	if _, err := admin.Exec("INSERT INTO tbl_usr (usr_email, usr_age) SELECT CONCAT('u', seq, '@example.com'), 1 FROM seq_1_to_50"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{DSN: dsn, MaxConns: 1}) // one connection: its counters are the store's
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tpl := repoUsers(t)
	exec := func(event, body string, maxAffected int) (*store.Result, error) {
		t.Helper()
		req, err := wire.DecodeRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Build(tpl, event, req, store.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		q.MaxAffected = maxAffected
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.Exec(ctx, q)
	}
	tooLarge := func(what string, err error, n int) {
		t.Helper()
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeTooLarge {
			t.Fatalf("%s: %v, want too_large", what, err)
		}
		if want := "more than " + strconv.Itoa(n) + " users records; narrow the filter"; !strings.Contains(we.Message, want) {
			t.Errorf("%s: message %q does not say %q", what, we.Message, want)
		}
	}
	const update = `{"template":"users","op":"update","filter":{"age":1},"data":{"age":2}}`

	before := rowsSent(t, s)
	_, err = exec("ev-big", update, 3)
	tooLarge("update of 50", err, 3)
	if sent := rowsSent(t, s) - before; sent > 4 {
		t.Errorf("the locking read sent %d rows for a bound of 3: want at most 4", sent)
	}
	if n := scalar(t, admin, "SELECT COUNT(*) FROM tbl_usr WHERE usr_age = 2"); n != 0 {
		t.Fatalf("%d records changed by a refused update", n)
	}
	if n := scalar(t, admin, "SELECT COUNT(*) FROM beds_events WHERE evt_id = 'ev-big'"); n != 0 {
		t.Fatalf("the refused update's event was recorded")
	}
	// Redelivered as it was: refused again, not answered from a record.
	_, err = exec("ev-big", update, 3)
	tooLarge("redelivered update", err, 3)

	// The data changes so that the same event now fits: it applies, once.
	if _, err := admin.Exec("DELETE FROM tbl_usr WHERE usr_id > 3"); err != nil {
		t.Fatal(err)
	}
	res, err := exec("ev-big", update, 3)
	if err != nil || res.Affected != 3 || res.Replayed {
		t.Fatalf("update of 3 with a bound of 3: %+v %v", res, err)
	}
	res, err = exec("ev-big", update, 3)
	if err != nil || res.Affected != 3 || !res.Replayed {
		t.Fatalf("redelivery after it applied: %+v %v", res, err)
	}
	if n := scalar(t, admin, "SELECT COUNT(*) FROM tbl_usr WHERE usr_age = 2"); n != 3 {
		t.Fatalf("%d records updated, want 3", n)
	}

	// Delete alike.
	_, err = exec("ev-del", `{"template":"users","op":"delete","filter":{"age":2}}`, 2)
	tooLarge("delete of 3", err, 2)
	if n := scalar(t, admin, "SELECT COUNT(*) FROM tbl_usr"); n != 3 {
		t.Fatalf("%d records left after a refused delete, want 3", n)
	}
	// No bound: as before.
	res, err = exec("ev-del-all", `{"template":"users","op":"delete","filter":{"age":2}}`, 0)
	if err != nil || res.Affected != 3 {
		t.Fatalf("unbounded delete: %+v %v", res, err)
	}
}
