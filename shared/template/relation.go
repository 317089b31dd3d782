package template

import (
	"strings"

	"github.com/beds-project/beds/shared/wire"
)

// Relation is a validated REL template: how rows of Parent include rows of
// Child. A read of Parent that names As in its include gets, in each row,
// the Child rows whose ChildField equals the row's ParentField: a list of
// them when Many, else the one row or null. Parent and Child may be the
// same template, and may live in different stores.
type Relation struct {
	Name        string    // the REL template's name
	As          string    // include name under a parent row
	Parent      *Template // the template whose rows include
	Child       *Template // the template whose rows are included
	ParentField *Field    // field of Parent
	ChildField  *Field    // field of Child
	Many        bool      // one-to-many: a list; false: many-to-one (ChildField is Child's key)
	File        string    // file it was loaded from
	Description string
}

// relFile is a REL template file that passed the checks it can pass on its
// own; Load resolves it against the REC templates (Registry.resolve).
type relFile struct {
	p           *parser
	name        string
	description string
	parent      string
	child       string
	as          string // "" when the file leaves it to default to the child's name
	many        bool
	onParent    string
	onChild     string
}

// relation reads a REL template file's own keys.
func (p *parser) relation() (*relFile, error) {
	ff := &p.ff
	rf := &relFile{
		p: p, name: ff.Name, description: ff.Description, parent: ff.Parent, child: ff.Child,
		as: ff.As, onParent: ff.On.Parent, onChild: ff.On.Child,
	}
	switch {
	case rf.parent == "":
		return nil, p.fail("", "parent is missing: name the rec template whose rows include the child rows")
	case rf.child == "":
		return nil, p.fail("", "child is missing: name the rec template whose rows are included")
	case rf.onParent == "":
		return nil, p.fail("on", "on.parent is missing: name the field of %s whose value the child rows match", rf.parent)
	case rf.onChild == "":
		return nil, p.fail("on", "on.child is missing: name the field of %s that matches on.parent", rf.child)
	}
	switch ff.Cardinality {
	case "", "many":
		rf.many = true
	case "one":
	default:
		return nil, p.fail("cardinality", "cardinality %q: must be many (a list of child rows) or one (the child row or null)", ff.Cardinality)
	}
	if rf.as != "" {
		if err := p.checkAs("as", rf.as); err != nil {
			return nil, err
		}
	}
	return rf, nil
}

// checkAs checks an include name, reported at the line of key.
func (p *parser) checkAs(key, as string) error {
	if !nameRE.MatchString(as) {
		return p.fail(key, "as %q: use lowercase letters, digits and _, starting with a letter", as)
	}
	if as == "and" || as == "or" {
		return p.fail(key, "as %q: and and or are reserved by the filter language; set as to another name", as)
	}
	return nil
}

// resolve checks a REL file against the registry's REC templates and adds
// its relation. The checks run in a fixed order, like Parse's.
func (r *Registry) resolve(rf *relFile) error {
	p := rf.p
	parent, child := r.byName[rf.parent], r.byName[rf.child]
	switch {
	case parent == nil:
		return p.fail("parent", "parent %q is not a rec template (known: %s)", rf.parent, strings.Join(r.names, ", "))
	case child == nil:
		return p.fail("child", "child %q is not a rec template (known: %s)", rf.child, strings.Join(r.names, ", "))
	case !parent.Allows(wire.OpRead):
		return p.fail("parent", "parent %s does not allow read: include is part of a read of the parent", parent.Name)
	case !child.Allows(wire.OpRead):
		return p.fail("child", "child %s does not allow read: include reads the child rows through its read path; add read to its ops.allow", child.Name)
	}
	as, asKey := rf.as, "as"
	if as == "" {
		as, asKey = child.Name, "child"
		if err := p.checkAs(asKey, as); err != nil {
			return err
		}
	}
	pf, cf := parent.Field(rf.onParent), child.Field(rf.onChild)
	switch {
	case pf == nil:
		return p.fail("on.parent", "on.parent %q is not a field of %s (fields: %s)", rf.onParent, parent.Name, strings.Join(parent.Names(), ", "))
	case cf == nil:
		return p.fail("on.child", "on.child %q is not a field of %s (fields: %s)", rf.onChild, child.Name, strings.Join(child.Names(), ", "))
	case pf.Type != TypeInt && pf.Type != TypeString:
		return p.fail("on.parent", "on.parent %s.%s is %s: join fields must be int or string", parent.Name, pf.Name, pf.Type)
	case cf.Type != TypeInt && cf.Type != TypeString:
		return p.fail("on.child", "on.child %s.%s is %s: join fields must be int or string", child.Name, cf.Name, cf.Type)
	case pf.Type != cf.Type:
		return p.fail("on.child", "on.child %s.%s is %s but on.parent %s.%s is %s: join fields must have one type", child.Name, cf.Name, cf.Type, parent.Name, pf.Name, pf.Type)
	case !rf.many && !cf.Key:
		return p.fail("on.child", "on.child %s.%s: cardinality one needs the key of %s (%s), so that a parent row matches at most one child row", child.Name, cf.Name, child.Name, child.Key.Name)
	case parent.Field(as) != nil:
		return p.fail(asKey, "as %q is a field of %s: the child rows would hide it; set as to another name", as, parent.Name)
	}
	if prev := r.Relation(parent, as); prev != nil {
		return p.fail(asKey, "as %q: %s rows already include %s through relation %s (%s)", as, parent.Name, as, prev.Name, prev.File)
	}
	rel := &Relation{
		Name: rf.name, As: as, Parent: parent, Child: child, ParentField: pf, ChildField: cf,
		Many: rf.many, File: p.file, Description: rf.description,
	}
	if r.rels == nil {
		r.rels = map[string][]*Relation{}
	}
	r.rels[parent.Name] = append(r.rels[parent.Name], rel)
	cf.Joined = true // the child's store indexes it (package schema)
	r.relNames = append(r.relNames, rel.Name)
	return nil
}
