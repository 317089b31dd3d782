package access

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/wire"
)

// TerceroConfig configures a TerceroResolver.
type TerceroConfig struct {
	// URL is RabbitMQ's, with the node's user: the resolver publishes op
	// whoami to the beds exchange as any client does.
	URL string
	// Name identifies the connection in RabbitMQ's tools.
	Name string
	// Timeout bounds one question to tercero ([access] resolve_timeout).
	Timeout time.Duration
	// TTL is how long an answer is kept ([access] cache); 0 keeps none.
	TTL time.Duration
	// Size bounds the answers kept ([access] cache_size); 0 keeps none.
	Size int
	// Log receives the resolver's own events: tercero stopped or started
	// answering, the connection's reconnects.
	Log *slog.Logger
}

// TerceroResolver is the appserver's Resolver: it asks tercero who holds
// a token (op whoami) and keeps the answers for a while, by the rules of
// the package. It is a node service (Name, Run, Ready): Run connects to
// RabbitMQ and closes the connection when its context ends; until it has
// connected, Resolve answers unavailable.
type TerceroResolver struct {
	cfg    TerceroConfig
	log    *slog.Logger
	client atomic.Pointer[client.Client]
	down   atomic.Bool // tercero's last answer was none, for logging a change once
	stats  struct{ hits, asked, unauthenticated, unavailable atomic.Int64 }

	mu    sync.Mutex
	cache answers
	calls map[[sha256.Size]byte]*question // the questions in flight, by token hash

	now    func() time.Time
	joined func() // tests: a Resolve that missed the cache waits on its question
}

// NewTerceroResolver returns a resolver that asks tercero through
// RabbitMQ at cfg.URL once it runs.
func NewTerceroResolver(cfg TerceroConfig) *TerceroResolver {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = "beds-resolver"
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TerceroResolver{
		cfg: cfg, log: log, now: time.Now,
		cache: answers{size: cfg.Size, ttl: cfg.TTL, byKey: map[[sha256.Size]byte]*list.Element{}},
		calls: map[[sha256.Size]byte]*question{},
	}
}

var _ Resolver = (*TerceroResolver)(nil)

// Name implements ipl.Service.
func (r *TerceroResolver) Name() string { return "resolver" }

// Ready implements ipl.Service: the resolver is connected to RabbitMQ.
func (r *TerceroResolver) Ready() bool { return r.client.Load() != nil }

// Run implements ipl.Service: it connects, trying again with backoff
// until it can, and closes the connection when ctx ends.
func (r *TerceroResolver) Run(ctx context.Context) error {
	pause := 100 * time.Millisecond
	var c *client.Client
	for {
		var err error
		c, err = client.Dial(ctx, r.cfg.URL, client.Options{Name: r.cfg.Name, Channels: 2, Timeout: r.cfg.Timeout, Log: r.log})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("resolver cannot connect to RabbitMQ; trying again", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
	r.client.Store(c)
	<-ctx.Done()
	r.client.Store(nil)
	return c.Close()
}

// question is one whoami in flight, which every Resolve of its token
// that misses the cache meanwhile waits for.
type question struct {
	done chan struct{}
	id   *wire.Identity
	err  error
}

// Resolve implements Resolver: the cached answer for token, or tercero's.
// A caller may not modify the identity it gets.
func (r *TerceroResolver) Resolve(ctx context.Context, token string) (*wire.Identity, error) {
	key := sha256.Sum256([]byte(token))
	r.mu.Lock()
	if a, ok := r.cache.get(key, r.now()); ok {
		r.mu.Unlock()
		r.stats.hits.Add(1)
		return a.id, a.err
	}
	q, asking := r.calls[key], false
	if q == nil {
		q, asking = &question{done: make(chan struct{})}, true
		r.calls[key] = q
	}
	r.mu.Unlock()
	if r.joined != nil {
		r.joined()
	}
	if asking {
		r.ask(ctx, key, token, q)
	}
	select {
	case <-q.done:
		return q.id, q.err
	case <-ctx.Done():
		return nil, wire.Errorf(wire.CodeUnavailable, "the session could not be resolved before the request's deadline")
	}
}

// ask puts q to tercero, keeps the answer when it is one to keep, and
// wakes every Resolve waiting for it. The question runs to its own
// timeout even when the asker's ctx ends first: others may wait for it.
func (r *TerceroResolver) ask(ctx context.Context, key [sha256.Size]byte, token string, q *question) {
	q.id, q.err = r.whoami(ctx, token)
	r.mu.Lock()
	delete(r.calls, key)
	var we *wire.Error
	switch {
	case q.err == nil:
		until := r.now().Add(r.cfg.TTL)
		if exp := q.id.Expires; !exp.IsZero() && exp.Before(until) {
			until = exp
		}
		r.cache.put(key, answer{id: q.id}, until)
	case errors.As(q.err, &we) && we.Code == wire.CodeUnauthenticated:
		r.cache.put(key, answer{err: q.err}, r.now().Add(r.cfg.TTL))
	}
	r.mu.Unlock()
	close(q.done)
}

// whoami asks tercero once.
func (r *TerceroResolver) whoami(ctx context.Context, token string) (*wire.Identity, error) {
	c := r.client.Load()
	if c == nil {
		return nil, wire.Errorf(wire.CodeUnavailable, "sessions cannot be resolved yet: this node is not connected to RabbitMQ")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	defer cancel()
	r.stats.asked.Add(1)
	reply, err := c.Do(ctx, &wire.Request{Op: wire.OpWhoami}, client.WithSession(token))
	var we *wire.Error
	switch {
	case err == nil && reply.Identity == nil:
		return nil, errors.New("tercero answered whoami without an identity")
	case err == nil:
		r.answered()
		id := *reply.Identity
		id.Token = "" // never kept, never passed on
		return &id, nil
	case errors.As(err, &we) && (we.Code == wire.CodeTimeout || we.Code == wire.CodeUnavailable):
		r.stats.unavailable.Add(1)
		if !r.down.Swap(true) {
			r.log.Warn("tercero does not answer: requests with a session token not cached are answered unavailable", "timeout", r.cfg.Timeout, "err", err)
		}
		return nil, wire.Errorf(wire.CodeUnavailable, "the session cannot be resolved: tercero did not answer within %s; try again later", r.cfg.Timeout)
	case errors.As(err, &we):
		r.answered()
		if we.Code == wire.CodeUnauthenticated {
			r.stats.unauthenticated.Add(1)
		}
		return nil, we
	}
	return nil, err
}

// answered notes that tercero answers, logging it once after an outage.
func (r *TerceroResolver) answered() {
	if r.down.Swap(false) {
		r.log.Info("tercero answers again")
	}
}

// answer is what Resolve returns for a token: an identity or an error.
type answer struct {
	id  *wire.Identity
	err error
}

// answers keeps at most size answers, each until its time, by token hash;
// the least recently used goes first when it is full. The resolver's mu
// guards it.
type answers struct {
	size  int
	ttl   time.Duration
	order list.List // of *kept, most recently used first
	byKey map[[sha256.Size]byte]*list.Element
}

type kept struct {
	key   [sha256.Size]byte
	a     answer
	until time.Time
}

func (c *answers) get(key [sha256.Size]byte, now time.Time) (answer, bool) {
	e, ok := c.byKey[key]
	if !ok {
		return answer{}, false
	}
	k := e.Value.(*kept)
	if !now.Before(k.until) {
		c.order.Remove(e)
		delete(c.byKey, key)
		return answer{}, false
	}
	c.order.MoveToFront(e)
	return k.a, true
}

func (c *answers) put(key [sha256.Size]byte, a answer, until time.Time) {
	if c.size < 1 || c.ttl <= 0 {
		return
	}
	if e, ok := c.byKey[key]; ok {
		k := e.Value.(*kept)
		k.a, k.until = a, until
		c.order.MoveToFront(e)
		return
	}
	c.byKey[key] = c.order.PushFront(&kept{key: key, a: a, until: until})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*kept).key)
	}
}

// Len returns how many answers the resolver keeps now.
func (r *TerceroResolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cache.order.Len()
}

// ResolverStats counts what a TerceroResolver did since it was made.
type ResolverStats struct {
	Hits            int64 // tokens answered from the cache
	Asked           int64 // whoamis sent to tercero
	Unauthenticated int64 // whoamis tercero answered unauthenticated
	Unavailable     int64 // whoamis that got no answer in time
}

// Stats returns the resolver's counts.
func (r *TerceroResolver) Stats() ResolverStats {
	return ResolverStats{Hits: r.stats.hits.Load(), Asked: r.stats.asked.Load(),
		Unauthenticated: r.stats.unauthenticated.Load(), Unavailable: r.stats.unavailable.Load()}
}

// Collectors returns the resolver's metrics, for the node's registry:
// beds_session_resolve_total by outcome (cached: answered from the cache;
// asked: a whoami sent to tercero, of which unauthenticated and
// unavailable count the refusals and the ones not answered in time) and
// beds_session_cache_entries.
func (r *TerceroResolver) Collectors() []prometheus.Collector {
	counter := func(outcome string, n func(ResolverStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "beds_session_resolve_total", Help: "Session tokens resolved, by outcome.",
			ConstLabels: prometheus.Labels{"outcome": outcome}}, func() float64 { return float64(n(r.Stats())) })
	}
	return []prometheus.Collector{
		counter("cached", func(s ResolverStats) int64 { return s.Hits }),
		counter("asked", func(s ResolverStats) int64 { return s.Asked }),
		counter("unauthenticated", func(s ResolverStats) int64 { return s.Unauthenticated }),
		counter("unavailable", func(s ResolverStats) int64 { return s.Unavailable }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "beds_session_cache_entries", Help: "Session answers an appserver keeps ([access] cache_size at most)."},
			func() float64 { return float64(r.Len()) }),
	}
}
