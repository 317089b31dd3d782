package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// responder stands in for tercero: it consumes wire.TerceroQueue and
// answers whoami. A token "user-<n>" is user n with role member,
// expiring at expires[token] when set; any other token is
// unauthenticated. hold, while set, keeps every answer until it is
// closed.
type responder struct {
	asked atomic.Int64 // whoami requests received
	hold  atomic.Pointer[chan struct{}]

	mu      sync.Mutex
	expires map[string]time.Time
}

// expire makes the session of token end at t.
func (r *responder) expire(token string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expires[token] = t
}

// declare makes the topology in a new vhost and returns its URL.
func declare(t *testing.T) string {
	t.Helper()
	url := testenv.AMQP(t)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := mq.Declare(conn, mq.Topology{QueueType: "classic"}, nil); err != nil {
		t.Fatal(err)
	}
	return url
}

// respond starts a responder on url until the test ends.
func respond(t *testing.T, url string) *responder {
	t.Helper()
	r := &responder{expires: map[string]time.Time{}}
	testenv.Responder{Queue: wire.TerceroQueue, Answer: r.answer}.Start(t, url)
	// Registered after Start's, this cleanup runs first: it releases an
	// answer held, which Start's waits for.
	t.Cleanup(func() {
		if h := r.hold.Load(); h != nil {
			select {
			case <-*h:
			default:
				close(*h)
			}
		}
	})
	return r
}

// answer is the reply to d, kept while hold is set.
func (r *responder) answer(d amqp.Delivery) *wire.Reply {
	token, _ := d.Headers[wire.HeaderSession].(string)
	r.asked.Add(1)
	if h := r.hold.Load(); h != nil {
		<-*h
	}
	reply := &wire.Reply{OK: true, Event: d.MessageId}
	req, err := wire.DecodeRequest(d.Body)
	var n int64
	switch {
	case err != nil || req.Op != wire.OpWhoami:
		reply = wire.ErrorReply(d.MessageId, wire.Errorf(wire.CodeBadRequest, "not whoami"))
	case strings.HasPrefix(token, "user-"):
		fmt.Sscan(strings.TrimPrefix(token, "user-"), &n)
		r.mu.Lock()
		reply.Identity = &wire.Identity{User: n, Name: token, Roles: []string{"member"}, Session: "hash", Token: token, Expires: r.expires[token]}
		r.mu.Unlock()
	default:
		reply = wire.ErrorReply(d.MessageId, wire.Errorf(wire.CodeUnauthenticated, "no session holds this token"))
	}
	return reply
}

// start runs a resolver against url until the test ends, with a clock the
// test moves.
func start(t *testing.T, url string, cfg TerceroConfig) (*TerceroResolver, *clock) {
	t.Helper()
	cfg.URL = url
	r := NewTerceroResolver(cfg)
	c := &clock{at: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	r.now = c.now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if r.Ready() {
			t.Error("still ready after Run returned")
		}
	})
	for !r.Ready() {
		select {
		case err := <-done:
			t.Fatalf("Run returned before connecting: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return r, c
}

type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.at }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.at = c.at.Add(d); c.mu.Unlock() }

func resolve(t *testing.T, r *TerceroResolver, token string) (*wire.Identity, *wire.Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := r.Resolve(ctx, token)
	if err == nil {
		return id, nil
	}
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("Resolve(%s): %v, not a *wire.Error", token, err)
	}
	return nil, we
}

func TestTerceroResolver(t *testing.T) {
	url := declare(t)
	tercero := respond(t, url)
	r, clock := start(t, url, TerceroConfig{Timeout: 5 * time.Second, TTL: 10 * time.Second, Size: 2})

	t.Run("identity, without the token", func(t *testing.T) {
		id, err := resolve(t, r, "user-7")
		if err != nil {
			t.Fatal(err)
		}
		if id.User != 7 || id.Name != "user-7" || !id.Has("member") || id.Token != "" {
			t.Fatalf("identity %+v: want user 7, member, no token", id)
		}
	})
	t.Run("cache hit", func(t *testing.T) {
		before := tercero.asked.Load()
		if id, err := resolve(t, r, "user-7"); err != nil || id.User != 7 {
			t.Fatalf("%+v %v", id, err)
		}
		if got := tercero.asked.Load() - before; got != 0 {
			t.Fatalf("tercero asked %d times for a cached token", got)
		}
	})
	t.Run("expires after the TTL", func(t *testing.T) {
		before := tercero.asked.Load()
		clock.add(9 * time.Second)
		resolve(t, r, "user-7")
		if got := tercero.asked.Load() - before; got != 0 {
			t.Fatalf("asked %d times within the TTL", got)
		}
		clock.add(time.Second)
		if id, err := resolve(t, r, "user-7"); err != nil || id.User != 7 {
			t.Fatalf("%+v %v", id, err)
		}
		if got := tercero.asked.Load() - before; got != 1 {
			t.Fatalf("asked %d times once the TTL passed, want 1", got)
		}
	})
	t.Run("never kept past the session's expiry", func(t *testing.T) {
		tercero.expire("user-9", clock.now().Add(time.Second))
		resolve(t, r, "user-9")
		before := tercero.asked.Load()
		clock.add(time.Second)
		resolve(t, r, "user-9")
		if got := tercero.asked.Load() - before; got != 1 {
			t.Fatalf("asked %d times after the session expired, want 1", got)
		}
	})
	t.Run("unauthenticated passes through, cached", func(t *testing.T) {
		before := tercero.asked.Load()
		for range 2 {
			id, err := resolve(t, r, "revoked")
			if err == nil || err.Code != wire.CodeUnauthenticated || id != nil {
				t.Fatalf("got %+v %v, want unauthenticated", id, err)
			}
		}
		if got := tercero.asked.Load() - before; got != 1 {
			t.Fatalf("asked %d times, want 1: unauthenticated is kept too", got)
		}
	})
	t.Run("the bound evicts the least recently used", func(t *testing.T) {
		resolve(t, r, "user-1")
		resolve(t, r, "user-2")
		resolve(t, r, "user-1") // user-2 is now the least recently used
		resolve(t, r, "user-3") // evicts user-2
		if n := r.Len(); n != 2 {
			t.Fatalf("%d answers kept, want the bound 2", n)
		}
		before := tercero.asked.Load()
		resolve(t, r, "user-1")
		if got := tercero.asked.Load() - before; got != 0 {
			t.Fatalf("user-1 asked again: it was used recently and must be kept")
		}
		resolve(t, r, "user-2")
		if got := tercero.asked.Load() - before; got != 1 {
			t.Fatalf("user-2 asked %d times, want 1: it was evicted", got)
		}
	})
	t.Run("stats", func(t *testing.T) {
		st := r.Stats()
		if st.Asked != tercero.asked.Load() || st.Hits == 0 || st.Unauthenticated != 1 || st.Unavailable != 0 {
			t.Fatalf("stats %+v; tercero asked %d times", st, tercero.asked.Load())
		}
	})
	t.Run("cache keys are hashes", func(t *testing.T) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for k := range r.cache.byKey {
			if strings.Contains(string(k[:]), "user-") {
				t.Fatal("a token is kept in clear")
			}
		}
	})
}

func TestTerceroResolverSingleflight(t *testing.T) {
	url := declare(t)
	tercero := respond(t, url)
	r, _ := start(t, url, TerceroConfig{Timeout: 10 * time.Second, TTL: time.Minute, Size: 10})
	hold := make(chan struct{})
	tercero.hold.Store(&hold)
	const n = 8
	var joined sync.WaitGroup
	joined.Add(n)
	r.joined = joined.Done
	var wg sync.WaitGroup
	ids := make([]*wire.Identity, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ids[i], errs[i] = r.Resolve(context.Background(), "user-5")
		})
	}
	joined.Wait() // all n missed the cache and wait on a question
	close(hold)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] == nil || ids[i].User != 5 {
			t.Fatalf("resolve %d: %+v %v", i, ids[i], errs[i])
		}
	}
	if got := tercero.asked.Load(); got != 1 {
		t.Fatalf("tercero asked %d times for %d concurrent misses of one token, want 1", got, n)
	}
}

func TestTerceroResolverNoTercero(t *testing.T) {
	url := declare(t)
	r, _ := start(t, url, TerceroConfig{Timeout: 300 * time.Millisecond, TTL: time.Minute, Size: 10})
	for range 2 {
		id, err := resolve(t, r, "user-1")
		if err == nil || err.Code != wire.CodeUnavailable || id != nil {
			t.Fatalf("got %+v %v, want unavailable", id, err)
		}
	}
	if n := r.Len(); n != 0 {
		t.Fatalf("%d answers kept: unavailable must not be", n)
	}
	if st := r.Stats(); st.Unavailable != 2 || st.Asked != 2 {
		t.Fatalf("stats %+v, want 2 asked, 2 unavailable", st)
	}
	// The whoamis nobody consumed expire in the queue instead of piling up
	// for a tercero that starts later.
	ch := testenv.Channel(t, url)
	for testenv.Messages(t, ch, wire.TerceroQueue) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	// A tercero that starts now answers, and then the answer is kept.
	tercero := respond(t, url)
	if id, err := resolve(t, r, "user-1"); err != nil || id.User != 1 {
		t.Fatalf("after tercero started: %+v %v", id, err)
	}
	if got := tercero.asked.Load(); got != 1 {
		t.Fatalf("tercero got %d whoamis, want only the one asked after it started", got)
	}
}

func TestTerceroResolverNotConnected(t *testing.T) {
	r := NewTerceroResolver(TerceroConfig{URL: "amqp://guest:guest@127.0.0.1:1/", Timeout: time.Second, TTL: time.Minute, Size: 10})
	if r.Ready() {
		t.Fatal("ready before Run")
	}
	_, err := r.Resolve(context.Background(), "user-1")
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeUnavailable {
		t.Fatalf("got %v, want unavailable", err)
	}
}
