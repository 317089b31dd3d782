// Package crud serves template operations: it looks the request's template
// up, builds a validated query, runs it on the template's store and turns
// the result into a reply. It is the dispatcher's handler on appservers.
package crud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// Handler answers data requests for every template in its registry.
type Handler struct {
	templates *template.Registry
	stores    map[string]store.Store // by store name
	limits    store.Limits
	retry     Retry
}

// Retry bounds retries of a store that answered unavailable.
type Retry struct {
	Attempts int           // tries in all (minimum 1)
	Backoff  time.Duration // first pause, doubled after each try
}

var _ dispatch.Handler = (*Handler)(nil)

// New returns a handler. Every store a template names must be in stores.
func New(templates *template.Registry, stores map[string]store.Store, limits store.Limits, retry Retry) (*Handler, error) {
	for _, name := range templates.Names() {
		t := templates.Get(name)
		if stores[t.Store] == nil {
			return nil, fmt.Errorf("template %s: store %s is not open", name, t.Store)
		}
	}
	retry.Attempts = max(retry.Attempts, 1)
	return &Handler{templates: templates, stores: stores, limits: limits, retry: retry}, nil
}

// Handle implements dispatch.Handler.
func (h *Handler) Handle(ctx context.Context, m *dispatch.Message) *wire.Reply {
	req := m.Request
	if req.Op == wire.OpPing {
		return &wire.Reply{OK: true, Event: m.Event}
	}
	t := h.templates.Get(req.Template)
	if t == nil {
		return wire.ErrorReply(m.Event, wire.Errorf(wire.CodeUnknownTemplate, "no template named %q", req.Template))
	}
	q, err := store.Build(t, m.Event, req, h.limits)
	if err != nil {
		return h.fail(m, err)
	}
	res, err := h.exec(ctx, m, h.stores[t.Store], q)
	if err != nil {
		return h.fail(m, err)
	}
	return &wire.Reply{
		OK: true, Event: m.Event, Rows: res.Rows, Count: res.Count, Affected: res.Affected, Key: res.Key,
		Columns: columns(t, q),
	}
}

// exec runs q, trying again while the store is unavailable, within the
// attempts and the request's deadline. Writes are safe to try again: the
// store applies each event ID once.
func (h *Handler) exec(ctx context.Context, m *dispatch.Message, s store.Store, q *store.Query) (*store.Result, error) {
	pause := h.retry.Backoff
	for attempt := 1; ; attempt++ {
		res, err := s.Exec(ctx, q)
		var we *wire.Error
		if err == nil || attempt >= h.retry.Attempts || !errors.As(err, &we) || we.Code != wire.CodeUnavailable {
			return res, err
		}
		m.Log().Warn("store unavailable; trying again", "store", q.Template.Store, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// columns orders the reply's row keys as the template declares them.
func columns(t *template.Template, q *store.Query) []string {
	if q.Op != wire.OpRead {
		return nil
	}
	if len(q.Fields) == len(t.Fields) && &q.Fields[0] == &t.Fields[0] {
		return t.Names()
	}
	names := make([]string, len(q.Fields))
	for i, f := range q.Fields {
		names[i] = f.Name
	}
	return names
}

// fail turns an error into a reply; errors the contract does not name are
// logged here with their detail and answered internal.
func (h *Handler) fail(m *dispatch.Message, err error) *wire.Reply {
	we, known := wire.AsError(err)
	if !known {
		m.Log().Error("store failed", "template", m.Request.Template, "op", m.Request.Op, "err", err)
	}
	return wire.ErrorReply(m.Event, we)
}
