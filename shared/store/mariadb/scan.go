package mariadb

import (
	"database/sql"
	"fmt"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

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
