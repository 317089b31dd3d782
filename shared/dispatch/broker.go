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
	// it besides direct reply-to.
	ReplyPrefix string
	// DeliveryLimit dead-letters a request delivered more often than this.
	// 0 sets no limit.
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
	ready   atomic.Bool
	// buffers recycles encoded replies: amqp091 has copied a body into its
	// socket buffer by the time Publish returns, so the slice is free.
	buffers sync.Pool
}

// NewBroker returns a broker answering with h; Run starts it. It wraps h
// in the middleware every broker runs, outermost first: Log, Metrics (if
// cfg.Observer is set), Deadline (cfg.Timeout), Decode (cfg.MaxBody),
// Recover. h sees a decoded, valid Request and a context with the
// caller's deadline.
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
	return &Broker{cfg: cfg, handler: standard(h, cfg), log: log.With("broker", cfg.Name), ids: lineage.NewGenerator(),
		buffers: sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}}
}

// Handle runs the broker's whole chain (the standard middleware and the
// handler) on m, without RabbitMQ: what a worker does for a delivery
// before it replies. A Broker is so a Handler too, for in-process use such
// as benchmarks.
func (b *Broker) Handle(ctx context.Context, m *Message) *wire.Reply { return b.handler.Handle(ctx, m) }

// standard wraps h in the chain NewBroker documents.
func standard(h Handler, cfg Config) Handler {
	mw := []Middleware{Log()}
	if cfg.Observer != nil {
		mw = append(mw, Metrics(cfg.Observer))
	}
	mw = append(mw, Deadline(cfg.Timeout), Decode(cfg.MaxBody), Recover())
	return Chain(h, mw...)
}

// Name returns the broker type.
func (b *Broker) Name() string { return b.cfg.Name }

// Ready reports whether the broker is consuming.
func (b *Broker) Ready() bool { return b.ready.Load() }

// Run consumes until ctx ends, reconnecting with backoff whenever the
// connection or channel is lost. When ctx ends it drains: cancels the
// consumer, finishes and acknowledges every delivery it holds, closes. It
// returns nil after a clean drain.
func (b *Broker) Run(ctx context.Context) error {
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

// session runs one connection's life: dial, declare, consume, work.
func (b *Broker) session(ctx context.Context) error {
	conn, err := mq.Dial(ctx, b.cfg.Dial)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := mq.Declare(ch, b.cfg.Topology); err != nil {
		return err
	}
	if err := ch.Qos(b.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	// Replies to reads go out on a plain channel; replies to writes on one
	// in confirm mode, so a write is acked only once RabbitMQ has its
	// reply (Message.Writes decides which).
	replies, err := conn.Channel()
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
	pub := publishers{plain: replies, confirmed: confirmed}
	tag := fmt.Sprintf("%s/%s", b.cfg.Node, b.cfg.Name)
	deliveries, err := ch.Consume(b.cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", b.cfg.Queue, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	b.ready.Store(true)
	b.log.Info("consuming", "queue", b.cfg.Queue, "instances", b.cfg.Instances, "prefetch", b.cfg.Prefetch)

	// Workers run until deliveries closes: after Cancel (drain) or when
	// the channel dies. Handlers get a context that outlives ctx so that a
	// drain finishes in-flight work instead of failing it.
	work := context.WithoutCancel(ctx)
	acks := newAcker(ch, b.cfg.Prefetch, b.log)
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Instances; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range deliveries {
				acks.settle(b.serve(work, pub, &d))
			}
		}()
	}
	// Deliveries also end when only the channel dies, or RabbitMQ
	// cancels the consumer (queue deleted): that is a lost session too.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()

	var cause error
	select {
	case <-stopped:
		cause = errors.New("consumer stopped by RabbitMQ (channel closed or consumer cancelled)")
	case <-ctx.Done():
		b.ready.Store(false)
		b.log.Info("draining", "queue", b.cfg.Queue)
		if err := ch.Cancel(tag, false); err != nil {
			cause = fmt.Errorf("cancel consumer: %w", err)
		}
	case e := <-closed:
		if e == nil {
			e = &amqp.Error{Reason: "connection closed"}
		}
		cause = e
	}
	wg.Wait()
	if cause == nil && ctx.Err() != nil {
		b.log.Info("drained", "queue", b.cfg.Queue)
	}
	return cause
}

// serve handles one delivery: run the handler chain, then reply to the
// caller or dead-letter a failure nobody waits for; it returns how the
// delivery is to be settled, which the session's acker does.
func (b *Broker) serve(ctx context.Context, pub publishers, d *amqp.Delivery) settlement {
	m := NewMessage(d, b.log, b.ids)

	reply := b.handler.Handle(ctx, m)
	if reply == nil {
		reply = wire.ErrorReply(m.Event, wire.Errorf(wire.CodeInternal, "handler gave no reply"))
	}
	reply.Event = m.Event
	reply.Node = b.cfg.Node

	var err error
	switch {
	case d.ReplyTo != "":
		err = b.reply(ctx, pub, m, reply)
	case !reply.OK:
		err = deadLetter(ctx, pub.plain, m, reply.Error)
	}
	if err != nil {
		// Not acknowledged but handed back: it is delivered again (to this
		// node or another), and a write is answered from its record
		// instead of applying twice. If the channel is gone, RabbitMQ
		// requeues it anyway.
		m.Log().Error("reply not published; requeueing the request", "err", err)
		return settlement{tag: d.DeliveryTag, requeue: true}
	}
	return settlement{tag: d.DeliveryTag}
}

// publishers are a session's reply channels.
type publishers struct {
	plain     *amqp.Channel // replies to reads, counts, pings, errors
	confirmed *amqp.Channel // replies to writes, in confirm mode
}

// deadLetter republishes the request of m, which failed with e and has no
// reply_to, to the dead-letter exchange under its own routing key, with
// the error and event ID in its headers.
func deadLetter(ctx context.Context, ch *amqp.Channel, m *Message, e *wire.Error) error {
	d := m.Delivery
	headers := make(amqp.Table, len(d.Headers)+3)
	for k, v := range d.Headers {
		headers[k] = v
	}
	headers[wire.HeaderError] = string(e.Code)
	headers[wire.HeaderErrorMessage] = e.Message
	headers[wire.HeaderEvent] = m.Event
	m.Log().Warn("failed request with no reply_to; dead-lettering", "code", e.Code)
	return ch.PublishWithContext(ctx, wire.DeadExchange, d.RoutingKey, false, false, amqp.Publishing{
		Headers: headers, ContentType: d.ContentType, Body: d.Body, MessageId: m.Event,
		CorrelationId: d.CorrelationId, DeliveryMode: amqp.Persistent, Timestamp: time.Now(),
	})
}

// reply publishes reply to the request's reply_to: on the confirmed
// channel, waiting for RabbitMQ's confirm, if the request writes
// (Message.Writes), otherwise on the plain one.
func (b *Broker) reply(ctx context.Context, pub publishers, m *Message, reply *wire.Reply) error {
	d := m.Delivery
	buf := b.buffers.Get().(*[]byte)
	defer b.buffers.Put(buf)
	body, err := reply.AppendJSON((*buf)[:0])
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	*buf = body // keep a grown buffer for the next reply
	// Replies go to the default exchange, routed by queue name; direct
	// reply-to names work the same way.
	msg := amqp.Publishing{
		ContentType: wire.ContentType, CorrelationId: d.CorrelationId, MessageId: m.Event,
		Body: body, Timestamp: time.Now(),
	}
	if !m.Writes() {
		err := pub.plain.PublishWithContext(ctx, "", d.ReplyTo, false, false, msg)
		if errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("reply channel closed: %w", err)
		}
		return err
	}
	conf, err := pub.confirmed.PublishWithDeferredConfirmWithContext(ctx, "", d.ReplyTo, false, false, msg)
	if errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("reply channel closed: %w", err)
	}
	if err != nil {
		return err
	}
	// A write's reply is confirmed before its request is acknowledged; a
	// lost confirm leaves the request unacked, and its redelivery is
	// answered from the write's record (idempotency) instead of applying
	// it again.
	cctx, cancel := context.WithTimeout(ctx, b.cfg.ConfirmTimeout)
	defer cancel()
	acked, err := conf.WaitContext(cctx)
	if err != nil {
		return fmt.Errorf("reply not confirmed: %w", err)
	}
	if !acked {
		return errors.New("reply refused by RabbitMQ (nack)")
	}
	return nil
}
