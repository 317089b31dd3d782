package mariadb

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// appendQuoted appends an identifier, quoted. Identifiers are validated by
// the template package to [A-Za-z0-9_], so no backtick can occur; quoting
// still keeps reserved words usable as names.
func appendQuoted(b []byte, ident string) []byte {
	b = append(b, '`')
	b = append(b, ident...)
	return append(b, '`')
}

// selectSQL builds the SELECT of a read, or the locking read of a change.
func selectSQL(q *store.Query, cols []*template.Field, forUpdate bool) (string, []any) {
	b, args := appendSelect(make([]byte, 0, 128), nil, q, cols, forUpdate)
	return string(b), args
}

// appendSelect appends selectSQL's statement to b and its values to args.
func appendSelect(b []byte, args []any, q *store.Query, cols []*template.Field, forUpdate bool) ([]byte, []any) {
	b = append(b, "SELECT "...)
	for i, f := range cols {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendQuoted(b, f.Stored)
	}
	b = append(b, " FROM "...)
	b = appendQuoted(b, q.Template.Objects.Read)
	b, args = appendWhere(b, args, q.Filter)
	for i, s := range q.Sort {
		if i == 0 {
			b = append(b, " ORDER BY "...)
		} else {
			b = append(b, ", "...)
		}
		b = appendQuoted(b, s.Field.Stored)
		if s.Desc {
			b = append(b, " DESC"...)
		}
	}
	if q.Op == wire.OpRead {
		b = append(b, " LIMIT ? OFFSET ?"...)
		args = append(args, q.Limit, q.Offset)
	}
	if forUpdate {
		b = append(b, " FOR UPDATE"...)
	}
	return b, args
}

// appendCount appends the SELECT COUNT(*) of a count to b and its values
// to args.
func appendCount(b []byte, args []any, q *store.Query) ([]byte, []any) {
	b = append(b, "SELECT COUNT(*) FROM "...)
	b = appendQuoted(b, q.Template.Objects.Read)
	return appendWhere(b, args, q.Filter)
}

// appendWhere appends " WHERE ..." for e, if any, and its bound values.
func appendWhere(b []byte, args []any, e *store.Expr) ([]byte, []any) {
	if e == nil {
		return b, args
	}
	b = append(b, " WHERE "...)
	return appendExpr(b, args, e)
}

func appendExpr(b []byte, args []any, e *store.Expr) ([]byte, []any) {
	switch {
	case e.Cond != nil:
		return appendCond(b, args, e.Cond)
	case len(e.And) > 0:
		return appendList(b, args, e.And, " AND ")
	case len(e.Or) > 0:
		return appendList(b, args, e.Or, " OR ")
	}
	return b, args
}

func appendList(b []byte, args []any, list []*store.Expr, sep string) ([]byte, []any) {
	b = append(b, '(')
	for i, sub := range list {
		if i > 0 {
			b = append(b, sep...)
		}
		b, args = appendExpr(b, args, sub)
	}
	return append(b, ')'), args
}

// sqlOp maps a comparison operator to its fixed SQL token.
func sqlOp(op store.Operator) string {
	switch op {
	case store.OpEq:
		return " = ?"
	case store.OpNe:
		return " <> ?"
	case store.OpGt:
		return " > ?"
	case store.OpGte:
		return " >= ?"
	case store.OpLt:
		return " < ?"
	case store.OpLte:
		return " <= ?"
	case store.OpLike:
		return " LIKE ?"
	}
	panic("mariadb: no SQL for operator " + string(op))
}

func appendCond(b []byte, args []any, c *store.Cond) ([]byte, []any) {
	b = appendQuoted(b, c.Field.Stored)
	switch c.Op {
	case store.OpNull:
		if c.Value.(bool) {
			return append(b, " IS NULL"...), args
		}
		return append(b, " IS NOT NULL"...), args
	case store.OpIn, store.OpNin:
		if c.Op == store.OpNin {
			b = append(b, " NOT"...)
		}
		b = append(b, " IN ("...)
		for i, v := range c.Value.([]any) {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, '?')
			args = append(args, bindValue(c.Field, v))
		}
		return append(b, ')'), args
	case store.OpEq, store.OpNe:
		if c.Value == nil {
			if c.Op == store.OpEq {
				return append(b, " IS NULL"...), args
			}
			return append(b, " IS NOT NULL"...), args
		}
	}
	return append(b, sqlOp(c.Op)...), append(args, bindValue(c.Field, c.Value))
}

// callSQL builds CALL `proc`(?, ?, ...).
func callSQL(proc string, n int) string {
	b := append(make([]byte, 0, 16+len(proc)+3*n), "CALL "...)
	b = append(appendQuoted(b, proc), '(')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(append(b, ')'))
}

// bindValue converts a query value to what the driver binds.
func bindValue(f *template.Field, v any) any {
	if v == nil {
		return nil
	}
	if f.Type == template.TypeJSON {
		if raw, ok := v.(json.RawMessage); ok {
			return string(raw)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return string(b)
	}
	return v
}

// scanRows reads rows into reply rows keyed by plain field names.
func scanRows(rows *sql.Rows, fields []*template.Field, sc *scanner) ([]wire.Row, error) {
	defer rows.Close()
	defer sc.release()
	out := []wire.Row{}
	sc.reset(fields)
	for rows.Next() {
		if err := rows.Scan(sc.dest...); err != nil {
			return nil, err
		}
		row := make(wire.Row, len(fields))
		for i, f := range fields {
			row[f.Name] = sc.cells[i].v
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// scanValues reads rows as bind-ready parameter lists.
func scanValues(rows *sql.Rows, fields []*template.Field) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	var sc scanner
	sc.reset(fields)
	for rows.Next() {
		if err := rows.Scan(sc.dest...); err != nil {
			return nil, err
		}
		vals := make([]any, len(fields))
		for i, f := range fields {
			vals[i] = bindValue(f, sc.cells[i].v)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// scanner holds one cell per field and the Scan destinations pointing at
// them, reusable from query to query.
type scanner struct {
	cells []cell
	dest  []any
}

func (sc *scanner) reset(fields []*template.Field) {
	if cap(sc.cells) < len(fields) {
		sc.cells = make([]cell, len(fields))
		sc.dest = make([]any, len(fields))
	}
	sc.cells, sc.dest = sc.cells[:len(fields)], sc.dest[:len(fields)]
	for i, f := range fields {
		sc.cells[i].f = f
		sc.dest[i] = &sc.cells[i]
	}
}

// release drops the last row's values, which now belong to a reply.
func (sc *scanner) release() { clear(sc.cells) }

// cell receives one column and converts it to its field's Go type at once
// (the driver reuses its buffers after Scan returns). It accepts what the
// driver hands over in both protocols: typed values from prepared
// statements, text from plain queries.
type cell struct {
	f *template.Field
	v any
}

// Scan implements sql.Scanner.
func (c *cell) Scan(src any) error {
	if src == nil {
		c.v = nil
		return nil
	}
	v, err := convertColumn(c.f, src)
	if err != nil {
		return fmt.Errorf("column %s (field %s, %s): %w", c.f.Stored, c.f.Name, c.f.Type, err)
	}
	c.v = v
	return nil
}

func convertColumn(f *template.Field, src any) (any, error) {
	switch f.Type {
	case template.TypeString:
		switch x := src.(type) {
		case []byte:
			return string(x), nil
		case string:
			return x, nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
	case template.TypeInt:
		switch x := src.(type) {
		case int64:
			return x, nil
		case uint64:
			if x <= math.MaxInt64 {
				return int64(x), nil
			}
		case []byte:
			return strconv.ParseInt(string(x), 10, 64)
		}
	case template.TypeFloat:
		switch x := src.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case []byte:
			return strconv.ParseFloat(string(x), 64)
		}
	case template.TypeBool:
		switch x := src.(type) {
		case int64:
			return x != 0, nil
		case bool:
			return x, nil
		case []byte:
			n, err := strconv.ParseInt(string(x), 10, 64)
			return n != 0, err
		}
	case template.TypeDatetime:
		switch x := src.(type) {
		case time.Time:
			return x.UTC(), nil
		case []byte:
			return time.ParseInLocation("2006-01-02 15:04:05.999999", string(x), time.UTC)
		}
	case template.TypeJSON:
		switch x := src.(type) {
		case []byte:
			if json.Valid(x) {
				return json.RawMessage(bytes.Clone(x)), nil
			}
			return string(x), nil
		case string:
			if json.Valid([]byte(x)) {
				return json.RawMessage(x), nil
			}
			return x, nil
		}
	}
	return nil, fmt.Errorf("cannot hold a %T", src)
}

// keyValue converts a generated key to the key field's type.
func keyValue(f *template.Field, v any) any {
	switch x := v.(type) {
	case []byte:
		if f.Type == template.TypeInt {
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return n
			}
		}
		return string(x)
	case uint64:
		return int64(x)
	}
	return v
}

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
