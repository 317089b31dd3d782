package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/wire"
)

// MariaDB error numbers the adapter maps to contract codes.
const (
	errDupEntry        = 1062
	errRowIsReferenced = 1451
	errNoReferencedRow = 1452
	errBadNull         = 1048
	errDataTooLong     = 1406
	errTruncated       = 1265
	errOutOfRange      = 1264
	errSignal          = 1644 // SIGNAL SQLSTATE '45000' from a procedure
	errLockWait        = 1205
	errDeadlock        = 1213
	errTooManyConns    = 1040
	errServerShutdown  = 1053
	errConnKilled      = 1927
	errQueryKilled     = 1317
	errStatementTime   = 1969 // max_statement_time exceeded
)

// classify maps driver and server errors to contract errors where the
// contract has a code for them; anything else stays an internal error.
func classify(err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		return err
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case errDupEntry:
			return &wire.Error{Code: wire.CodeConflict, Message: "a record with that value already exists: " + me.Message}
		case errRowIsReferenced, errNoReferencedRow:
			return &wire.Error{Code: wire.CodeConflict, Message: "the change breaks a reference between records"}
		case errBadNull, errDataTooLong, errTruncated, errOutOfRange, errSignal:
			return &wire.Error{Code: wire.CodeBadValue, Message: me.Message}
		case errLockWait, errDeadlock, errTooManyConns, errServerShutdown, errConnKilled:
			return &wire.Error{Code: wire.CodeUnavailable, Message: "database busy or going away: " + me.Message}
		case errQueryKilled, errStatementTime:
			return &wire.Error{Code: wire.CodeTimeout, Message: "the database stopped the statement: " + me.Message}
		}
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &wire.Error{Code: wire.CodeTimeout, Message: "the request's deadline passed before the database answered"}
	case errors.Is(err, context.Canceled):
		return &wire.Error{Code: wire.CodeUnavailable, Message: "the node stopped the request"}
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, sql.ErrConnDone):
		return &wire.Error{Code: wire.CodeUnavailable, Message: "database connection lost"}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &wire.Error{Code: wire.CodeUnavailable, Message: "database unreachable"}
	}
	return err
}
