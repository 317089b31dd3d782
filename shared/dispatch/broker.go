package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/wire"
)

// Config configures a Broker.
type Config struct {
	Name      string // broker type, for logs: "dispatcher"
	Node      string // node name, stamped on replies and logs
	Queue     string
	Dial      mq.DialConfig
	Topology  mq.Topology
	Instances int // worker goroutines
	Prefetch  int // unacknowledged deliveries held at once
	// MaxBody is the largest request body in bytes; a larger one is
	// answered too_large. 0 sets no limit.
	MaxBody int
	// MaxReply is the largest encoded reply in bytes; a larger one is
	// answered too_large instead. 0 sets no limit.
	MaxReply int
	// Timeout is the handler's deadline when the caller sets no
	// expiration (default 30s).
	Timeout time.Duration
	// MaxTimeout caps the caller's expiration. 0 sets no cap.
	MaxTimeout time.Duration
	// ReplyPrefix, when set, admits reply_to queues whose names start with
	// it besides direct reply-to (see ReplyToAllowed).
	ReplyPrefix string
	// DeliveryLimit dead-letters, unhandled, a request delivered more
	// often than this (counted as the package doc says). 0 sets no limit.
	DeliveryLimit int
	// Observer, when set, receives one observation per request (metrics).
	Observer Observer
	// Retry bounds reconnect backoff (default 100ms doubling to 5s).
	RetryMin, RetryMax time.Duration
	// ConfirmTimeout bounds the wait for RabbitMQ to confirm a write's
	// reply (default 10s).
	ConfirmTimeout time.Duration
}

// Broker consumes one queue and answers each delivery with its handler,
// wrapped in the standard chain of middleware (see NewBroker).
type Broker struct {
	cfg     Config
	handler Handler // h in the standard chain
	log     *slog.Logger
	ids     *lineage.Generator
	tries   *tries      // deliveries of requests that came back
	ready   atomic.Bool // consuming
	replies *replySide
	// sessions counts the consumer sessions started (tests read it).
	sessions atomic.Int64
	// buffers recycles encoded replies: amqp091 has copied a body into its
	// socket buffer by the time Publish returns, so the slice is free.
	buffers sync.Pool
}

// NewBroker returns a broker answering with h; Run starts it. It wraps h
// in the middleware every broker runs, outermost first: Recover, Log,
// Metrics (if cfg.Observer is set), ReplyTo (cfg.ReplyPrefix), Deadline
// (cfg.Timeout, capped by cfg.MaxTimeout), Decode (cfg.MaxBody), Recover.
// h sees a decoded, valid Request, an admitted reply_to and a context
// with the caller's deadline.
func NewBroker(cfg Config, h Handler, log *slog.Logger) *Broker {
	if cfg.Instances < 1 {
		cfg.Instances = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = 10 * time.Second
	}
	log = log.With("broker", cfg.Name)
	return &Broker{cfg: cfg, handler: standard(h, cfg), log: log, ids: lineage.NewGenerator(),
		tries: newTries(cfg.DeliveryLimit, redeliveryTable), replies: newReplySide(cfg, log),
		buffers: sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}}
}

// Handle runs the broker's whole chain (the standard middleware and the
// handler) on m, without RabbitMQ: what a worker does for a delivery
// before it replies. A Broker is so a Handler too, for in-process use such
// as benchmarks.
func (b *Broker) Handle(ctx context.Context, m *Message) *wire.Reply { return b.handler.Handle(ctx, m) }

// standard wraps h in the chain NewBroker documents.
func standard(h Handler, cfg Config) Handler {
	mw := []Middleware{Recover(), Log()}
	if cfg.Observer != nil {
		mw = append(mw, Metrics(cfg.Observer))
	}
	mw = append(mw, ReplyTo(cfg.ReplyPrefix), Deadline(cfg.Timeout, cfg.MaxTimeout), Decode(cfg.MaxBody), Recover())
	return Chain(h, mw...)
}

// Name returns the broker type.
func (b *Broker) Name() string { return b.cfg.Name }

// Ready reports whether the broker is consuming and can reply: both its
// connections are open.
func (b *Broker) Ready() bool { return b.ready.Load() && b.replies.ready() }

// Run consumes until ctx ends, reconnecting with backoff whenever the
// consumer's connection or channel is lost; the reply connection
// reconnects on its own (replySide). When ctx ends it drains: cancels the
// consumer, finishes and acknowledges every delivery it holds, closes. It
// returns nil after a clean drain.
func (b *Broker) Run(ctx context.Context) error {
	// The reply side outlives ctx: a drain publishes the replies of what
	// it finishes. It stops once the consumer's last session has ended.
	rctx, stopReplies := context.WithCancel(context.WithoutCancel(ctx))
	var replying sync.WaitGroup
	replying.Add(1)
	go func() {
		defer replying.Done()
		b.replies.run(rctx)
	}()
	defer func() {
		stopReplies()
		replying.Wait()
	}()
	backoff := b.cfg.RetryMin
	for {
		started := time.Now()
		err := b.session(ctx)
		b.ready.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > 10*b.cfg.RetryMax {
			backoff = b.cfg.RetryMin
		}
		b.log.Warn("connection lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, b.cfg.RetryMax)
	}
}

// session runs one consumer connection's life: dial, declare, consume,
// work. Replies go out on the reply side's connection.
func (b *Broker) session(ctx context.Context) error {
	conn, err := mq.Dial(ctx, b.cfg.Dial)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := mq.Declare(conn, b.cfg.Topology, b.log); err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(b.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	consumerClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	tag := fmt.Sprintf("%s/%s", b.cfg.Node, b.cfg.Name)
	deliveries, err := ch.Consume(b.cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", b.cfg.Queue, err)
	}
	b.sessions.Add(1)
	b.ready.Store(true)
	b.log.Info("consuming", "queue", b.cfg.Queue, "instances", b.cfg.Instances, "prefetch", b.cfg.Prefetch)

	// Workers run until deliveries closes: after Cancel (drain) or when
	// the channel dies. Handlers get a context that outlives ctx so that a
	// drain finishes in-flight work instead of failing it.
	work := context.WithoutCancel(ctx)
	acks := newAcker(ch, b.cfg.Prefetch, b.log)
	// lost ends once the session cannot settle its deliveries any more:
	// the workers stop waiting for a reply connection, and the deliveries
	// still held are handed back unhandled rather than worked on in vain.
	lost, loseSession := context.WithCancel(work)
	defer loseSession()
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Instances; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range deliveries {
				if lost.Err() != nil {
					acks.settle(settlement{tag: d.DeliveryTag, requeue: true})
					continue
				}
				acks.settle(b.serve(work, lost, &d))
			}
		}()
	}
	// Deliveries also end when only the channel dies, or RabbitMQ
	// cancels the consumer (queue deleted): that is a lost session too.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()

	var cause error
	draining := false
	select {
	case <-stopped:
		cause = errors.New("consumer stopped by RabbitMQ (channel closed or consumer cancelled)")
	case <-ctx.Done():
		draining = true
		b.ready.Store(false)
		b.log.Info("draining", "queue", b.cfg.Queue)
		if err := ch.Cancel(tag, false); err != nil {
			cause = fmt.Errorf("cancel consumer: %w", err)
		}
	case e := <-closed:
		cause = closedErr("connection", e)
	case e := <-consumerClosed:
		cause = closedErr("consumer channel", e)
	}
	if !draining {
		// Lost: not ready from now on, until the next session is.
		b.ready.Store(false)
		loseSession()
		// Stop the consumer if it still runs, so that no more come. (When
		// the consumer or the connection is what died, this fails at
		// once.)
		_ = ch.Cancel(tag, false)
	}
	wg.Wait()
	if cause == nil && ctx.Err() != nil {
		b.log.Info("drained", "queue", b.cfg.Queue)
	}
	return cause
}

// closedErr names what closed, with RabbitMQ's reason if it gave one.
func closedErr(what string, e *amqp.Error) error {
	if e == nil {
		return fmt.Errorf("%s closed", what)
	}
	return fmt.Errorf("%s closed: %w", what, e)
}

// serve handles one delivery: decide its answer (answer), publish it, and
// return how the delivery is to be settled, which the session's acker
// does.
//
// It publishes on the reply side's connection, waiting while that is down,
// until lost ends (the consumer's session is lost: the delivery goes back
// to the queue anyway).
func (b *Broker) serve(ctx, lost context.Context, d *amqp.Delivery) (s settlement) {
	s.tag = d.DeliveryTag
	defer func() {
		// The chain answers its own panics; this catches the broker's, so
		// that nothing a delivery holds takes the process down. It goes
		// to beds.dead through the queue's dead-letter exchange, not back
		// to the queue: it would panic again.
		if p := recover(); p != nil {
			quietly(func() {
				b.log.Error("delivery panicked the broker; rejecting it to the dead-letter exchange",
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			})
			s = settlement{tag: d.DeliveryTag, reject: true}
		}
	}()
	m := NewMessage(d, b.log, b.ids)
	a := b.answer(ctx, m)
	if a.buf != nil {
		defer b.buffers.Put(a.buf)
	}
	var err error
	if a.dead != nil || a.body != nil {
		var pub *publishers
		if pub, err = b.replies.get(lost); err == nil {
			if a.dead != nil {
				err = b.deadLetter(ctx, pub, m, a.dead, a.history)
			} else {
				err = b.reply(ctx, lost, pub, m, a.body)
			}
		}
	}
	if err != nil {
		// Not acknowledged but handed back: it is delivered again (to this
		// node or another), and a write is answered from its record
		// instead of applying twice. If the channel is gone, RabbitMQ
		// requeues it anyway. Only publishing fails here, which a new
		// session mends; what would fail again was answered above, and
		// the delivery limit ends what still comes back.
		m.Log().Error("answer not published; requeueing the request", "err", err)
		b.tries.failed(d, err.Error(), time.Now())
		s.requeue = true
		return s
	}
	b.tries.forget(d)
	return s
}

// answer is what serve publishes for a delivery: an encoded reply to
// reply_to, a dead letter, or nothing (a success nobody waits for).
type answer struct {
	body    []byte      // the encoded reply
	buf     *[]byte     // body's buffer, from Broker.buffers
	dead    *wire.Error // dead-letter the request with this error
	history amqp.Table  // more dead-letter headers
}

// answer runs the chain on m and decides what to publish, without
// RabbitMQ. A request delivered more often than the delivery limit is
// dead-lettered unhandled; one with a refused reply_to is dead-lettered
// and nothing is published to its reply_to.
func (b *Broker) answer(ctx context.Context, m *Message) answer {
	d := m.Delivery
	if h, over := b.tries.arrive(d, m.Received); over {
		m.Log().Error("request delivered more often than the delivery limit; dead-lettering it unhandled",
			"deliveries", h.deliveries, "limit", b.cfg.DeliveryLimit, "last_failure", h.cause)
		return answer{history: h.headers(), dead: &wire.Error{Code: wire.DeadDeliveryLimit,
			Message: fmt.Sprintf("delivered %d times, more than the delivery limit of %d, without being answered", h.deliveries, b.cfg.DeliveryLimit)}}
	}
	reply := sound(b.handler.Handle(ctx, m), m)
	reply.Event = m.Event
	reply.Node = b.cfg.Node
	switch {
	case d.ReplyTo != "" && !m.replyTo(b.cfg.ReplyPrefix).allowed:
		// Whatever the chain answered: never publish to that name.
		return answer{dead: replyToError(d.ReplyTo, b.cfg.ReplyPrefix)}
	case d.ReplyTo != "":
		buf, body := b.encode(m, reply)
		return answer{body: body, buf: buf}
	case !reply.OK:
		return answer{dead: reply.Error}
	}
	return answer{}
}

// encode encodes reply into a buffer from the pool. A reply that cannot
// be encoded is answered internal, one above MaxReply too_large: sending
// the request back to the queue would fail the same way for ever.
func (b *Broker) encode(m *Message, reply *wire.Reply) (*[]byte, []byte) {
	buf := b.buffers.Get().(*[]byte)
	body, err := appendReply((*buf)[:0], reply)
	switch {
	case err != nil:
		m.Log().Error("reply cannot be encoded; answering internal", "err", err)
		body, _ = appendReply((*buf)[:0], &wire.Reply{Event: reply.Event, Node: reply.Node, Error: wire.Errorf(wire.CodeInternal,
			"internal error: the reply could not be encoded (a stored value JSON cannot hold?); the node's log has the details under this event ID")})
	case b.cfg.MaxReply > 0 && len(body) > b.cfg.MaxReply:
		m.Log().Warn("reply larger than the limit; answering too_large", "bytes", len(body), "max", b.cfg.MaxReply)
		size := len(body)
		// A fresh buffer: the pool is not to keep one of the oversized.
		body, _ = appendReply(make([]byte, 0, 256), &wire.Reply{Event: reply.Event, Node: reply.Node, Error: wire.Errorf(wire.CodeTooLarge,
			"the reply is %d bytes, more than the node's limit of %d: ask for fewer rows or fields", size, b.cfg.MaxReply)})
	}
	*buf = body // keep a grown buffer for the next reply
	return buf, body
}

// appendReply is reply.AppendJSON, with a panic (a value whose own
// MarshalJSON panics) returned as an error.
func appendReply(b []byte, reply *wire.Reply) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("encoding panicked: %v", p)
		}
	}()
	return reply.AppendJSON(b)
}

// deadLetter republishes the request of m, which failed with e and is
// answered to nobody, to the dead-letter exchange under its own routing
// key, with the error, event ID, node and more (extra) in its headers. It
// is published on the confirmed channel and returns once RabbitMQ has
// confirmed it, so the request is acknowledged only once beds.dead has it.
func (b *Broker) deadLetter(ctx context.Context, pub *publishers, m *Message, e *wire.Error, extra amqp.Table) error {
	d := m.Delivery
	headers := make(amqp.Table, len(d.Headers)+4+len(extra))
	for k, v := range d.Headers {
		headers[k] = v
	}
	for k, v := range extra {
		headers[k] = v
	}
	headers[wire.HeaderError] = string(e.Code)
	headers[wire.HeaderErrorMessage] = e.Message
	headers[wire.HeaderEvent] = m.Event
	headers[wire.HeaderNode] = b.cfg.Node
	m.Log().Warn("failed request answered to nobody; dead-lettering", "code", e.Code)
	err := b.confirm(ctx, pub.confirmed, wire.DeadExchange, d.RoutingKey, amqp.Publishing{
		Headers: headers, ContentType: d.ContentType, Body: d.Body, MessageId: m.Event,
		CorrelationId: d.CorrelationId, DeliveryMode: amqp.Persistent, Timestamp: time.Now(),
	})
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}

// reply publishes the encoded reply body to the request's reply_to: on
// the confirmed channel, waiting for RabbitMQ's confirm, if the request
// writes (Message.Writes), otherwise on the plain one; or, for a direct
// reply-to name not vetted (replySide), on the probe connection, waiting
// for its turn until lost ends.
func (b *Broker) reply(ctx, lost context.Context, pub *publishers, m *Message, body []byte) error {
	d := m.Delivery
	// Replies go to the default exchange, routed by queue name; direct
	// reply-to names work the same way.
	msg := amqp.Publishing{
		ContentType: wire.ContentType, CorrelationId: d.CorrelationId, MessageId: m.Event,
		Body: body, Timestamp: time.Now(),
	}
	if m.Trace != "" {
		msg.Headers = amqp.Table{wire.HeaderTraceParent: m.Trace}
	}
	if t, ok := b.replies.vetted(m.replyTo(b.cfg.ReplyPrefix)); !ok {
		// A direct reply-to name RabbitMQ may close the connection on: on
		// the probe connection, confirmed, read or write (replySide).
		if err := b.replies.probe.publish(ctx, lost, d.ReplyTo, msg); err != nil {
			return fmt.Errorf("reply: %w", err)
		}
		b.replies.learn(t)
		return nil
	}
	if !m.Writes() {
		err := pub.plain.PublishWithContext(ctx, "", d.ReplyTo, false, false, msg)
		if errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("reply channel closed: %w", err)
		}
		return err
	}
	// A write's reply is confirmed before its request is acknowledged; a
	// lost confirm leaves the request unacked, and its redelivery is
	// answered from the write's record (idempotency) instead of applying
	// it again.
	if err := b.confirm(ctx, pub.confirmed, "", d.ReplyTo, msg); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	return nil
}

// confirm publishes msg on ch, which is in confirm mode, and waits for
// RabbitMQ's confirm (at most ConfirmTimeout).
func (b *Broker) confirm(ctx context.Context, ch *amqp.Channel, exchange, key string, msg amqp.Publishing) error {
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, msg)
	if errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("write-reply channel closed: %w", err)
	}
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.ConfirmTimeout)
	defer cancel()
	acked, err := conf.WaitContext(cctx)
	if err != nil {
		return fmt.Errorf("not confirmed: %w", err)
	}
	if !acked {
		// A channel that closes before confirming resolves its pending
		// confirms as nacks too. One RabbitMQ nacked may go on nacking
		// all that follows (a dead letter to a quorum beds.dead whose
		// leader went away, on RabbitMQ 3.10): close it, so that the
		// reply side starts a new connection.
		_ = ch.Close()
		return errors.New("refused by RabbitMQ (nack, or the channel closed)")
	}
	return nil
}
