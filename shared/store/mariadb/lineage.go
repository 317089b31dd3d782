package mariadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

// Lineage records live in beds_lineage (deploy/mariadb/000_beds.sql), one
// row per event, keyed by the event ID; a tree is followed down the
// lin_parent index. Both statements run on the primary: a record must be
// readable as soon as it is written, and a replica may lag.

// lineageTable holds lineage records.
const lineageTable = "beds_lineage"

// lineageChunk is how many records one INSERT carries at most, keeping a
// statement's size and placeholders bounded (9 per record).
const lineageChunk = 500

var _ lineage.Log = (*Store)(nil)

// lineageCols are the columns of a record, in the order of a record's
// values.
const lineageCols = "lin_event, lin_parent, lin_op, lin_template, lin_node, lin_outcome, lin_started, lin_duration_us, lin_trace"

// Widths of the text columns, in characters.
const (
	linOpWidth       = 16
	linTemplateWidth = 64
	linNodeWidth     = 255
	linOutcomeWidth  = 32
	linTraceWidth    = 55
)

// AppendLineage stores records in beds_lineage, replacing the row of an
// event already stored (the later record wins, also within recs). Each
// 500 records go in one INSERT ... ON DUPLICATE KEY UPDATE; each statement
// stands alone, so a failure may leave the earlier ones stored. Text
// longer than its column is cut to fit (a trace, a node name), and
// started is stored in UTC to the microsecond. A record whose Event or
// Parent is not a valid event ID fails the call before anything is
// written.
func (s *Store) AppendLineage(ctx context.Context, recs []wire.Lineage) error {
	for i := range recs {
		if r := &recs[i]; !lineage.Valid(r.Event) || (r.Parent != "" && !lineage.Valid(r.Parent)) {
			return fmt.Errorf("lineage: record %d: event %.40q or parent %.40q is not a valid event ID", i, r.Event, r.Parent)
		}
	}
	for len(recs) > 0 {
		n := min(len(recs), lineageChunk)
		stmt, args := appendLineageSQL(recs[:n])
		if _, err := s.primary.ExecContext(ctx, withLimit(ctx, stmt), args...); err != nil {
			return lineageError("store lineage", err)
		}
		recs = recs[n:]
	}
	return nil
}

// appendLineageSQL returns the statement storing recs and its values.
func appendLineageSQL(recs []wire.Lineage) (string, []any) {
	var b strings.Builder
	b.Grow(len(lineageCols) + 320 + 20*len(recs))
	b.WriteString("INSERT INTO `" + lineageTable + "` (" + lineageCols + ") VALUES ")
	args := make([]any, 0, 9*len(recs))
	for i := range recs {
		r := &recs[i]
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?)")
		args = append(args,
			r.Event, nullIfEmpty(r.Parent), fit(string(r.Op), linOpWidth),
			nullIfEmpty(fit(r.Template, linTemplateWidth)), nullIfEmpty(fit(r.Node, linNodeWidth)),
			fit(r.Outcome, linOutcomeWidth), r.Started.UTC().Truncate(time.Microsecond), r.DurationUS,
			nullIfEmpty(fit(r.Trace, linTraceWidth)))
	}
	b.WriteString(" ON DUPLICATE KEY UPDATE lin_parent = VALUES(lin_parent), lin_op = VALUES(lin_op)," +
		" lin_template = VALUES(lin_template), lin_node = VALUES(lin_node), lin_outcome = VALUES(lin_outcome)," +
		" lin_started = VALUES(lin_started), lin_duration_us = VALUES(lin_duration_us), lin_trace = VALUES(lin_trace)")
	return b.String(), args
}

// fit returns s as valid UTF-8 cut to at most n characters, so a value
// from outside (a traceparent header, a node name) can never fail a batch.
func fit(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// lineageTreeSQL reads the records of an event and of the events below it
// by lin_parent, breadth first. CYCLE lin_event RESTRICT keeps one row per
// event (its shallowest: MariaDB adds a level per iteration), so links
// that loop end where they close; the level cap bounds a chain.
var lineageTreeSQL = "WITH RECURSIVE tree (ev, lvl) AS (" +
	"SELECT lin_event, 0 FROM `" + lineageTable + "` WHERE lin_event = ?" +
	" UNION ALL " +
	"SELECT l.lin_event, t.lvl + 1 FROM `" + lineageTable + "` l JOIN tree t ON l.lin_parent = t.ev" +
	" WHERE t.lvl < " + strconv.Itoa(lineage.MaxDepth) +
	") CYCLE ev RESTRICT " +
	"SELECT l." + strings.ReplaceAll(lineageCols, ", ", ", l.") +
	" FROM tree t JOIN `" + lineageTable + "` l ON l.lin_event = t.ev" +
	" ORDER BY t.lvl, l.lin_started, l.lin_event LIMIT ?"

// LineageTree returns the record of event and those of the events below
// it by Parent links, at most max of them and at most lineage.MaxDepth
// levels deep, breadth first (within a level by started, then event). It
// returns none when event is unknown. It reads the primary.
func (s *Store) LineageTree(ctx context.Context, event string, max int) ([]wire.Lineage, error) {
	if max < 1 {
		return nil, fmt.Errorf("lineage of %s: max %d: must be at least 1", event, max)
	}
	rows, err := s.primary.QueryContext(ctx, withLimit(ctx, lineageTreeSQL), event, max)
	if err != nil {
		return nil, lineageError("read lineage", err)
	}
	defer rows.Close()
	var out []wire.Lineage
	for rows.Next() {
		var r wire.Lineage
		var op string
		var parent, tmpl, node, trace sql.NullString
		if err := rows.Scan(&r.Event, &parent, &op, &tmpl, &node, &r.Outcome, &r.Started, &r.DurationUS, &trace); err != nil {
			return nil, lineageError("read lineage", err)
		}
		r.Op = wire.Op(op)
		r.Parent, r.Template, r.Node, r.Trace = parent.String, tmpl.String, node.String, trace.String
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, lineageError("read lineage", err)
	}
	return out, nil
}

// CheckLineage checks that the lineage table exists, so a node that
// records lineage in this store can say so at start-up rather than drop
// its first batch. Ping does not check it: only the store configured for
// lineage needs the table.
func (s *Store) CheckLineage(ctx context.Context) error {
	if _, err := s.primary.ExecContext(ctx, "SELECT 1 FROM `"+lineageTable+"` LIMIT 0"); err != nil {
		return lineageError("check lineage", err)
	}
	return nil
}

// lineageError names the fix for a missing table and maps the rest as
// Exec's errors are mapped.
func lineageError(what string, err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == errNoTable {
		return fmt.Errorf("%s: table %s is missing: apply deploy/mariadb/000_beds.sql to this database", what, lineageTable)
	}
	return classify(fmt.Errorf("%s: %w", what, err), nil)
}
