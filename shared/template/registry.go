package template

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Registry holds the templates a node loaded. It is read-only after Load
// and safe for concurrent use.
type Registry struct {
	byName map[string]*Template
	names  []string
}

// Load parses and validates every *.toml file in dir, in name order. Any
// invalid file, or two files with one template name, fails the whole load:
// a node never serves a partial set of domains.
func Load(dir string, stores map[string]string) (*Registry, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("template folder %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("template folder: %w", err)
	}
	slices.Sort(files)
	r := &Registry{byName: map[string]*Template{}}
	var errs []error
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("template %s: %w", file, err))
			continue
		}
		t, err := Parse(file, src, stores)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := r.byName[t.Name]; dup {
			errs = append(errs, &Error{File: file, Line: locate(src)["name"],
				Reason: fmt.Sprintf("template name %q is already used by %s", t.Name, prev.File)})
			continue
		}
		r.byName[t.Name] = t
		r.names = append(r.names, t.Name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.Sort(r.names)
	return r, nil
}

// NewRegistry builds a registry from already parsed templates.
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

// Get returns the template called name, or nil.
func (r *Registry) Get(name string) *Template { return r.byName[name] }

// Names returns the template names in order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Len returns the number of templates.
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
