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
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// quote quotes an identifier. Identifiers are validated by the template
// package to [A-Za-z0-9_], so no backtick can occur; quoting still keeps
// reserved words usable as names.
func quote(ident string) string { return "`" + ident + "`" }

// selectSQL builds the SELECT of a read, or the locking read of a change.
func selectSQL(q *store.Query, cols []*template.Field, forUpdate bool) (string, []any) {
	var b strings.Builder
	b.Grow(128)
	b.WriteString("SELECT ")
	for i, f := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(f.Stored))
	}
	b.WriteString(" FROM ")
	b.WriteString(quote(q.Template.Objects.Read))
	args := where(&b, q.Filter)
	for i, s := range q.Sort {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(quote(s.Field.Stored))
		if s.Desc {
			b.WriteString(" DESC")
		}
	}
	if q.Op == wire.OpRead {
		b.WriteString(" LIMIT ? OFFSET ?")
		args = append(args, q.Limit, q.Offset)
	}
	if forUpdate {
		b.WriteString(" FOR UPDATE")
	}
	return b.String(), args
}

// where appends " WHERE ..." for e, if any, and returns the bound values.
func where(b *strings.Builder, e *store.Expr) []any {
	if e == nil {
		return nil
	}
	var args []any
	b.WriteString(" WHERE ")
	writeExpr(b, e, &args)
	return args
}

func writeExpr(b *strings.Builder, e *store.Expr, args *[]any) {
	switch {
	case e.Cond != nil:
		writeCond(b, e.Cond, args)
	case len(e.And) > 0:
		writeList(b, e.And, " AND ", args)
	case len(e.Or) > 0:
		writeList(b, e.Or, " OR ", args)
	}
}

func writeList(b *strings.Builder, list []*store.Expr, sep string, args *[]any) {
	b.WriteByte('(')
	for i, sub := range list {
		if i > 0 {
			b.WriteString(sep)
		}
		writeExpr(b, sub, args)
	}
	b.WriteByte(')')
}

// sqlOps maps the comparison operators to fixed SQL tokens.
var sqlOps = map[store.Operator]string{
	store.OpEq: " = ?", store.OpNe: " <> ?", store.OpGt: " > ?", store.OpGte: " >= ?",
	store.OpLt: " < ?", store.OpLte: " <= ?", store.OpLike: " LIKE ?",
}

func writeCond(b *strings.Builder, c *store.Cond, args *[]any) {
	col := quote(c.Field.Stored)
	switch c.Op {
	case store.OpNull:
		b.WriteString(col)
		if c.Value.(bool) {
			b.WriteString(" IS NULL")
		} else {
			b.WriteString(" IS NOT NULL")
		}
	case store.OpEq, store.OpNe:
		if c.Value == nil {
			b.WriteString(col)
			if c.Op == store.OpEq {
				b.WriteString(" IS NULL")
			} else {
				b.WriteString(" IS NOT NULL")
			}
			return
		}
		b.WriteString(col)
		b.WriteString(sqlOps[c.Op])
		*args = append(*args, bindValue(c.Field, c.Value))
	case store.OpIn, store.OpNin:
		list := c.Value.([]any)
		b.WriteString(col)
		if c.Op == store.OpNin {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		for i, v := range list {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
			*args = append(*args, bindValue(c.Field, v))
		}
		b.WriteByte(')')
	default:
		b.WriteString(col)
		b.WriteString(sqlOps[c.Op])
		*args = append(*args, bindValue(c.Field, c.Value))
	}
}

// callSQL builds CALL `proc`(?, ?, ...).
func callSQL(proc string, n int) string {
	var b strings.Builder
	b.WriteString("CALL ")
	b.WriteString(quote(proc))
	b.WriteByte('(')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('?')
	}
	b.WriteByte(')')
	return b.String()
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
func scanRows(rows *sql.Rows, fields []*template.Field) ([]wire.Row, error) {
	defer rows.Close()
	out := []wire.Row{}
	cells, dest := scanDest(fields)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := make(wire.Row, len(fields))
		for i, f := range fields {
			row[f.Name] = cells[i].v
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// scanValues reads rows as bind-ready parameter lists.
func scanValues(rows *sql.Rows, fields []*template.Field) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	cells, dest := scanDest(fields)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		vals := make([]any, len(fields))
		for i, f := range fields {
			vals[i] = bindValue(f, cells[i].v)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// scanDest returns one cell per field and the Scan destinations pointing
// at them: two allocations per query, whatever the number of columns.
func scanDest(fields []*template.Field) ([]cell, []any) {
	cells := make([]cell, len(fields))
	dest := make([]any, len(fields))
	for i, f := range fields {
		cells[i].f = f
		dest[i] = &cells[i]
	}
	return cells, dest
}

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
