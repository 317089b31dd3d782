package account

import (
	"context"
	"sync/atomic"
	"time"
)

// Purger deletes ended sessions (expired, or idle past the timeout) and
// failed logins older than the attempts window, every [tercero]
// purge_interval, in batches of purge_batch, each delete under its own
// event ID. It is an ipl.Service: it runs until its context ends.
type Purger struct {
	h     *Handler
	ready atomic.Bool
}

// Purger returns the purge service of h.
func (h *Handler) Purger() *Purger { return &Purger{h: h} }

// Name implements ipl.Service.
func (p *Purger) Name() string { return "purge" }

// Ready implements ipl.Service: the purge is ready while it runs.
func (p *Purger) Ready() bool { return p.ready.Load() }

// Run purges every purge_interval until ctx ends. A failed pass is logged
// and the next one tries again.
func (p *Purger) Run(ctx context.Context) error {
	p.ready.Store(true)
	defer p.ready.Store(false)
	t := time.NewTicker(p.h.cfg.Tercero.PurgeInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sessions, failures, err := p.Once(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.h.log.Warn("purge failed; trying again next interval", "sessions", sessions, "failures", failures, "err", err)
		case sessions > 0 || failures > 0:
			p.h.log.Info("purged", "sessions", sessions, "failures", failures)
		}
	}
}

// Once runs one purge pass and returns how many sessions and failures it
// deleted.
func (p *Purger) Once(ctx context.Context) (sessions, failures int64, err error) {
	h := p.h
	tc := h.cfg.Tercero
	now := h.now()
	sessions, err = h.sessions.deleteAll(ctx, filter{"or": []filter{
		{"expires": filter{"lt": stamp(now)}},
		{"seen": filter{"lt": stamp(now.Add(-tc.IdleTimeout.D()))}},
	}}, tc.PurgeBatch, h.ids.New)
	if err != nil {
		return sessions, 0, err
	}
	failures, err = h.failures.deleteAll(ctx, filter{"at": filter{"lt": stamp(now.Add(-tc.Attempts.Window.D()))}}, tc.PurgeBatch, h.ids.New)
	return sessions, failures, err
}
