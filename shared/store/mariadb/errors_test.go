package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"

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
			got := classify(tc.err)
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
	if got := classify(we); got != error(we) {
		t.Errorf("classify(*wire.Error) = %v, want it unchanged", got)
	}
	wrapped := fmt.Errorf("update: %w", we)
	if got := classify(wrapped); got != wrapped {
		t.Errorf("classify(wrapped *wire.Error) = %v, want it unchanged", got)
	}
	// A contract error wins over a driver error joined with it.
	joined := errors.Join(we, driver.ErrBadConn)
	if got := classify(joined); got != joined {
		t.Errorf("classify(joined) = %v", got)
	}
}

// The messages of a procedure's SIGNAL reach the caller; connection details
// do not.
func TestClassifyMessages(t *testing.T) {
	sig := &mysql.MySQLError{Number: 1644, SQLState: [5]byte{'4', '5', '0', '0', '0'}, Message: "email is already taken"}
	var we *wire.Error
	if !errors.As(classify(sig), &we) || we.Message != "email is already taken" {
		t.Errorf("signal message %v", we)
	}
	op := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 3306}, Err: syscall.ECONNREFUSED}
	if !errors.As(classify(op), &we) || we.Code != wire.CodeUnavailable {
		t.Fatalf("dial error %v", we)
	}
	if s := we.Error(); strings.Contains(s, "10.1.2.3") {
		t.Errorf("message %q names the host", s)
	}
}
