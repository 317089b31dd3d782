package mariadb

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// The MariaDB objects bedsctl schema gen writes for a template, in one
// script: the table tbl_<tla>, the view and the procedures the template's
// [objects] names. How template types become columns:
//
//	string    VARCHAR(max) up to max = 1024; TEXT up to 16383 (what TEXT
//	          holds in utf8mb4); MEDIUMTEXT above, or without max.
//	          A string that is indexed (the key, unique, sortable, joined)
//	          needs a max of at most 768: an index entry holds 3072 bytes.
//	int       BIGINT (a key the database makes: AUTO_INCREMENT)
//	float     DOUBLE
//	bool      TINYINT(1)
//	datetime  DATETIME(6)
//	json      JSON
//
// The key is the PRIMARY KEY. An int key that create does not take as a
// parameter is AUTO_INCREMENT and create answers LAST_INSERT_ID(); a
// string key create does not take is a UUID() the create procedure makes
// (so its max must be at least 36); a key create takes is the caller's,
// which the create answers. A required field is NOT NULL, any other NULL.
// A readonly datetime is NOT NULL DEFAULT CURRENT_TIMESTAMP(6), the time
// the row was made (the DBA adds ON UPDATE CURRENT_TIMESTAMP(6) for a time
// of last change); any other readonly field is a NULL column the DBA
// fills (a DEFAULT, a trigger, the procedures). Each unique field gets a
// UNIQUE KEY uq_<stored>, each other sortable or joined field a KEY
// ix_<stored> (schema.Indexes).
//
// The procedures follow the calling convention (package doc): each takes
// Template.Params of its operation in order, named p_<field>, after the
// event ID (beds_event), and an update after the fields the request sets
// (beds_set) too; a readonly parameter is taken and ignored. Create
// inserts the row, update changes the columns beds_set names on the row
// of the key, delete deletes the row of the key, and each records its
// event (its INSERT into beds_events, deploy/mariadb/000_beds.sql) in a
// transaction of its own, or in its caller's when one holds the call (a
// write by filter, a batch), so a create, or an update or delete by key,
// is one statement (idempotency.go says why). Either way a redelivered
// write is applied once. The record is inserted where the procedure
// writes, not through CALL beds_record, which does the same with one
// nested CALL more (docs/performance.md, step 5, has the figures).

// Type limits of the generated columns.
const (
	maxVarchar   = 1024  // longest max written as VARCHAR
	maxText      = 16383 // longest max a TEXT column holds in utf8mb4 (65535 bytes)
	maxIndexed   = 768   // longest indexed string: 3072 bytes of utf8mb4 per index entry
	uuidLen      = 36    // characters of UUID()
	maxRowBudget = 65535 // bytes MariaDB allows for the columns of one row (TEXT and JSON count 12)
)

// GenerateSchema returns the MariaDB script that creates the objects
// serving t: the header (schema.Header), the table, the view and the
// procedures of the operations t allows. The text is deterministic: the
// same template gives the same bytes. An error says which field or name
// the generator cannot write and what to change.
func GenerateSchema(t *template.Template) ([]byte, error) {
	g, err := newSchemaGen(t)
	if err != nil {
		return nil, fmt.Errorf("template %s (%s): %w", t.Name, t.File, err)
	}
	return g.script(), nil
}

// schemaGen is one template's generation.
type schemaGen struct {
	t       *template.Template
	table   string
	types   map[*template.Field]string
	keyKind keyKind
}

// keyKind is who makes a record's key.
type keyKind int

const (
	keyAuto     keyKind = iota // AUTO_INCREMENT
	keyUUID                    // UUID() in the create procedure
	keyCaller                  // the caller, as a create parameter
	keyExternal                // a string key of a template without create: rows come from elsewhere
)

func newSchemaGen(t *template.Template) (*schemaGen, error) {
	if t.StoreKind != template.StoreMariaDB {
		return nil, fmt.Errorf("it is stored in %s (store kind %s), not MariaDB", t.Store, t.StoreKind)
	}
	g := &schemaGen{t: t, table: "tbl_" + t.TLA, types: map[*template.Field]string{}}
	indexed := map[*template.Field]string{}
	for _, ix := range schema.Indexes(t) {
		indexed[ix.Field] = ix.Why
	}
	budget := 0
	for _, f := range t.Fields {
		typ, size := columnType(f)
		if why, ok := indexed[f]; ok && f.Type == template.TypeString && (f.Max == 0 || f.Max > maxIndexed) {
			return nil, fmt.Errorf("field %s is indexed (%s): a MariaDB index holds strings of at most %d characters (utf8mb4); set max to at most %d", f.Name, why, maxIndexed, maxIndexed)
		}
		g.types[f] = typ
		budget += size
		if len("ix_"+f.Stored) > 64 {
			if _, ok := indexed[f]; ok {
				return nil, fmt.Errorf("field %s: the index name ix_%s is longer than 64 characters; shorten the stored name", f.Name, f.Stored)
			}
		}
	}
	if budget > maxRowBudget {
		return nil, fmt.Errorf("the columns take up to %d bytes a row, over MariaDB's %d: lower max on long string fields (above %d a string is TEXT, which counts 12 bytes)", budget, maxRowBudget, maxVarchar)
	}
	switch {
	case t.Allows(wire.OpCreate) && paramIndex(t.Params(wire.OpCreate), t.Key) >= 0:
		g.keyKind = keyCaller
	case t.Key.Type == template.TypeInt:
		g.keyKind = keyAuto
	case !t.Allows(wire.OpCreate):
		g.keyKind = keyExternal
	default:
		g.keyKind = keyUUID
		if t.Key.Max < uuidLen {
			return nil, fmt.Errorf("field %s: the key is made by the create procedure, as a UUID() of %d characters; set max to at least %d, or make create take it ([params] create)", t.Key.Name, uuidLen, uuidLen)
		}
	}
	stored := map[string]bool{}
	for _, f := range t.Fields {
		stored[strings.ToLower(f.Stored)] = true
	}
	for _, op := range []wire.Op{wire.OpCreate, wire.OpUpdate, wire.OpDelete} {
		for _, f := range t.Params(op) {
			p := paramName(f)
			if len(p) > 64 {
				return nil, fmt.Errorf("field %s: the parameter name %s is longer than 64 characters", f.Name, p)
			}
			if stored[p] {
				return nil, fmt.Errorf("field %s: the parameter name %s is also a stored column name, which a procedure would confuse with it; choose another stored name", f.Name, p)
			}
		}
	}
	return g, nil
}

// columnType returns f's column type and the bytes it counts toward the
// row size limit.
func columnType(f *template.Field) (string, int) {
	switch f.Type {
	case template.TypeString:
		switch {
		case f.Max > 0 && f.Max <= maxVarchar:
			return fmt.Sprintf("VARCHAR(%d)", f.Max), 4*f.Max + 2
		case f.Max > 0 && f.Max <= maxText:
			return "TEXT", 12
		}
		return "MEDIUMTEXT", 12
	case template.TypeInt:
		return "BIGINT", 8
	case template.TypeFloat:
		return "DOUBLE", 8
	case template.TypeBool:
		return "TINYINT(1)", 1
	case template.TypeDatetime:
		return "DATETIME(6)", 8
	}
	return "JSON", 12
}

// writeComment writes text as SQL comment lines of at most 78 characters.
func writeComment(b *bytes.Buffer, text string) {
	line := "--"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > 78 && line != "--" {
			b.WriteString(line + "\n")
			line = "--"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
}

func paramName(f *template.Field) string { return "p_" + f.Name }

func paramIndex(ps []*template.Field, f *template.Field) int {
	for i, p := range ps {
		if p == f {
			return i
		}
	}
	return -1
}

// q quotes an identifier; template names are [A-Za-z0-9_] (package
// template), so no backtick can occur.
func q(ident string) string { return "`" + ident + "`" }

// scriptNote follows the header of every generated script.
const scriptNote = `--
-- Callers read and count through the view and write through the
-- procedures, which take the template's parameter lists in order (calling
-- convention: package mariadb). Each takes the event ID first and records
-- it in beds_events (000_beds.sql) in the same transaction as
-- its write: its own, begun and committed by its BEDS skeleton, or its
-- caller's that holds the call. That applies a redelivered write once:
-- keep the table transactional (InnoDB), the skeletons as generated, and
-- the procedures otherwise free of COMMIT, ROLLBACK and statements that
-- commit by themselves (DDL).
`

func (g *schemaGen) script() []byte {
	var b bytes.Buffer
	t := g.t
	b.WriteString(schema.Header(t, "-- "))
	b.WriteString(scriptNote)
	g.writeTable(&b)
	if t.Objects.Read != "" {
		g.writeView(&b)
	}
	var procs []wire.Op
	for _, op := range []wire.Op{wire.OpCreate, wire.OpUpdate, wire.OpDelete} {
		if t.Allows(op) {
			procs = append(procs, op)
		}
	}
	if len(procs) > 0 {
		b.WriteString("\nDELIMITER //\n")
		for _, op := range procs {
			b.WriteByte('\n')
			switch op {
			case wire.OpCreate:
				g.writeCreate(&b)
			case wire.OpUpdate:
				g.writeUpdate(&b)
			case wire.OpDelete:
				g.writeDelete(&b)
			}
		}
		b.WriteString("\nDELIMITER ;\n")
	}
	return b.Bytes()
}

func (g *schemaGen) writeTable(b *bytes.Buffer) {
	t := g.t
	type line struct{ text, note string }
	var lines []line
	width, typeWidth := 0, 0
	for _, f := range t.Fields {
		width = max(width, len(q(f.Stored)))
		typeWidth = max(typeWidth, len(g.types[f]))
	}
	for _, f := range t.Fields {
		attrs := "NULL"
		switch {
		case f.Key && g.keyKind == keyAuto:
			attrs = "NOT NULL AUTO_INCREMENT"
		case f.Key:
			attrs = "NOT NULL"
		case f.Readonly && f.Type == template.TypeDatetime:
			attrs = "NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
		case f.Readonly:
			attrs = "NULL" // the DBA fills it: a DEFAULT, a trigger, the procedures
		case f.Required:
			attrs = "NOT NULL"
		}
		note := ""
		switch {
		case f.Key && g.keyKind == keyUUID:
			note = "the key: a UUID() the create procedure makes"
		case f.Key && g.keyKind == keyCaller:
			note = "the key: the caller names it on create"
		case f.Key && g.keyKind == keyExternal:
			note = "the key: the template allows no create, rows come from elsewhere"
		case f.Readonly && f.Type != template.TypeDatetime:
			note = "readonly: the DBA fills it (a DEFAULT, a trigger, the procedures)"
		}
		lines = append(lines, line{fmt.Sprintf("%-*s %-*s %s", width, q(f.Stored), typeWidth, g.types[f], attrs), note})
	}
	for _, ix := range schema.Indexes(t) {
		f := ix.Field
		switch {
		case f.Key:
			lines = append(lines, line{"PRIMARY KEY (" + q(f.Stored) + ")", ""})
		case ix.Unique:
			lines = append(lines, line{"UNIQUE KEY " + q("uq_"+f.Stored) + " (" + q(f.Stored) + ")", ix.Why})
		default:
			lines = append(lines, line{"KEY " + q("ix_"+f.Stored) + " (" + q(f.Stored) + ")", ix.Why})
		}
	}
	fmt.Fprintf(b, "\nCREATE TABLE IF NOT EXISTS %s (\n", q(g.table))
	for i, l := range lines {
		text := "  " + l.text
		if i < len(lines)-1 {
			text += ","
		}
		if l.note != "" {
			text += "  -- " + l.note
		}
		b.WriteString(strings.TrimRight(text, " ") + "\n")
	}
	b.WriteString(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;\n")
}

func (g *schemaGen) writeView(b *bytes.Buffer) {
	t := g.t
	b.WriteByte('\n')
	writeComment(b, "read and count, and the rows an update or delete changes: every field, by its stored name.")
	fmt.Fprintf(b, "CREATE OR REPLACE VIEW %s AS\nSELECT\n", q(t.Objects.Read))
	for i, f := range t.Fields {
		sep := ","
		if i == len(t.Fields)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "  %s%s\n", q(f.Stored), sep)
	}
	fmt.Fprintf(b, "FROM %s;\n", q(g.table))
}

// writeHead writes a procedure's comment, name and parameter list.
func (g *schemaGen) writeHead(b *bytes.Buffer, op wire.Op, name, what string) {
	ps := g.t.Params(op)
	names := make([]string, len(ps))
	for i, f := range ps {
		names[i] = f.Name
	}
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	decls := make([]string, 0, len(ps)+1)
	switch op {
	case wire.OpCreate:
		list = "beds_event (the event ID, NULL records nothing), then " + list
		decls = append(decls, q(eventParam)+" VARCHAR(200) CHARACTER SET ascii")
	case wire.OpDelete:
		list = "beds_event (the event ID, NULL records nothing), then " + list
		decls = append(decls, q(eventParam)+" VARCHAR(200) CHARACTER SET ascii")
	case wire.OpUpdate:
		list = "beds_event (the event ID, NULL records nothing), beds_set (the names of the fields the request sets, comma-separated), then " + list
		decls = append(decls, q(eventParam)+" VARCHAR(200) CHARACTER SET ascii", q(setParam)+" TEXT CHARACTER SET ascii")
	}
	writeComment(b, fmt.Sprintf("%s: parameters %s; %s.", op, list, what))
	for _, f := range ps {
		decls = append(decls, q(paramName(f))+" "+g.types[f])
	}
	fmt.Fprintf(b, "CREATE OR REPLACE PROCEDURE %s(", q(name))
	for i, d := range decls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n  IN " + d)
	}
	if len(decls) > 0 {
		b.WriteByte('\n')
	}
	b.WriteString(")\nBEGIN\n")
}

// settable returns the parameters of op whose columns the procedure
// writes: not readonly, and not the key of an update or delete.
func (g *schemaGen) settable(op wire.Op) []*template.Field {
	var out []*template.Field
	for _, f := range g.t.Params(op) {
		if f.Readonly || (f.Key && op != wire.OpCreate) || paramIndex(out, f) >= 0 {
			continue
		}
		out = append(out, f)
	}
	return out
}

func (g *schemaGen) writeCreate(b *bytes.Buffer) {
	t := g.t
	key := t.Key
	var what string
	switch g.keyKind {
	case keyAuto:
		what = "inserts the row and records the event with the new key, LAST_INSERT_ID(), which it answers"
	case keyUUID:
		what = "inserts the row and records the event with the new key, a UUID() it makes, which it answers"
	default:
		what = "inserts the row and records the event with the key the caller named, which it answers"
	}
	g.writeHead(b, wire.OpCreate, t.Objects.Create, what)
	if g.keyKind == keyUUID {
		g.writeSkeleton(b, fmt.Sprintf("DECLARE %s %s DEFAULT UUID();", q("v_key"), g.types[key]))
	} else {
		g.writeSkeleton(b, fmt.Sprintf("DECLARE %s %s;", q("v_key"), g.types[key]))
	}
	cols, vals := []string{}, []string{}
	if g.keyKind == keyUUID {
		cols, vals = append(cols, q(key.Stored)), append(vals, q("v_key"))
	}
	for _, f := range g.settable(wire.OpCreate) {
		cols, vals = append(cols, q(f.Stored)), append(vals, q(paramName(f)))
	}
	fmt.Fprintf(b, "  INSERT INTO %s (%s)\n  VALUES (%s);\n", q(g.table), strings.Join(cols, ", "), strings.Join(vals, ", "))
	switch g.keyKind {
	case keyAuto:
		fmt.Fprintf(b, "  SET %s = LAST_INSERT_ID();\n", q("v_key"))
	case keyCaller:
		fmt.Fprintf(b, "  SET %s = %s;\n", q("v_key"), q(paramName(key)))
	}
	fmt.Fprintf(b, "  IF %s IS NOT NULL THEN\n    %s;\n  END IF;\n",
		q(eventParam), recordSQL(t.Name, wire.OpCreate, "1", keyJSON(key, q("v_key"))))
	b.WriteString("  IF `beds_own` THEN COMMIT; END IF;\n")
	fmt.Fprintf(b, "  SELECT %s AS %s;\n", q("v_key"), q(key.Stored))
	b.WriteString("END//\n")
}

// writeSkeleton writes the start of a procedure that records its event:
// the transaction it owns unless its caller's holds the call, the
// variable decl, and the handler that rolls its own transaction back on
// any error and raises the error again. The procedure then writes,
// records and commits if it owns the transaction.
func (g *schemaGen) writeSkeleton(b *bytes.Buffer, decl string) {
	fmt.Fprintf(b, "  DECLARE %s BOOL DEFAULT @@in_transaction = 0; -- commit here unless a caller's transaction (BEDS's, a batch's) holds the call\n", q("beds_own"))
	b.WriteString("  " + decl + "\n")
	b.WriteString("  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN IF `beds_own` THEN ROLLBACK; END IF; RESIGNAL; END;\n")
	b.WriteString("  IF `beds_own` THEN START TRANSACTION; END IF;\n")
}

// recordSQL returns a generated procedure's insert of its event's record:
// its event ID parameter, template tmpl and op, and the SQL expressions of
// the rows it affected and of its key.
func recordSQL(tmpl string, op wire.Op, affected, key string) string {
	return insertRecord(q(eventParam), "'"+tmpl+"'", "'"+string(op)+"'", affected, key)
}

// keyJSON returns the SQL expression of the key in v as the adapter
// records it, json.Marshal's text: an int's digits, a string quoted.
func keyJSON(key *template.Field, v string) string {
	if key.Type == template.TypeInt {
		return "CAST(" + v + " AS CHAR)"
	}
	return "JSON_QUOTE(" + v + ")"
}

func (g *schemaGen) writeUpdate(b *bytes.Buffer) {
	t := g.t
	key := q(t.Key.Stored) + " = " + q(paramName(t.Key))
	g.writeHead(b, wire.OpUpdate, t.Objects.Update, "locks the row of the key, sets the column of each field beds_set names, and records the event with the rows it matched, which it answers (none: not found, nothing recorded)")
	g.writeSkeleton(b, "DECLARE "+q("beds_rows")+" BIGINT;")
	fmt.Fprintf(b, "  SELECT COUNT(*) INTO %s FROM %s WHERE %s FOR UPDATE;\n", q("beds_rows"), q(g.table), key)
	if set := g.settable(wire.OpUpdate); len(set) > 0 {
		fmt.Fprintf(b, "  UPDATE %s\n     SET ", q(g.table))
		for i, f := range set {
			if i > 0 {
				b.WriteString(",\n         ")
			}
			fmt.Fprintf(b, "%s = IF(FIND_IN_SET('%s', %s), %s, %s)", q(f.Stored), f.Name, q(setParam), q(paramName(f)), q(f.Stored))
		}
		fmt.Fprintf(b, "\n   WHERE %s;\n", key)
	}
	g.writeRecord(b, wire.OpUpdate)
}

// writeRecord writes the end of an update or delete procedure: the record
// of its event with the rows it matched, when it has an event and matched
// any, the commit of its own transaction, and the count as its answer.
func (g *schemaGen) writeRecord(b *bytes.Buffer, op wire.Op) {
	fmt.Fprintf(b, "  IF %s IS NOT NULL AND %s > 0 THEN\n    %s;\n  END IF;\n",
		q(eventParam), q("beds_rows"), recordSQL(g.t.Name, op, q("beds_rows"), "NULL"))
	b.WriteString("  IF `beds_own` THEN COMMIT; END IF;\n")
	fmt.Fprintf(b, "  SELECT %s AS %s;\nEND//\n", q("beds_rows"), q("beds_affected"))
}

func (g *schemaGen) writeDelete(b *bytes.Buffer) {
	t := g.t
	g.writeHead(b, wire.OpDelete, t.Objects.Delete, "deletes the row of the key and records the event with the rows it deleted, which it answers (none: not found, nothing recorded)")
	g.writeSkeleton(b, "DECLARE "+q("beds_rows")+" BIGINT;")
	fmt.Fprintf(b, "  DELETE FROM %s WHERE %s = %s;\n", q(g.table), q(t.Key.Stored), q(paramName(t.Key)))
	fmt.Fprintf(b, "  SET %s = ROW_COUNT();\n", q("beds_rows"))
	g.writeRecord(b, wire.OpDelete)
}
