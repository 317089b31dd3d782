package mariadb

import (
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
	if forUpdate && q.MaxAffected > 0 {
		// One row past the bound tells "too many" without loading them all.
		b = append(b, " LIMIT ?"...)
		args = append(args, q.MaxAffected+1)
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
