package mariadb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/template"
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
	errNoTable         = 1146 // ER_NO_SUCH_TABLE: a deploy script was not applied

	// The caller's values, refused by the server or a procedure.
	errTruncatedValue = 1292 // ER_TRUNCATED_WRONG_VALUE: "Truncated incorrect DOUBLE value: 'x'"
	errIncorrectValue = 1366 // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: "Incorrect integer value: 'x' for column ..."
	errConstraint     = 4025 // ER_CONSTRAINT_FAILED: a CHECK constraint
	errJSONDepth      = 4040 // ER_JSON_DEPTH: JSON nested deeper than the server's limit
	errManyParams     = 1390 // ER_PS_MANY_PARAM: over 65,535 placeholders in one statement
)

// classify maps driver and server errors to contract errors where the
// contract has a code for them; anything else stays an internal error.
// Errors about the caller's values are bad_value: retrying them cannot
// help. tpl, if set, turns the stored column names the server quotes into
// the template's field names; a column it does not know is not named.
func classify(err error, tpl *template.Template) error {
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
		case errSignal:
			// The procedure's own words, written for callers.
			return &wire.Error{Code: wire.CodeBadValue, Message: me.Message}
		case errBadNull, errDataTooLong, errTruncated, errOutOfRange, errTruncatedValue, errIncorrectValue, errJSONDepth:
			return valueError(me.Message, tpl)
		case errConstraint:
			// The message names the table, and the constraint is often
			// named after its column.
			return &wire.Error{Code: wire.CodeBadValue, Message: "a value breaks a rule the database sets (a check constraint)"}
		case errManyParams:
			// Every value may be fine; there are too many of them, as with
			// limits.max_in_list.
			return &wire.Error{Code: wire.CodeTooLarge, Message: "the request binds more values than the database accepts in one statement: use shorter in lists"}
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

// columnRE finds the column a server message names: 'col', or
// `db`.`table`.`col`.
var columnRE = regexp.MustCompile("(?i)column (?:'([^']*)'|(?:`[^`]*`\\.)*`([^`]*)`)")

// rowRE is the statement row a message points at, which means nothing to
// a caller.
var rowRE = regexp.MustCompile(` at row [0-9]+`)

// valueError is a bad_value error from a server message about a value,
// with the column it names replaced by the template's field, or by "a
// field" when the template has no field stored there: stored names, like
// the database and table names the message may carry, stay inside.
func valueError(msg string, tpl *template.Template) *wire.Error {
	we := &wire.Error{Code: wire.CodeBadValue}
	msg = columnRE.ReplaceAllStringFunc(msg, func(m string) string {
		sub := columnRE.FindStringSubmatch(m)
		col := sub[1] + sub[2]
		if f := storedField(tpl, col); f != nil {
			we.Field = f.Name
			return "field " + f.Name
		}
		return "a field"
	})
	we.Message = rowRE.ReplaceAllString(msg, "")
	return we
}

func storedField(tpl *template.Template, col string) *template.Field {
	if tpl == nil {
		return nil
	}
	for _, f := range tpl.Fields {
		if strings.EqualFold(f.Stored, col) {
			return f
		}
	}
	return nil
}
