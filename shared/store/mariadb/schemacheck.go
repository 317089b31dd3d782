package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/beds-project/beds/shared/schema"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

var _ schema.Checker = (*Store)(nil)

// CheckSchema implements schema.Checker: it compares the primary's
// current database with the templates ts through information_schema, and
// reports as a Difference
//
//   - a read object (view or table) that is missing, or lacks a column for
//     a field (its stored name), or has one whose type cannot hold the
//     field's values (typeFamilies), or a string column shorter than the
//     field's max;
//   - a write procedure that is missing, or whose parameters differ in
//     number from the template's parameter list, or one that is not IN or
//     whose type cannot hold its field's values;
//   - a create procedure whose first parameter is not beds_event, IN, a
//     string of at least 200 characters (the event ID, before the
//     template's parameters), or whose body does not record its event
//     (an INSERT into beds_events or a CALL of beds_record: the calling
//     convention, package doc);
//   - an update procedure whose first parameter is not beds_event (as a
//     create's), or whose second is not beds_set, IN, a string type long
//     enough for the names of all the template's update parameters
//     joined by commas (the fields the request sets, before the
//     template's parameters), or whose body does not record its event;
//   - a delete procedure whose first parameter is not beds_event (as a
//     create's), or whose body does not record its event;
//   - BEDS's procedure beds_record (deploy/mariadb/000_beds.sql) missing
//     while a write procedure's body calls it;
//   - a field of schema.Indexes without an index starting with its column
//     (a unique one on the column alone, for the key and unique fields) on
//     the table behind the read object;
//   - a table behind the read object of a template that writes, in an
//     engine without transactions (not InnoDB): BEDS applies a write once
//     through a transaction with its event record.
//
// Only the objects of the operations a template allows are checked; what
// the objects do (a procedure's body, a default) is the DBA's, but for a
// write procedure's record of its event, found by the name beds_events or
// beds_record in its body. A procedure's body is read from
// information_schema.ROUTINES, which shows it to its definer and accounts
// that may read mysql.proc only: a node's account (EXECUTE alone) sees no
// body and no beds_record, so neither is checked there, and bedsctl
// schema check as the DBA checks both. The table behind a read object is
// found through the view's definition
// (information_schema.VIEWS, which MariaDB writes with every column as
// `db`.`table`.`column` AS `alias`, through views on views too): a column
// the view computes (COALESCE(...) AS x), takes from another database, or
// a definition the account may not read (it needs SHOW VIEW), has no table
// behind it, and its index and engine are not checked.
func (s *Store) CheckSchema(ctx context.Context, ts []*template.Template) ([]schema.Difference, error) {
	var mine []*template.Template
	for _, t := range ts {
		if t.StoreKind == template.StoreMariaDB {
			mine = append(mine, t)
		}
	}
	c, err := s.readCatalog(ctx, mine)
	if err != nil {
		return nil, fmt.Errorf("schema check: %w", err)
	}
	var diffs []schema.Difference
	for _, t := range mine {
		diffs = append(diffs, c.check(t)...)
	}
	if c.bodies && !c.routines[recordProc] {
		for _, t := range mine {
			if caller := c.callsRecord(t); caller != "" {
				diffs = append(diffs, schema.Difference{Template: t.Name, Object: "procedure " + recordProc,
					Expected: "BEDS's procedure that records a create's, an update's or a delete's event, which " + caller + " calls (apply deploy/mariadb/000_beds.sql to this database)",
					Found:    "none"})
				break
			}
		}
	}
	schema.Sort(diffs)
	return diffs, nil
}

// catalog is what information_schema says about the objects the templates
// name and the tables behind them.
type catalog struct {
	db       string
	objects  map[string]dbObject            // tables and views of the database, by name
	views    map[string]string              // view name -> definition
	columns  map[string]map[string]dbColumn // read object -> lower-case column name -> column
	indexes  map[string][]dbIndex           // base table -> its indexes
	routines map[string]bool                // lower-case procedure names that exist
	body     map[string]sql.NullString      // lower-case procedure name -> its definition, NULL when the account may not read it
	bodies   bool                           // the account read some procedure's definition
	params   map[string][]dbParam           // lower-case procedure name -> parameters in order
}

type dbObject struct {
	kind   string // "VIEW", "BASE TABLE", ...
	engine string // "" for a view
}

type dbColumn struct {
	name, dataType, columnType string
	maxChars                   sql.NullInt64
}

type dbIndex struct {
	name    string
	unique  bool
	columns []string // lower-case, in index order
}

type dbParam struct {
	mode, name, dataType, dtd string
	maxChars                  sql.NullInt64
}

// readCatalog reads the catalog the checks of ts need: at most seven
// queries, whatever the number of templates.
func (s *Store) readCatalog(ctx context.Context, ts []*template.Template) (*catalog, error) {
	db := s.primary
	c := &catalog{objects: map[string]dbObject{}, views: map[string]string{}, columns: map[string]map[string]dbColumn{},
		indexes: map[string][]dbIndex{}, routines: map[string]bool{}, body: map[string]sql.NullString{}, params: map[string][]dbParam{}}
	var name sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&name); err != nil {
		return nil, classify(err, nil)
	}
	if !name.Valid {
		return nil, fmt.Errorf("the DSN names no database: add /<database> to it")
	}
	c.db = name.String
	err := queryCatalog(ctx, db, "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE, '') FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()", nil,
		func(rows *sql.Rows) error {
			var n string
			var o dbObject
			if err := rows.Scan(&n, &o.kind, &o.engine); err != nil {
				return err
			}
			c.objects[n] = o
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("information_schema.TABLES: %w", err)
	}
	err = queryCatalog(ctx, db, "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()", nil,
		func(rows *sql.Rows) error {
			var n, def string
			if err := rows.Scan(&n, &def); err != nil {
				return err
			}
			c.views[n] = def
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("information_schema.VIEWS: %w", err)
	}

	var reads, procs, bases []string
	for _, t := range ts {
		if r := readObject(t); r != "" && !slices.Contains(reads, r) {
			reads = append(reads, r)
		}
		if records(t) && !slices.Contains(procs, recordProc) {
			procs = append(procs, recordProc)
		}
		for _, op := range []wire.Op{wire.OpCreate, wire.OpUpdate, wire.OpDelete} {
			if p := procObject(t, op); p != "" && !slices.Contains(procs, strings.ToLower(p)) {
				procs = append(procs, strings.ToLower(p))
			}
		}
	}
	for _, r := range reads {
		for _, src := range c.lineage(r) {
			if !slices.Contains(bases, src.table) {
				bases = append(bases, src.table)
			}
		}
	}
	if len(reads) > 0 {
		err = queryCatalog(ctx, db, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ("+marks(len(reads))+")", reads,
			func(rows *sql.Rows) error {
				var tbl string
				var col dbColumn
				if err := rows.Scan(&tbl, &col.name, &col.dataType, &col.columnType, &col.maxChars); err != nil {
					return err
				}
				if c.columns[tbl] == nil {
					c.columns[tbl] = map[string]dbColumn{}
				}
				c.columns[tbl][strings.ToLower(col.name)] = col
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("information_schema.COLUMNS: %w", err)
		}
	}
	if len(bases) > 0 {
		err = queryCatalog(ctx, db, "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ("+marks(len(bases))+") ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX", bases,
			func(rows *sql.Rows) error {
				var tbl, ix, col string
				var nonUnique int
				if err := rows.Scan(&tbl, &ix, &nonUnique, &col); err != nil {
					return err
				}
				list := c.indexes[tbl]
				if n := len(list); n > 0 && list[n-1].name == ix {
					list[n-1].columns = append(list[n-1].columns, strings.ToLower(col))
					return nil
				}
				c.indexes[tbl] = append(list, dbIndex{name: ix, unique: nonUnique == 0, columns: []string{strings.ToLower(col)}})
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("information_schema.STATISTICS: %w", err)
		}
	}
	if len(procs) > 0 {
		err = queryCatalog(ctx, db, "SELECT ROUTINE_NAME, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE = 'PROCEDURE' AND ROUTINE_NAME IN ("+marks(len(procs))+")", procs,
			func(rows *sql.Rows) error {
				var n string
				var def sql.NullString
				if err := rows.Scan(&n, &def); err != nil {
					return err
				}
				c.routines[strings.ToLower(n)] = true
				c.body[strings.ToLower(n)] = def
				c.bodies = c.bodies || def.Valid
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("information_schema.ROUTINES: %w", err)
		}
		err = queryCatalog(ctx, db, "SELECT SPECIFIC_NAME, COALESCE(PARAMETER_MODE, ''), COALESCE(PARAMETER_NAME, ''), DATA_TYPE, DTD_IDENTIFIER, CHARACTER_MAXIMUM_LENGTH FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = DATABASE() AND ROUTINE_TYPE = 'PROCEDURE' AND SPECIFIC_NAME IN ("+marks(len(procs))+") ORDER BY SPECIFIC_NAME, ORDINAL_POSITION", procs,
			func(rows *sql.Rows) error {
				var proc string
				var p dbParam
				if err := rows.Scan(&proc, &p.mode, &p.name, &p.dataType, &p.dtd, &p.maxChars); err != nil {
					return err
				}
				proc = strings.ToLower(proc)
				c.params[proc] = append(c.params[proc], p)
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("information_schema.PARAMETERS: %w", err)
		}
	}
	return c, nil
}

// queryCatalog runs stmt with args and calls each for every row.
func queryCatalog(ctx context.Context, db *sql.DB, stmt string, args []string, each func(*sql.Rows) error) error {
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a
	}
	rows, err := db.QueryContext(ctx, stmt, vals...)
	if err != nil {
		return classify(err, nil)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// marks returns n comma-separated placeholders.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// readObject is the view or table t's allowed operations read through, or
// "" when none needs one.
func readObject(t *template.Template) string {
	for _, op := range []wire.Op{wire.OpRead, wire.OpCount, wire.OpUpdate, wire.OpDelete} {
		if t.Allows(op) {
			return t.Objects.Read
		}
	}
	return ""
}

// records reports whether t has a procedure that records its event: t
// creates, updates or deletes.
func records(t *template.Template) bool {
	return procObject(t, wire.OpCreate) != "" || procObject(t, wire.OpUpdate) != "" || procObject(t, wire.OpDelete) != ""
}

// procObject is the procedure of write op, or "" when t does not allow it.
func procObject(t *template.Template, op wire.Op) string {
	if !t.Allows(op) {
		return ""
	}
	switch op {
	case wire.OpCreate:
		return t.Objects.Create
	case wire.OpUpdate:
		return t.Objects.Update
	case wire.OpDelete:
		return t.Objects.Delete
	}
	return ""
}

// source is the base table column a view column comes from.
type source struct{ table, column string }

// viewColumnRE matches one item of a view's select list as MariaDB writes
// it when the item is a plain column, after "select " or a comma:
// `db`.`table`.`column` AS `alias`, or `name`.`column` AS `alias` where
// name is an alias or a view of the FROM clause. The text after the match
// must end the item.
var viewColumnRE = regexp.MustCompile("(?:^select |^select distinct |,)(?:`([^`]+)`\\.)?`([^`]+)`\\.`([^`]+)` AS `([^`]+)`")

// viewTableRE matches a table of a view's FROM clause as MariaDB writes it:
// `db`.`table`, and its alias if it has one. (It also matches the start of
// a three-part column; that maps a table's name to itself, which is true.)
var viewTableRE = regexp.MustCompile("(?:from |join |,|\\()`([^`]+)`\\.`([^`]+)`(?: `([^`]+)`)?")

// lineage maps the lower-case column names of the read object obj to the
// base table columns they come from, following views on views; a column
// that is computed or comes from another database has none. A base table
// maps "" to itself: its columns are their own source.
func (c *catalog) lineage(obj string) map[string]source {
	return c.lineageDepth(obj, 0)
}

func (c *catalog) lineageDepth(obj string, depth int) map[string]source {
	o, ok := c.objects[obj]
	if !ok || depth > 8 {
		return nil
	}
	def, isView := c.views[obj]
	if !isView {
		if o.kind != "BASE TABLE" {
			return nil
		}
		return map[string]source{"": {table: obj}}
	}
	names := map[string]string{} // alias or table name in the FROM clause -> table or view
	for _, m := range viewTableRE.FindAllStringSubmatch(def, -1) {
		if m[1] != c.db {
			continue
		}
		if m[3] != "" {
			names[m[3]] = m[2]
		} else {
			names[m[2]] = m[2]
		}
	}
	out := map[string]source{}
	for _, m := range viewColumnRE.FindAllStringSubmatchIndex(def, -1) {
		if end := m[1]; end < len(def) && def[end] != ',' && def[end] != ' ' {
			continue
		}
		var tbl string
		if m[2] >= 0 { // `db`.`table`.`column`
			if def[m[2]:m[3]] != c.db {
				continue
			}
			tbl = def[m[4]:m[5]]
		} else if tbl = names[def[m[4]:m[5]]]; tbl == "" {
			continue
		}
		col, alias := strings.ToLower(def[m[6]:m[7]]), strings.ToLower(def[m[8]:m[9]])
		under := c.lineageDepth(tbl, depth+1)
		if self, ok := under[""]; ok {
			out[alias] = source{table: self.table, column: col}
		} else if src, ok := under[col]; ok {
			out[alias] = src
		}
	}
	return out
}

// sourceOf returns the base table column behind column col of obj.
func (c *catalog) sourceOf(obj, col string) (source, bool) {
	lin := c.lineage(obj)
	if self, ok := lin[""]; ok {
		return source{table: self.table, column: strings.ToLower(col)}, true
	}
	src, ok := lin[strings.ToLower(col)]
	return src, ok
}

// typeFamilies lists the DATA_TYPE values (information_schema) whose
// columns and parameters hold each template type's values. MariaDB's JSON
// is LONGTEXT with a check, so it is text here.
var typeFamilies = map[template.Type][]string{
	template.TypeString:   {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"},
	template.TypeInt:      {"tinyint", "smallint", "mediumint", "int", "bigint"},
	template.TypeFloat:    {"float", "double", "decimal"},
	template.TypeBool:     {"tinyint", "smallint", "mediumint", "int", "bigint", "bit"},
	template.TypeDatetime: {"datetime", "timestamp", "date"},
	template.TypeJSON:     {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json"},
}

// typeLabel says which types hold a field's values, for Expected.
func typeLabel(f *template.Field) string {
	switch f.Type {
	case template.TypeString:
		return "a string type (char, varchar, text)"
	case template.TypeInt:
		return "an integer type"
	case template.TypeFloat:
		return "a floating or decimal type"
	case template.TypeBool:
		return "an integer type such as TINYINT(1)"
	case template.TypeDatetime:
		return "a datetime, timestamp or date type"
	}
	return "a text type such as JSON"
}

// holds reports whether a column or parameter of dataType, maxChars
// characters long, holds f's values; short says it is of a fitting type
// but shorter than f's max.
func holds(f *template.Field, dataType string, maxChars sql.NullInt64) (ok, short bool) {
	if !slices.Contains(typeFamilies[f.Type], strings.ToLower(dataType)) {
		return false, false
	}
	dt := strings.ToLower(dataType)
	if f.Type == template.TypeString && f.Max > 0 && (dt == "char" || dt == "varchar") && maxChars.Valid && maxChars.Int64 < int64(f.Max) {
		return false, true
	}
	return true, false
}

// check returns the differences of one template.
func (c *catalog) check(t *template.Template) []schema.Difference {
	var diffs []schema.Difference
	add := func(object, expected, found string) {
		diffs = append(diffs, schema.Difference{Template: t.Name, Object: object, Expected: expected, Found: found})
	}
	if r := readObject(t); r != "" {
		c.checkRead(t, r, add)
	}
	for _, op := range []wire.Op{wire.OpCreate, wire.OpUpdate, wire.OpDelete} {
		if p := procObject(t, op); p != "" {
			c.checkProc(t, op, p, add)
		}
	}
	return diffs
}

func (c *catalog) checkRead(t *template.Template, r string, add func(object, expected, found string)) {
	o, ok := c.objects[r]
	object := "view " + r
	if ok && o.kind == "BASE TABLE" {
		object = "table " + r
	}
	if !ok {
		add(object, fmt.Sprintf("a view with a column for each of the %d fields", len(t.Fields)), "none")
		return
	}
	cols := c.columns[r]
	for _, f := range t.Fields {
		col, ok := cols[strings.ToLower(f.Stored)]
		if !ok {
			add(object, fmt.Sprintf("column %s (field %s, %s)", f.Stored, f.Name, f.Type), "none")
			continue
		}
		if ok, short := holds(f, col.dataType, col.maxChars); short {
			add(object, fmt.Sprintf("column %s holding %d characters (field %s, max %d)", f.Stored, f.Max, f.Name, f.Max), "column "+col.name+" "+col.columnType)
		} else if !ok {
			add(object, fmt.Sprintf("column %s of %s (field %s, %s)", f.Stored, typeLabel(f), f.Name, f.Type), "column "+col.name+" "+col.columnType)
		}
	}
	writes := t.Allows(wire.OpCreate) || t.Allows(wire.OpUpdate) || t.Allows(wire.OpDelete)
	engines := map[string]bool{}
	for _, ix := range schema.Indexes(t) {
		f := ix.Field
		if _, ok := cols[strings.ToLower(f.Stored)]; !ok {
			continue // reported above
		}
		src, ok := c.sourceOf(r, f.Stored)
		if !ok {
			continue // computed, or from elsewhere: not checked (see CheckSchema)
		}
		if writes && !engines[src.table] {
			engines[src.table] = true
			if e := c.objects[src.table].engine; !strings.EqualFold(e, "InnoDB") {
				add("table "+src.table, "a transactional engine, InnoDB (BEDS applies each write once, in a transaction with its event record)", "engine "+e)
			}
		}
		var found []string
		served := false
		for _, dix := range c.indexes[src.table] {
			if dix.columns[0] != src.column {
				continue
			}
			if !ix.Unique || (dix.unique && len(dix.columns) == 1) {
				served = true
				break
			}
			kind := "not unique"
			if dix.unique {
				kind = "unique on " + strings.Join(dix.columns, ", ")
			}
			found = append(found, dix.name+" ("+kind+")")
		}
		if served {
			continue
		}
		want := fmt.Sprintf("an index starting with %s (field %s: %s)", src.column, f.Name, ix.Why)
		if ix.Unique {
			want = fmt.Sprintf("a unique index on %s alone (field %s: %s)", src.column, f.Name, ix.Why)
		}
		got := "none"
		if len(found) > 0 {
			got = strings.Join(found, ", ")
		}
		add("table "+src.table, want, got)
	}
}

func (c *catalog) checkProc(t *template.Template, op wire.Op, proc string, add func(object, expected, found string)) {
	object := "procedure " + proc
	want := t.Params(op)
	names := make([]string, 0, len(want)+1)
	first := 0 // the template's parameters start here
	switch op {
	case wire.OpCreate, wire.OpDelete:
		names, first = append(names, eventParam), 1
	case wire.OpUpdate:
		names, first = append(names, eventParam, setParam), 2
	}
	for _, f := range want {
		names = append(names, f.Name)
	}
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	if !c.routines[strings.ToLower(proc)] {
		add(object, fmt.Sprintf("a procedure taking %d parameters (%s)", len(names), list), "none")
		return
	}
	got := c.params[strings.ToLower(proc)]
	if len(got) != len(names) {
		gotNames := make([]string, len(got))
		for i, p := range got {
			gotNames[i] = p.name
		}
		found := fmt.Sprintf("%d (%s)", len(got), strings.Join(gotNames, ", "))
		old := len(got) == len(want) && (len(got) == 0 || !strings.EqualFold(got[0].name, eventParam))
		switch {
		case op == wire.OpCreate && old:
			add(object, fmt.Sprintf("%d parameters (%s): the event ID first (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the others and record it with an INSERT into beds_events, as the create skeleton it writes does; see deploy/mariadb/000_beds.sql)", len(names), list), found)
		case op == wire.OpUpdate && old:
			add(object, fmt.Sprintf("%d parameters (%s): the event ID and the names of the fields the request sets first (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii and IN beds_set TEXT CHARACTER SET ascii before the others and the update skeleton it writes, which merges with FIND_IN_SET and records the event in beds_events; see docs/templates.md and deploy/mariadb/000_beds.sql)", len(names), list), found)
		case op == wire.OpDelete && old:
			add(object, fmt.Sprintf("%d parameters (%s): the event ID first (regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the others and the delete skeleton it writes, which records the event in beds_events and answers the rows it deleted; see docs/templates.md and deploy/mariadb/000_beds.sql)", len(names), list), found)
		case op == wire.OpUpdate && len(got) == len(want)+1 && strings.EqualFold(got[0].name, eventParam) && (len(got) < 2 || !strings.EqualFold(got[1].name, setParam)):
			add(object, fmt.Sprintf("%d parameters (%s): the names of the fields the request sets second (regenerate with bedsctl schema gen, or add IN beds_set TEXT CHARACTER SET ascii after beds_event and merge each column with IF(FIND_IN_SET('<field>', beds_set), p_<field>, <column>); see docs/templates.md)", len(names), list), found)
		default:
			add(object, fmt.Sprintf("%d parameters (%s)", len(names), list), found)
		}
		return
	}
	switch op {
	case wire.OpCreate, wire.OpDelete:
		c.checkEvent(proc, op, got[0], add)
	case wire.OpUpdate:
		c.checkEvent(proc, op, got[0], add)
		checkSet(proc, want, got[1], add)
	}
	for i, f := range want {
		p := got[first+i]
		n := first + i + 1
		if !strings.EqualFold(p.mode, "IN") {
			add(object, fmt.Sprintf("parameter %d (field %s) IN", n, f.Name), fmt.Sprintf("%s %s", p.mode, p.name))
			continue
		}
		if ok, short := holds(f, p.dataType, p.maxChars); short {
			add(object, fmt.Sprintf("parameter %d holding %d characters (field %s, max %d)", n, f.Max, f.Name, f.Max), p.name+" "+p.dtd)
		} else if !ok {
			add(object, fmt.Sprintf("parameter %d of %s (field %s, %s)", n, typeLabel(f), f.Name, f.Type), p.name+" "+p.dtd)
		}
	}
}

// checkEvent checks the event ID a write procedure of op takes before the
// template's parameters, p, its first, and the record of the event in its
// body when the account may read the body.
func (c *catalog) checkEvent(proc string, op wire.Op, p dbParam, add func(object, expected, found string)) {
	object := "procedure " + proc
	fix := "regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the template's parameters; see deploy/mariadb/000_beds.sql"
	record := fmt.Sprintf("a body that records its event: INSERT INTO %s (evt_id, ...) VALUES (%s, ...), or CALL %s(%s, ...), after the insert, in its transaction (regenerate with bedsctl schema gen, or add the create skeleton it writes; see deploy/mariadb/000_beds.sql)", eventsTable, eventParam, recordProc, eventParam)
	switch op {
	case wire.OpUpdate:
		fix = "regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before beds_set and the template's parameters; see docs/templates.md and deploy/mariadb/000_beds.sql"
		record = fmt.Sprintf("a body that records its event: INSERT INTO %s (evt_id, ...) VALUES (%s, ...), or CALL %s(%s, ...), after the update, with the rows it matched, in its transaction (regenerate with bedsctl schema gen, or add the update skeleton it writes; see docs/templates.md and deploy/mariadb/000_beds.sql)", eventsTable, eventParam, recordProc, eventParam)
	case wire.OpDelete:
		fix = "regenerate with bedsctl schema gen, or add IN beds_event VARCHAR(200) CHARACTER SET ascii before the template's parameters; see docs/templates.md and deploy/mariadb/000_beds.sql"
		record = fmt.Sprintf("a body that records its event: INSERT INTO %s (evt_id, ...) VALUES (%s, ...), or CALL %s(%s, ...), after the delete, with the rows it deleted, in its transaction (regenerate with bedsctl schema gen, or add the delete skeleton it writes; see docs/templates.md and deploy/mariadb/000_beds.sql)", eventsTable, eventParam, recordProc, eventParam)
	}
	str := slices.Contains(typeFamilies[template.TypeString], strings.ToLower(p.dataType))
	long := !p.maxChars.Valid || p.maxChars.Int64 >= eventChars
	if !strings.EqualFold(p.name, eventParam) || !strings.EqualFold(p.mode, "IN") || !str || !long {
		add(object, fmt.Sprintf("parameter 1 IN %s, a string of at least %d characters: the event ID (%s)", eventParam, eventChars, fix),
			fmt.Sprintf("%s %s %s", p.mode, p.name, p.dtd))
	}
	if def := c.body[strings.ToLower(proc)]; def.Valid && !recordsEvent(def.String) {
		add(object, record, "a body that names neither "+eventsTable+" nor "+recordProc)
	}
}

// recordsEvent reports whether a procedure's body records its event: it
// names beds_events (its own insert) or beds_record (BEDS's procedure
// that inserts the same row).
func recordsEvent(body string) bool {
	body = strings.ToLower(body)
	return strings.Contains(body, eventsTable) || strings.Contains(body, recordProc)
}

// callsRecord returns the write procedure of t whose body (when the
// account may read it) calls beds_record, or "".
func (c *catalog) callsRecord(t *template.Template) string {
	for _, op := range []wire.Op{wire.OpCreate, wire.OpUpdate, wire.OpDelete} {
		p := procObject(t, op)
		if p == "" {
			continue
		}
		if def := c.body[strings.ToLower(p)]; def.Valid && strings.Contains(strings.ToLower(def.String), recordProc) {
			return "procedure " + p
		}
	}
	return ""
}

// setTypes lists the DATA_TYPE values of a beds_set parameter: the
// character types that hold any list of names (not ENUM or SET).
var setTypes = []string{"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}

// checkSet checks an update procedure's second parameter, p: beds_set,
// IN, of a character type that holds the names of all of params (the
// template's update parameters), comma-separated, which is the longest
// list the adapter passes (setList).
func checkSet(proc string, params []*template.Field, p dbParam, add func(object, expected, found string)) {
	var names []string
	for _, f := range params {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	need := max(len(strings.Join(names, ",")), 1)
	str := slices.Contains(setTypes, strings.ToLower(p.dataType))
	long := !p.maxChars.Valid || p.maxChars.Int64 >= int64(need)
	if !strings.EqualFold(p.name, setParam) || !strings.EqualFold(p.mode, "IN") || !str || !long {
		add("procedure "+proc, fmt.Sprintf("parameter 2 IN %s, a string of at least %d characters: the names of the fields the request sets, comma-separated (regenerate with bedsctl schema gen, or declare IN %s TEXT CHARACTER SET ascii after beds_event; see docs/templates.md)", setParam, need, setParam),
			fmt.Sprintf("%s %s %s", p.mode, p.name, p.dtd))
	}
}
