package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
)

// replySide is where a broker publishes, on connections apart from the
// consumer's. RabbitMQ 3.10 closes a whole connection (541 INTERNAL_ERROR)
// when a reply goes to a direct reply-to name whose pid it cannot decode
// (RabbitMQ issues 3751, 6396); on the consumer's connection that would
// hand back every delivery the broker holds, and on a connection shared by
// replies it would lose the replies published just before. So:
//
//   - Replies, dead letters and replies to queues under the reply prefix
//     go out on the reply connection: a plain channel, and one in confirm
//     mode for writes and dead letters. When it closes, the reply side
//     reconnects with backoff while the consumer keeps its channel and
//     deliveries, whose workers wait for the new connection.
//   - A reply to a direct reply-to name goes there only when RabbitMQ is
//     known to take it: its pid names a node a reply already reached
//     (known), with a pid number and serial Erlang takes from any node.
//     Any other goes out on the probe connection, one at a time and
//     confirmed: a hostile name (a node that does not exist) ends only
//     that connection and its own reply, which is then handled like any
//     reply not published (requeued; the delivery limit ends it). A reply
//     that gets through makes its node known. The first reply to each
//     RabbitMQ node so costs one confirm.
//
// Names RabbitMQ cannot decode at all are refused before (ReplyToAllowed).
type replySide struct {
	dial               mq.DialConfig
	topology           mq.Topology
	retryMin, retryMax time.Duration
	log                *slog.Logger
	sessions           atomic.Int64 // reply connections opened
	probe              probe

	mu    sync.Mutex
	pub   *publishers     // nil while down
	up    chan struct{}   // closed once pub is set
	known map[uint32]bool // hashes of the nodes a direct reply reached
}

// publishers are a reply connection's channels.
type publishers struct {
	plain     *amqp.Channel // replies to reads, counts, pings, errors
	confirmed *amqp.Channel // replies to writes and dead letters, in confirm mode
}

func newReplySide(cfg Config, log *slog.Logger) *replySide {
	dial := cfg.Dial
	dial.Name += " (replies)"
	probeDial := cfg.Dial
	probeDial.Name += " (replies to new nodes)"
	return &replySide{dial: dial, topology: cfg.Topology, retryMin: cfg.RetryMin, retryMax: cfg.RetryMax,
		log: log, up: make(chan struct{}), known: map[uint32]bool{},
		probe: probe{dial: probeDial, retryMin: cfg.RetryMin, retryMax: cfg.RetryMax, confirmTimeout: cfg.ConfirmTimeout,
			sem: make(chan struct{}, 1)}}
}

// run keeps a reply connection open until ctx ends, reconnecting with
// backoff, and closes the probe connection when it returns.
func (r *replySide) run(ctx context.Context) {
	defer r.probe.close()
	backoff := r.retryMin
	for {
		started := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > 10*r.retryMax {
			backoff = r.retryMin
		}
		r.log.Warn("reply connection lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, r.retryMax)
	}
}

// session runs one reply connection's life: dial, declare (a dead letter
// needs beds.dlx, which may have gone since the consumer declared it),
// open the channels, serve until one of them closes or ctx ends.
func (r *replySide) session(ctx context.Context) error {
	conn, err := mq.Dial(ctx, r.dial)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := mq.Declare(conn, r.topology, r.log); err != nil {
		return err
	}
	plain, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open reply channel: %w", err)
	}
	confirmed, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open write-reply channel: %w", err)
	}
	if err := confirmed.Confirm(false); err != nil {
		return fmt.Errorf("confirm mode: %w", err)
	}
	// Every channel is watched: RabbitMQ closes one on its own (a publish
	// to a missing exchange, an oversized message), and a dead reply
	// channel would fail every reply while the broker looked ready.
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	plainClosed := plain.NotifyClose(make(chan *amqp.Error, 1))
	confirmedClosed := confirmed.NotifyClose(make(chan *amqp.Error, 1))
	r.sessions.Add(1)
	r.set(&publishers{plain: plain, confirmed: confirmed})
	defer r.set(nil)
	select {
	case <-ctx.Done():
		return nil
	case e := <-closed:
		return closedErr("reply connection", e)
	case e := <-plainClosed:
		return closedErr("reply channel", e)
	case e := <-confirmedClosed:
		return closedErr("write-reply channel", e)
	}
}

// set makes p the publishers to use, or marks the reply side down (nil).
// Going down also forgets the known nodes: a node that left the cluster
// is what could have closed the connection.
func (r *replySide) set(p *publishers) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case p != nil && r.pub == nil:
		r.pub = p
		close(r.up)
	case p == nil && r.pub != nil:
		r.pub = nil
		r.up = make(chan struct{})
		clear(r.known)
	}
}

// get returns the current publishers, waiting while the reply side is
// down, until ctx ends.
func (r *replySide) get(ctx context.Context) (*publishers, error) {
	for {
		r.mu.Lock()
		p, up := r.pub, r.up
		r.mu.Unlock()
		if p != nil {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reply connection down: %w", ctx.Err())
		case <-up:
		}
	}
}

// ready reports whether a reply connection is open.
func (r *replySide) ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pub != nil
}

// vetted reports whether a reply to an allowed name (its verdict v) can
// go on the reply connection; if not, it returns the name's target, to
// learn from once a reply to it went through on the probe connection.
func (r *replySide) vetted(v replyVerdict) (target, bool) {
	if !v.direct {
		return target{}, true // a queue, or direct reply-to without a suffix: routed or dropped
	}
	t := v.target
	if t.number >= pidNumbers || t.serial >= pidSerials {
		return t, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return t, r.known[t.node]
}

// learn records that a reply to a pid of t's node went through.
func (r *replySide) learn(t target) {
	if t.number >= pidNumbers || t.serial >= pidSerials {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pub != nil { // else the connection that learning is for is gone
		r.known[t.node] = true
	}
}

// probe is the connection for replies to direct reply-to names not known
// to be safe (see replySide): opened on first use and again after it
// closes, one reply at a time, each confirmed. A close is so the doing of
// the one reply in flight.
type probe struct {
	dial               mq.DialConfig
	retryMin, retryMax time.Duration
	confirmTimeout     time.Duration
	dials              atomic.Int64 // connections opened

	sem     chan struct{} // held by the one publishing
	conn    *amqp.Connection
	ch      *amqp.Channel
	closed  chan *amqp.Error
	backoff time.Duration // after a failed dial
	retryAt time.Time
}

// publish publishes msg to the direct reply-to name key and waits for
// RabbitMQ's confirm. It waits for its turn and for a dial's backoff until
// lost ends.
func (p *probe) publish(ctx, lost context.Context, key string, msg amqp.Publishing) error {
	select {
	case p.sem <- struct{}{}:
	case <-lost.Done():
		return fmt.Errorf("waiting for the probe connection: %w", lost.Err())
	}
	defer func() { <-p.sem }()
	if err := p.open(lost); err != nil {
		return err
	}
	conf, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, "", key, false, false, msg)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, p.confirmTimeout)
		var acked bool
		acked, err = conf.WaitContext(cctx)
		cancel()
		if err == nil && !acked {
			err = errors.New("refused by RabbitMQ (nack, or the channel closed)")
		}
	}
	if err != nil {
		// Whatever happened, it happened to this reply alone: start the
		// next one on a new connection.
		if reason := p.drop(); reason != nil {
			return fmt.Errorf("RabbitMQ closed the connection on this direct reply-to name (RabbitMQ 3.10's answer to a node it does not know): %w", reason)
		}
		return fmt.Errorf("not confirmed: %w", err)
	}
	return nil
}

// open dials the probe connection unless it is open, waiting out the
// backoff of a failed dial first.
func (p *probe) open(ctx context.Context) error {
	if p.ch != nil && !p.ch.IsClosed() {
		return nil
	}
	p.drop()
	if wait := time.Until(p.retryAt); wait > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("probe connection down: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	conn, err := mq.Dial(ctx, p.dial)
	if err == nil {
		if p.ch, err = conn.Channel(); err == nil {
			err = p.ch.Confirm(false)
		}
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		p.ch = nil
		p.backoff = min(max(p.backoff*2, p.retryMin), p.retryMax)
		p.retryAt = time.Now().Add(p.backoff)
		return fmt.Errorf("open probe connection: %w", err)
	}
	p.backoff = 0
	p.conn = conn
	p.closed = conn.NotifyClose(make(chan *amqp.Error, 1))
	p.dials.Add(1)
	return nil
}

// drop closes the probe connection and returns why RabbitMQ closed it, if
// it did.
func (p *probe) drop() *amqp.Error {
	if p.conn == nil {
		return nil
	}
	var reason *amqp.Error
	select {
	case reason = <-p.closed:
	case <-time.After(100 * time.Millisecond):
		// RabbitMQ's close of the connection follows the channel's own.
	}
	_ = p.conn.Close()
	p.conn, p.ch, p.closed = nil, nil, nil
	return reason
}

// close closes the probe connection, once no reply uses it.
func (p *probe) close() {
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn, p.ch, p.closed = nil, nil, nil
	}
}
