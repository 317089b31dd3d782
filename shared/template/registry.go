package template

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Registry holds the templates a node loaded: REC templates by name, and
// the relations between them. It is read-only after Load and safe for
// concurrent use.
type Registry struct {
	byName   map[string]*Template
	names    []string
	rels     map[string][]*Relation // by parent template name, sorted by As
	relNames []string
}

// Load parses and validates every *.toml file in dir, in name order: the
// REC templates first, then each REL template against them. Any invalid
// file, two files with one template name (of either kind), or two REC
// templates with one TLA, fails the whole load: a node never serves a
// partial set of domains. The lint (lint.go) runs on every file;
// Warnings returns what it found.
//
// A relation naming a template whose own file is invalid is not checked
// further, so that one broken file is reported once.
func Load(dir string, stores map[string]string) (*Registry, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("template folder %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("template folder: %w", err)
	}
	slices.Sort(files)
	return load(files, os.ReadFile, stores)
}

// LoadFS is Load for the *.toml files at the top of fsys, such as the
// templates a role embeds in its binary; file names in errors are the
// names within fsys.
func LoadFS(fsys fs.FS, stores map[string]string) (*Registry, error) {
	files, err := fs.Glob(fsys, "*.toml")
	if err != nil {
		return nil, fmt.Errorf("template files: %w", err)
	}
	slices.Sort(files)
	return load(files, func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) }, stores)
}

// load parses and validates files, read with read, as Load describes.
func load(files []string, read func(string) ([]byte, error), stores map[string]string) (*Registry, error) {
	r := &Registry{byName: map[string]*Template{}}
	var (
		errs    []error
		rels    []*relFile
		seen    = map[string]string{}    // every name declared, REC or REL -> its file
		failed  = map[string]bool{}      // names declared by invalid files
		tlas    = map[string]*Template{} // TLA -> the REC template using it
		unnamed bool                     // an invalid file whose name is unknown
	)
	for _, file := range files {
		src, err := read(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("template %s: %w", file, err))
			unnamed = true
			continue
		}
		pf, err := parseFile(file, src, stores)
		if err != nil {
			errs = append(errs, err)
			if pf.name == "" {
				unnamed = true
			}
			failed[pf.name] = true
			continue
		}
		if prev, dup := seen[pf.name]; dup {
			errs = append(errs, &Error{File: file, Line: locate(src)["name"],
				Reason: fmt.Sprintf("template name %q is already used by %s", pf.name, prev)})
			continue
		}
		seen[pf.name] = file
		if pf.rel != nil {
			rels = append(rels, pf.rel)
			continue
		}
		if prev, dup := tlas[pf.rec.TLA]; dup {
			errs = append(errs, &Error{File: file, Line: locate(src)["tla"],
				Reason: fmt.Sprintf("tla %q is already used by template %s (%s): stored names and object names carry the TLA, so each domain needs its own", pf.rec.TLA, prev.Name, prev.File)})
			continue
		}
		tlas[pf.rec.TLA] = pf.rec
		r.byName[pf.name] = pf.rec
		r.names = append(r.names, pf.name)
	}
	slices.Sort(r.names)
	if !unnamed {
		for _, rf := range rels {
			if failed[rf.parent] || failed[rf.child] {
				continue
			}
			if err := r.resolve(rf); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, list := range r.rels {
		slices.SortFunc(list, func(a, b *Relation) int { return cmp.Compare(a.As, b.As) })
	}
	slices.Sort(r.relNames)
	return r, nil
}

// NewRegistry builds a registry from already parsed REC templates; it has
// no relations (Load builds those from REL template files).
func NewRegistry(ts ...*Template) (*Registry, error) {
	r := &Registry{byName: map[string]*Template{}}
	for _, t := range ts {
		if prev, dup := r.byName[t.Name]; dup {
			return nil, fmt.Errorf("template name %q is used by %s and %s", t.Name, prev.File, t.File)
		}
		r.byName[t.Name] = t
		r.names = append(r.names, t.Name)
	}
	slices.Sort(r.names)
	return r, nil
}

// Get returns the REC template called name, or nil. A REL template's name
// is not a template callers can run operations on: Get returns nil for it.
func (r *Registry) Get(name string) *Template { return r.byName[name] }

// Names returns the REC template names in order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Len returns the number of REC templates.
func (r *Registry) Len() int { return len(r.names) }

// Stores returns the store names the templates use, in order.
func (r *Registry) Stores() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range r.names {
		if s := r.byName[n].Store; !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Relation returns the relation through which rows of parent include rows
// under the name as, or nil if there is none. parent is matched by name.
func (r *Registry) Relation(parent *Template, as string) *Relation {
	if parent == nil {
		return nil
	}
	for _, rel := range r.rels[parent.Name] {
		if rel.As == as {
			return rel
		}
	}
	return nil
}

// Relations returns the relations whose parent is parent, sorted by As.
// The slice is shared: do not modify it.
func (r *Registry) Relations(parent *Template) []*Relation {
	if parent == nil {
		return nil
	}
	return r.rels[parent.Name]
}

// Warnings returns the lint warnings of every REC template, by template
// name, then line.
func (r *Registry) Warnings() []*Error {
	var out []*Error
	for _, n := range r.names {
		out = append(out, r.byName[n].warnings...)
	}
	return out
}

// RelationNames returns the names of the REL templates in order.
func (r *Registry) RelationNames() []string { return slices.Clone(r.relNames) }
