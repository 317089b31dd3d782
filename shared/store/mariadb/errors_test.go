package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

func TestClassify(t *testing.T) {
	myErr := func(n uint16) error { return &mysql.MySQLError{Number: n, Message: fmt.Sprintf("server error %d", n)} }
	for _, tc := range []struct {
		name string
		err  error
		code wire.Code // "" : returned unchanged
	}{
		{"duplicate key", myErr(1062), wire.CodeConflict},
		{"duplicate key wrapped", fmt.Errorf("create via sp_usr_create: %w", myErr(1062)), wire.CodeConflict},
		{"row is referenced", myErr(1451), wire.CodeConflict},
		{"no referenced row", myErr(1452), wire.CodeConflict},
		{"signal from a procedure", myErr(1644), wire.CodeBadValue},
		{"bad null", myErr(1048), wire.CodeBadValue},
		{"data too long", myErr(1406), wire.CodeBadValue},
		{"truncated", myErr(1265), wire.CodeBadValue},
		{"out of range", myErr(1264), wire.CodeBadValue},
		{"lock wait timeout", myErr(1205), wire.CodeUnavailable},
		{"deadlock", myErr(1213), wire.CodeUnavailable},
		{"too many connections", myErr(1040), wire.CodeUnavailable},
		{"server shutdown", myErr(1053), wire.CodeUnavailable},
		{"connection killed", myErr(1927), wire.CodeUnavailable},
		{"query killed", myErr(1317), wire.CodeTimeout},
		{"max statement time", myErr(1969), wire.CodeTimeout},
		{"truncated incorrect value", myErr(1292), wire.CodeBadValue},
		{"incorrect value for a column", myErr(1366), wire.CodeBadValue},
		{"check constraint", myErr(4025), wire.CodeBadValue},
		{"json too deep", myErr(4040), wire.CodeBadValue},
		{"too many placeholders", myErr(1390), wire.CodeTooLarge},
		{"unknown table stays internal", myErr(1146), ""},
		{"syntax error stays internal", myErr(1064), ""},
		{"bad conn", driver.ErrBadConn, wire.CodeUnavailable},
		{"bad conn wrapped", fmt.Errorf("read vw_usr: %w", driver.ErrBadConn), wire.CodeUnavailable},
		{"invalid conn", mysql.ErrInvalidConn, wire.CodeUnavailable},
		{"conn done", sql.ErrConnDone, wire.CodeUnavailable},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, wire.CodeUnavailable},
		{"connection reset", fmt.Errorf("x: %w", syscall.ECONNRESET), wire.CodeUnavailable},
		{"dns failure", &net.DNSError{Err: "no such host", Name: "db"}, wire.CodeUnavailable},
		{"deadline", context.DeadlineExceeded, wire.CodeTimeout},
		{"deadline wrapped", fmt.Errorf("count vw_usr: %w", context.DeadlineExceeded), wire.CodeTimeout},
		{"canceled", context.Canceled, wire.CodeUnavailable},
		{"plain error stays", errors.New("sql: Scan error on column index 0"), ""},
		{"no rows stays", sql.ErrNoRows, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, nil)
			if tc.code == "" {
				if got != tc.err {
					t.Fatalf("classify(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			var we *wire.Error
			if !errors.As(got, &we) {
				t.Fatalf("classify(%v) = %T %v, want a *wire.Error", tc.err, got, got)
			}
			if we.Code != tc.code {
				t.Errorf("classify(%v) = %s, want %s", tc.err, we.Code, tc.code)
			}
			if we.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestClassifyPassesContractErrors(t *testing.T) {
	we := wire.Errorf(wire.CodeNotFound, "no users record matches the filter")
	if got := classify(we, nil); got != error(we) {
		t.Errorf("classify(*wire.Error) = %v, want it unchanged", got)
	}
	wrapped := fmt.Errorf("update: %w", we)
	if got := classify(wrapped, nil); got != wrapped {
		t.Errorf("classify(wrapped *wire.Error) = %v, want it unchanged", got)
	}
	// A contract error wins over a driver error joined with it.
	joined := errors.Join(we, driver.ErrBadConn)
	if got := classify(joined, nil); got != joined {
		t.Errorf("classify(joined) = %v", got)
	}
}

// The messages of a procedure's SIGNAL reach the caller; connection details
// do not.
func TestClassifyMessages(t *testing.T) {
	sig := &mysql.MySQLError{Number: 1644, SQLState: [5]byte{'4', '5', '0', '0', '0'}, Message: "email is already taken"}
	var we *wire.Error
	if !errors.As(classify(sig, nil), &we) || we.Message != "email is already taken" {
		t.Errorf("signal message %v", we)
	}
	op := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 3306}, Err: syscall.ECONNREFUSED}
	if !errors.As(classify(op, nil), &we) || we.Code != wire.CodeUnavailable {
		t.Fatalf("dial error %v", we)
	}
	if s := we.Error(); strings.Contains(s, "10.1.2.3") {
		t.Errorf("message %q names the host", s)
	}
}

// Messages about a value name the template's field, never the stored
// column, table or database; a column the template does not know is not
// named at all.
func TestClassifyValueMessages(t *testing.T) {
	tpl := usersTemplate(t)
	for _, tc := range []struct {
		name      string
		n         uint16
		msg       string
		tpl       *template.Template
		want      string
		wantField string
	}{
		{"null", 1048, "Column 'usr_email' cannot be null", tpl, "field email cannot be null", "email"},
		{"too long", 1406, "Data too long for column 'usr_name' at row 1", tpl, "Data too long for field name", "name"},
		{"out of range", 1264, "Out of range value for column 'usr_age' at row 7", tpl, "Out of range value for field age", "age"},
		{"truncated", 1265, "Data truncated for column 'usr_score' at row 1", tpl, "Data truncated for field score", "score"},
		{"incorrect value", 1366, "Incorrect integer value: 'abc' for column `beds_x`.`tbl_usr`.`usr_age` at row 3", tpl,
			"Incorrect integer value: 'abc' for field age", "age"},
		{"incorrect date", 1292, "Incorrect date value: 'abc' for column `beds_x`.`tbl_usr`.`usr_created` at row 1", tpl,
			"Incorrect date value: 'abc' for field created", "created"},
		{"unknown column", 1366, "Incorrect integer value: 'abc' for column `beds_x`.`tbl_aud`.`aud_secret` at row 1", tpl,
			"Incorrect integer value: 'abc' for a field", ""},
		{"no template", 1406, "Data too long for column 'usr_name' at row 1", nil, "Data too long for a field", ""},
		{"no column", 1292, "Truncated incorrect DOUBLE value: '12abc'", tpl, "Truncated incorrect DOUBLE value: '12abc'", ""},
		{"json depth", 4040, "Limit of 32 on JSON nested structures depth is reached in argument 1 to function 'json_valid' at position 33", tpl,
			"Limit of 32 on JSON nested structures depth is reached in argument 1 to function 'json_valid' at position 33", ""},
		{"constraint", 4025, "CONSTRAINT `tbl_usr.usr_prefs` failed for `beds_x`.`tbl_usr`", tpl,
			"a value breaks a rule the database sets (a check constraint)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var we *wire.Error
			if !errors.As(classify(&mysql.MySQLError{Number: tc.n, Message: tc.msg}, tc.tpl), &we) {
				t.Fatal("not a contract error")
			}
			if we.Code != wire.CodeBadValue || we.Message != tc.want || we.Field != tc.wantField {
				t.Errorf("got %s %q field %q, want bad_value %q field %q", we.Code, we.Message, we.Field, tc.want, tc.wantField)
			}
		})
	}
}

// TestValueErrorsFromServer: values the server itself refuses (a JSON
// nested past its depth limit, a string a procedure stores in an INT or a
// DATE column) answer bad_value, which a client does not retry, and the
// message names no table, column or database.
func TestValueErrorsFromServer(t *testing.T) {
	dsn := testenv.MariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testenv.ApplySQL(ctx, dsn, filepath.Join("testdata", "values.sql")); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vals, err := template.Parse("values.toml", []byte(`name = "values"
tla = "val"
kind = "rec"
store = "mariadb"

[fields]
id = { type = "int", key = true }
n  = { type = "string" }
d  = { type = "string" }

[objects]
read = "vw_val"
create = "sp_val_create"

[ops]
allow = ["create", "read"]
`), map[string]string{"mariadb": template.StoreMariaDB})
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	for _, tc := range []struct {
		name  string
		tpl   *template.Template
		body  string
		field string
	}{
		{"json deeper than the server takes", repoUsers(t), `{"template":"users","op":"create","data":{"email":"deep@example.com","prefs":` + deep + `}}`, ""},
		{"not an integer (1366)", vals, `{"template":"values","op":"create","data":{"n":"abc"}}`, "n"},
		{"not a date (1292)", vals, `{"template":"values","op":"create","data":{"d":"abc"}}`, "d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, s, tc.tpl, tc.body)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeBadValue || we.Field != tc.field {
				t.Fatalf("got %v, want bad_value on field %q", err, tc.field)
			}
			t.Logf("%v", err)
			for _, leak := range []string{"tbl_", "usr_", "val_", "beds_test_", "`"} {
				if strings.Contains(we.Message, leak) {
					t.Errorf("message %q names %q", we.Message, leak)
				}
			}
		})
	}
	// Nothing was stored.
	res, err := run(t, s, vals, `{"template":"values","op":"read"}`)
	if err != nil || len(res.Rows) != 0 {
		t.Fatalf("read: %+v %v", res, err)
	}
}
