package template

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/beds-project/beds/shared/wire"
)

// The file format of both kinds; see templates/example_rec.toml and
// templates/user_orders_rel.toml for every option. recKeys and relKeys say
// which keys belong to one kind only.
type fileFormat struct {
	Name        string `toml:"name"`
	Kind        string `toml:"kind"`
	Description string `toml:"description"`

	// REC templates.
	TLA     string                 `toml:"tla"`
	Store   string                 `toml:"store"`
	Fields  map[string]fieldFormat `toml:"fields"`
	Objects objectsFormat          `toml:"objects"`
	Params  map[string][]string    `toml:"params"`
	Ops     struct {
		Allow []string `toml:"allow"`
	} `toml:"ops"`
	Access map[string]any `toml:"access"` // checked key by key in access.go

	// REL templates.
	Parent      string `toml:"parent"`
	Child       string `toml:"child"`
	As          string `toml:"as"`
	Cardinality string `toml:"cardinality"`
	On          struct {
		Parent string `toml:"parent"`
		Child  string `toml:"child"`
	} `toml:"on"`
}

// The top-level keys that belong to one kind only, in the order a file
// using the wrong ones is reported.
var (
	recKeys = []string{"tla", "store", "fields", "objects", "params", "ops", "access"}
	relKeys = []string{"parent", "child", "as", "cardinality", "on"}
)

type fieldFormat struct {
	Type     string `toml:"type"`
	Key      bool   `toml:"key"`
	Required bool   `toml:"required"`
	Readonly bool   `toml:"readonly"`
	Max      int    `toml:"max"`
	Stored   string `toml:"stored"`
	// Sortable is a pointer so that an absent attribute can default to
	// true on the key and false elsewhere.
	Sortable *bool `toml:"sortable"`
	Unique   bool  `toml:"unique"`
}

type objectsFormat struct {
	Read       string `toml:"read"`
	Create     string `toml:"create"`
	Update     string `toml:"update"`
	Delete     string `toml:"delete"`
	Collection string `toml:"collection"`
}

// Parse validates one REC template file's contents. stores maps every
// store name known to the node to its kind (StoreMariaDB or StoreMongo).
//
// The steps run in a fixed order and each stops at its first problem, so a
// file with several problems always reports the same one.
//
// A REL template file is refused: a relation is checked against the REC
// templates it relates, which Load does for a whole folder.
func Parse(file string, src []byte, stores map[string]string) (*Template, error) {
	pf, err := parseFile(file, src, stores)
	if err != nil {
		return nil, err
	}
	if pf.rel != nil {
		return nil, pf.rel.p.fail("kind", "kind rel: a relation is checked against the rec templates it relates; validate the folder that holds them (template.Load, bedsctl templates)")
	}
	return pf.rec, nil
}

// parsedFile is one file after the checks it can pass on its own: a REC
// template, or a REL file that Load resolves once every REC template is
// loaded.
type parsedFile struct {
	name string // the name the file declares, also when it is invalid; "" if unknown
	rec  *Template
	rel  *relFile
}

// parseFile runs the checks one file can pass without the others.
func parseFile(file string, src []byte, stores map[string]string) (parsedFile, error) {
	p := &parser{file: file, lines: locate(src)}
	if err := p.decode(src); err != nil {
		return parsedFile{}, err
	}
	out := parsedFile{name: p.ff.Name}
	kind, err := p.identity()
	if err != nil {
		return out, err
	}
	if kind == KindRel {
		rel, err := p.relation()
		if err != nil {
			return out, err
		}
		out.rel = rel
		return out, nil
	}
	t, err := p.home(stores)
	if err != nil {
		return out, err
	}
	if err := p.fields(t); err != nil {
		return out, err
	}
	if err := p.ops(t); err != nil {
		return out, err
	}
	if err := p.objects(t); err != nil {
		return out, err
	}
	if err := p.params(t); err != nil {
		return out, err
	}
	if err := p.access(t); err != nil {
		return out, err
	}
	if err := p.lint(t); err != nil {
		return out, err
	}
	out.rec = t
	return out, nil
}

// parser holds one file through the steps of Parse.
type parser struct {
	file  string
	lines map[string]int // key path -> line, from locate
	ff    fileFormat
	md    toml.MetaData
}

// fail returns a validation error at the line of key.
func (p *parser) fail(key, format string, args ...any) error {
	return &Error{File: p.file, Line: lineOf(p.lines, key), Reason: fmt.Sprintf(format, args...)}
}

// decode reads the TOML and rejects any key the format does not have.
func (p *parser) decode(src []byte) error {
	md, err := toml.Decode(string(src), &p.ff)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &Error{File: p.file, Line: pe.Position.Line, Reason: pe.Message}
		}
		return &Error{File: p.file, Reason: err.Error()}
	}
	p.md = md
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return p.fail(k, "unknown key %q", k)
	}
	return nil
}

// identity checks the name and the kind, and that the file has no key of
// the other kind.
func (p *parser) identity() (Kind, error) {
	ff := &p.ff
	switch {
	case ff.Name == "":
		return "", p.fail("", "name is missing")
	case !nameRE.MatchString(ff.Name):
		return "", p.fail("name", "name %q: use lowercase letters, digits and _, starting with a letter", ff.Name)
	}
	kind := Kind(ff.Kind)
	switch kind {
	case KindRec:
		for _, k := range relKeys {
			if p.md.IsDefined(k) {
				return "", p.fail(k, "%s applies to rel templates only (kind = \"rel\"), which relate two rec templates", k)
			}
		}
	case KindRel:
		for _, k := range recKeys {
			if p.md.IsDefined(k) {
				return "", p.fail(k, "%s does not belong in a rel template: it relates two rec templates, whose files hold the store, fields, objects, ops and access", k)
			}
		}
	case "":
		return "", p.fail("", "kind is missing: rec or rel")
	default:
		return "", p.fail("kind", "kind %q: must be rec or rel", ff.Kind)
	}
	return kind, nil
}

// home checks a REC template's tla and store, and starts the template.
func (p *parser) home(stores map[string]string) (*Template, error) {
	ff := &p.ff
	t := &Template{
		Name: ff.Name, TLA: ff.TLA, Kind: KindRec, Store: ff.Store, File: p.file,
		byName: map[string]*Field{}, allow: map[wire.Op]bool{},
	}
	if !tlaRE.MatchString(t.TLA) {
		return nil, p.fail("tla", "tla %q: must be three lowercase letters", t.TLA)
	}
	if t.Store == "" {
		return nil, p.fail("", "store is missing")
	}
	kind, ok := stores[t.Store]
	if !ok {
		return nil, p.fail("store", "store %q is not configured (known: %s)", t.Store, strings.Join(sortedKeys(stores), ", "))
	}
	t.StoreKind = kind
	return t, nil
}

// fields adds the fields in declaration order: the TOML metadata lists keys
// as they appear, which a Go map would lose.
func (p *parser) fields(t *Template) error {
	kind := t.StoreKind
	for _, k := range p.md.Keys() {
		if len(k) != 2 || k[0] != "fields" {
			continue
		}
		name := k[1]
		spec := p.ff.Fields[name]
		at := "fields." + name
		if !nameRE.MatchString(name) {
			return p.fail(at, "field %q: use lowercase letters, digits and _, starting with a letter", name)
		}
		if name == "and" || name == "or" {
			return p.fail(at, "field %q: and and or are reserved by the filter language, which combines conditions with them; choose another name", name)
		}
		f := &Field{
			Name: name, Type: Type(spec.Type), Key: spec.Key, Required: spec.Required,
			Readonly: spec.Readonly, Max: spec.Max, Stored: spec.Stored, Index: len(t.Fields),
			Sortable: spec.Key, Unique: spec.Unique,
		}
		if spec.Sortable != nil {
			f.Sortable = *spec.Sortable
		}
		if f.Stored == "" {
			f.Stored = t.TLA + "_" + name
			if f.Key && kind == StoreMongo {
				f.Stored = "_id"
			}
		}
		switch {
		case spec.Type == "":
			return p.fail(at, "field %s: type is missing (string, int, float, bool, datetime, json)", name)
		case !f.Type.Valid():
			return p.fail(at, "field %s: type %q is unknown (string, int, float, bool, datetime, json)", name, spec.Type)
		case f.Max < 0:
			return p.fail(at, "field %s: max must not be negative", name)
		case f.Max > 0 && f.Type != TypeString:
			return p.fail(at, "field %s: max applies to string fields only", name)
		case f.Key && f.Type != TypeInt && f.Type != TypeString:
			return p.fail(at, "field %s: a key must be int or string", name)
		case f.Key && t.Key != nil:
			return p.fail(at, "field %s: %s is already the key; a template has one key", name, t.Key.Name)
		case f.Sortable && f.Type == TypeJSON:
			return p.fail(at, "field %s: a json field cannot be sortable", name)
		case f.Unique && f.Key:
			return p.fail(at, "field %s: the key is unique already; drop unique", name)
		case f.Unique && f.Type == TypeJSON:
			return p.fail(at, "field %s: a json field cannot be unique", name)
		}
		if err := checkStoredName(kind, f); err != nil {
			return p.fail(at, "field %s: %v", name, err)
		}
		for _, g := range t.Fields {
			if g.Stored == f.Stored {
				return p.fail(at, "field %s: stored name %s is already used by field %s", name, f.Stored, g.Name)
			}
		}
		if f.Key {
			t.Key = f
		}
		t.Fields = append(t.Fields, f)
		t.names = append(t.names, name)
		t.byName[name] = f
	}
	if len(t.Fields) == 0 {
		return p.fail("fields", "no fields: declare them under [fields]")
	}
	if t.Key == nil {
		return p.fail("fields", "no key field: mark one field with key = true")
	}
	return nil
}

func checkStoredName(kind string, f *Field) error {
	if kind == StoreMongo {
		if f.Stored == "_id" && !f.Key {
			return fmt.Errorf("stored name _id is reserved for the key")
		}
		if strings.HasPrefix(f.Stored, "_beds") {
			return fmt.Errorf("stored name %q: names starting with _beds are reserved for BEDS's own fields (the event stamp)", f.Stored)
		}
		if f.Stored != "_id" && !identRE.MatchString(f.Stored) {
			return fmt.Errorf("stored name %q: letters, digits and _ only", f.Stored)
		}
		return nil
	}
	if !identRE.MatchString(f.Stored) {
		return fmt.Errorf("stored name %q: letters, digits and _ only, at most 64", f.Stored)
	}
	return nil
}

// ops reads the operations callers may run.
func (p *parser) ops(t *Template) error {
	if len(p.ff.Ops.Allow) == 0 {
		return p.fail("ops", "ops.allow is empty: list the operations callers may run")
	}
	for _, op := range p.ff.Ops.Allow {
		o := wire.Op(op)
		if !o.Valid() || o == wire.OpPing {
			return p.fail("ops.allow", "ops.allow: %q is not an operation (create, read, update, delete, count)", op)
		}
		t.allow[o] = true
	}
	return nil
}

// objects checks the objects that serve the template: a MongoDB template's
// collection, or the MariaDB view and procedures its operations need.
func (p *parser) objects(t *Template) error {
	t.Objects = Objects(p.ff.Objects)
	o := t.Objects
	if t.StoreKind == StoreMongo {
		if o.Read != "" || o.Create != "" || o.Update != "" || o.Delete != "" {
			return p.fail("objects", "objects: a MongoDB template names only its collection")
		}
		if o.Collection == "" {
			return p.fail("objects", "objects.collection is missing: name the MongoDB collection")
		}
		if !collRE.MatchString(o.Collection) || strings.HasPrefix(o.Collection, "system.") {
			return p.fail("objects.collection", "objects.collection %q is not a usable collection name", o.Collection)
		}
		return nil
	}
	if o.Collection != "" {
		return p.fail("objects.collection", "objects.collection applies to MongoDB templates; this one uses store %s", t.Store)
	}
	need := map[string]string{} // object key -> ops needing it
	add := func(key string, op wire.Op) {
		if t.allow[op] {
			need[key] += " " + string(op)
		}
	}
	add("read", wire.OpRead)
	add("read", wire.OpCount)
	add("read", wire.OpUpdate) // update and delete read the matching rows first
	add("read", wire.OpDelete)
	add("create", wire.OpCreate)
	add("update", wire.OpUpdate)
	add("delete", wire.OpDelete)
	// A fixed order, so a template with two problems always reports the same one.
	for _, kv := range [...][2]string{{"read", o.Read}, {"create", o.Create}, {"update", o.Update}, {"delete", o.Delete}} {
		key, name := kv[0], kv[1]
		if name == "" {
			if ops, ok := need[key]; ok {
				return p.fail("objects", "objects.%s is missing: ops%s need it", key, ops)
			}
			continue
		}
		if !identRE.MatchString(name) {
			return p.fail("objects."+key, "objects.%s %q: letters, digits and _ only, at most 64", key, name)
		}
	}
	return nil
}

// params sets the procedure parameter lists: the defaults, each replaced
// by the template's [params] entry for its operation, if any.
func (p *parser) params(t *Template) error {
	t.params = defaultParams(t)
	for op, names := range p.ff.Params {
		o := wire.Op(op)
		if !o.Writes() {
			return p.fail("params."+op, "params.%s: only create, update and delete take parameters", op)
		}
		if t.StoreKind != StoreMariaDB {
			return p.fail("params."+op, "params apply to MariaDB procedures only")
		}
		list := make([]*Field, 0, len(names))
		for _, n := range names {
			f := t.byName[n]
			if f == nil {
				return p.fail("params."+op, "params.%s: field %q is not declared", op, n)
			}
			list = append(list, f)
		}
		if (o == wire.OpUpdate || o == wire.OpDelete) && (len(list) == 0 || list[0] != t.Key) {
			return p.fail("params."+op, "params.%s: the first parameter must be the key %s", op, t.Key.Name)
		}
		t.params[o] = list
	}
	return nil
}

// locate maps each key path ("name", "fields", "fields.email") to the line
// it is written on, so validation errors can point at it. It reads only
// table headers and "key =" lines, which is all the template format uses.
func locate(src []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	for i, raw := range bytes.Split(src, []byte("\n")) {
		line := strings.TrimSpace(string(raw))
		n := i + 1
		switch {
		case line == "" || line[0] == '#':
			continue
		case strings.HasPrefix(line, "["):
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue
			}
			table = strings.TrimSpace(strings.Trim(line[:end], "[]"))
			if _, ok := lines[table]; !ok {
				lines[table] = n
			}
		default:
			eq := strings.IndexByte(line, '=')
			if eq < 0 {
				continue
			}
			key := strings.Trim(strings.TrimSpace(line[:eq]), `"'`)
			if table != "" {
				key = table + "." + key
			}
			if _, ok := lines[key]; !ok {
				lines[key] = n
			}
		}
	}
	return lines
}

// lineOf returns the line of key, or of the nearest enclosing key that
// locate found (an unknown key inside an inline table such as
// fields.email.tpye is reported at the line of fields.email), or 0.
func lineOf(lines map[string]int, key string) int {
	for {
		if n, ok := lines[key]; ok {
			return n
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
