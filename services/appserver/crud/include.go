package crud

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// An inclusion is one relation a read includes, with the relations
// included below it: one node of the plan a read's include paths make.
type inclusion struct {
	rel   *template.Relation
	path  string        // "orders.items", for messages
	event string        // its child event ID
	owner *access.Owner // the child query's owner restriction, if any
	next  []*inclusion
}

// plan resolves a read's include paths against t's relations: a tree of
// inclusions, each a child event of the read (event.1, event.2, ... in
// the order the paths first name them; event.1.1 below event.1). A path
// implies its prefixes: "orders.items" fetches orders too. Each relation
// needs caller to be allowed to read its child template.
func (h *Handler) plan(t *template.Template, event string, paths []string, caller *wire.Identity) ([]*inclusion, error) {
	lim := h.limits
	if len(paths) > lim.MaxInclude {
		return nil, wire.FieldError(wire.CodeTooLarge, "include", "%d include paths: at most %d", len(paths), lim.MaxInclude)
	}
	var top []*inclusion
	for _, p := range paths {
		names := strings.Split(p, ".")
		if len(names) > lim.MaxIncludeDepth {
			return nil, wire.FieldError(wire.CodeTooLarge, "include", "include %q is %d relations deep: at most %d", p, len(names), lim.MaxIncludeDepth)
		}
		at, level, parentEvent := t, &top, event
		for i, name := range names {
			path := strings.Join(names[:i+1], ".")
			j := slices.IndexFunc(*level, func(inc *inclusion) bool { return inc.rel.As == name })
			if j < 0 {
				rel := h.templates.Relation(at, name)
				if rel == nil {
					return nil, wire.FieldError(wire.CodeBadField, "include", "include %q: template %s has no relation %q (relations: %s)", p, at.Name, name, relationList(h.templates, at))
				}
				var owner *access.Owner
				if h.cfg.Policy != nil {
					var err error
					if owner, err = h.cfg.Policy.Allow(rel.Child, wire.OpRead, caller); err != nil {
						return nil, includeError(path, err)
					}
				}
				*level = append(*level, &inclusion{rel: rel, path: path, event: lineage.Child(parentEvent, len(*level)+1), owner: owner})
				j = len(*level) - 1
			}
			inc := (*level)[j]
			at, level, parentEvent = inc.rel.Child, &inc.next, inc.event
		}
	}
	return top, nil
}

// relationList names the relations a read of t may include.
func relationList(r *template.Registry, t *template.Template) string {
	rels := r.Relations(t)
	if len(rels) == 0 {
		return "none"
	}
	names := make([]string, len(rels))
	for i, rel := range rels {
		names[i] = rel.As
	}
	return strings.Join(names, ", ")
}

// needFields adds to a read's fields the parent fields its inclusions
// join on, which the reply then carries too.
func needFields(q *store.Query, plan []*inclusion) {
	for _, inc := range plan {
		if !slices.Contains(q.Fields, inc.rel.ParentField) {
			q.Fields = append(q.Fields[:len(q.Fields):len(q.Fields)], inc.rel.ParentField)
		}
	}
}

// include fetches the inclusions of plan for rows, each level's relations
// concurrently, and nests the rows it finds under their parent rows. The
// first failure cancels the rest and fails the read.
func (r *request) include(ctx context.Context, rows []wire.Row, plan []*inclusion) error {
	if len(rows) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		attach sync.Mutex // siblings nest their rows into the same parent rows
		once   sync.Once
		first  error // the failure that cancelled the others
	)
	for _, inc := range plan {
		// Read the join values before any sibling starts nesting rows
		// into the same parent rows.
		keys := joinKeys(rows, inc.rel.ParentField.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.fetch(ctx, rows, keys, inc, &attach); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	return first
}

// fetch runs one inclusion: one query on the child template, an in on
// keys (the parent rows' join values), then the inclusions below it on
// the rows it found.
func (r *request) fetch(ctx context.Context, rows []wire.Row, keys []any, inc *inclusion, attach *sync.Mutex) error {
	h, rel := r.h, inc.rel
	var found []wire.Row
	if len(keys) > 0 {
		if len(keys) > h.limits.MaxInList {
			return wire.FieldError(wire.CodeTooLarge, "include", "include %s: %d %s values to look up, at most %d (limits.max_in_list); read fewer rows",
				inc.path, len(keys), rel.ParentField.Name, h.limits.MaxInList)
		}
		child := rel.Child
		q := &store.Query{
			Event: inc.event, Template: child, Op: wire.OpRead,
			Filter: &store.Expr{Cond: &store.Cond{Field: rel.ChildField, Op: store.OpIn, Value: keys}},
			Fields: child.Fields, Sort: []store.Sort{{Field: child.Key}}, Limit: h.limits.MaxIncludeRows + 1,
		}
		if inc.owner != nil {
			q.Filter = ownedFilter(q.Filter, inc.owner)
		}
		res, err := r.child(ctx, inc.event, q, h.stores[child.Store])
		if err != nil {
			return includeError(inc.path, err)
		}
		if err := r.take(len(res.Rows)); err != nil {
			return includeError(inc.path, err)
		}
		if len(res.Rows) > h.limits.MaxIncludeRows {
			return wire.FieldError(wire.CodeTooLarge, "include", "include %s: more than %d rows (limits.max_include_rows); read fewer rows or include less",
				inc.path, h.limits.MaxIncludeRows)
		}
		found = res.Rows
	}
	nest(rows, rel, found, attach)
	if len(inc.next) == 0 {
		return nil
	}
	return r.include(ctx, found, inc.next)
}

// includeError names the inclusion a failure belongs to.
func includeError(path string, err error) error {
	we, _ := wire.AsError(err) // child logged and answers what the contract does not name as internal
	out := *we
	out.Message = "include " + path + ": " + we.Message
	if out.Field == "" {
		out.Field = "include"
	}
	return &out
}

// joinKeys returns the distinct non-null values of field in rows, as the
// in list of the child query.
func joinKeys(rows []wire.Row, field string) []any {
	seen := make(map[any]bool, len(rows))
	keys := make([]any, 0, len(rows))
	for _, row := range rows {
		k, ok := joinKey(row[field])
		if ok && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// joinKey normalises a join value (an int or a string field, as either
// store reads it) so equal values compare equal.
func joinKey(v any) (any, bool) {
	switch x := v.(type) {
	case int64, string:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n, true
		}
		return string(x), true
	}
	return nil, false
}

// nest puts the found child rows under their parent rows: a list under a
// many relation (empty when none matched), the row or null under a one.
func nest(rows []wire.Row, rel *template.Relation, found []wire.Row, attach *sync.Mutex) {
	if rel.Many {
		groups := make(map[any][]wire.Row)
		for _, c := range found {
			if k, ok := joinKey(c[rel.ChildField.Name]); ok {
				groups[k] = append(groups[k], c)
			}
		}
		attach.Lock()
		defer attach.Unlock()
		for _, row := range rows {
			k, _ := joinKey(row[rel.ParentField.Name])
			list := groups[k]
			if list == nil {
				list = []wire.Row{}
			}
			row[rel.As] = list
		}
		return
	}
	one := make(map[any]wire.Row, len(found))
	for _, c := range found {
		if k, ok := joinKey(c[rel.ChildField.Name]); ok {
			one[k] = c
		}
	}
	attach.Lock()
	defer attach.Unlock()
	for _, row := range rows {
		k, _ := joinKey(row[rel.ParentField.Name])
		row[rel.As] = one[k] // a nil wire.Row: null
	}
}
