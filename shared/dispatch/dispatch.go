// Package dispatch turns deliveries from a queue into replies.
//
// A Broker consumes one queue on one channel and hands each delivery to a
// pool of worker goroutines (one consumer channel feeding N workers costs
// RabbitMQ less than N consumers and is as fast). Each worker runs the
// same steps for every delivery, in this order and no other:
//
//	delivery limit -> Recover -> Log -> Metrics -> ReplyTo -> Deadline -> Decode -> Recover -> handler
//	    -> encode -> reply (or dead letter) -> ack
//
// NewBroker wraps the handler it is given in that chain of middleware
// itself (Metrics only when the Config has an Observer), so no broker
// runs without it; each middleware is also usable on its own through
// Chain.
//
// Rules stated once:
//
//   - A delivery is acknowledged only after its handler returned and its
//     reply was published. If the reply cannot be published the delivery
//     is handed back (nack, requeue), so RabbitMQ gives it to another
//     consumer.
//   - A reply to a write is confirmed, a reply to anything else is not
//     (Message.Writes decides, from the op Decode read): the reply to a
//     create, update or delete goes out on a channel in confirm mode, and
//     its delivery is acknowledged only once RabbitMQ has confirmed the
//     reply. Confirming the reply to a read, count, ping or unreadable
//     body would cost RabbitMQ a frame for nothing. The exception is a
//     reply to a direct reply-to name of a RabbitMQ node no reply has
//     reached yet, which is confirmed whatever the op (below).
//   - Replies and dead letters go out on a connection apart from the
//     consumer's (the reply connection). RabbitMQ 3.10 closes a
//     connection that publishes to a direct reply-to name whose pid it
//     cannot decode (541 INTERNAL_ERROR, RabbitMQ issues 3751 and 6396);
//     a caller sets that name. The names it can never decode are refused
//     (below). One that decodes but names a node RabbitMQ does not know
//     cannot be told apart from a real one, so a reply to a node no reply
//     has reached yet goes out alone on a third connection (the probe
//     connection), confirmed; once one gets through, its node is known
//     and later replies to it take the reply connection. A hostile name
//     so ends only the probe connection and its own reply, which is
//     requeued like any reply not published, until the delivery limit
//     dead-letters it: the consumer keeps its deliveries, and the replies
//     of others are not lost with it.
//   - Acknowledgements are batched without waiting: one ack with
//     multiple=true covers every finished delivery below the oldest one
//     still being handled, whatever was finished since the last ack. A
//     long request holds back at most half the prefetch window; past that
//     the deliveries behind it are acknowledged one by one.
//   - Every reply carries the request's correlation_id and event ID.
//   - Replies go only to direct reply-to (amq.rabbitmq.reply-to and the
//     amq.rabbitmq.reply-to.<pid>.<key> names RabbitMQ 3.10 can decode)
//     and, when Config.ReplyPrefix is set, to queues named under it
//     (ReplyTo, ReplyToAllowed). A request with any other reply_to is not
//     handled, nothing is published to its reply_to, and it is
//     dead-lettered as bad_request.
//   - A failed request that nobody can be answered for (no reply_to, or a
//     refused one) is republished to the dead-letter exchange with the
//     error code, message, event ID and node in its headers
//     (wire.HeaderError, HeaderErrorMessage, HeaderEvent, HeaderNode), on
//     the confirm-mode channel, and acknowledged only once RabbitMQ has
//     confirmed the dead letter: nothing vanishes. A successful one is
//     simply acknowledged.
//   - No request goes back to the queue for a reason that will recur: a
//     reply that cannot be encoded (a value JSON cannot hold) is answered
//     internal, one larger than Config.MaxReply too_large, a handler that
//     fails without an error internal. Only a failure to publish (a
//     channel or connection lost, a confirm that does not come) hands a
//     delivery back, and the delivery limit ends what still comes back.
//   - Delivery limit (Config.DeliveryLimit): a request delivered more
//     often than the limit is dead-lettered unhandled, with x-beds-error
//     delivery_limit and its history in headers (wire.HeaderDeliveries,
//     HeaderFirstSeen, HeaderLastSeen, HeaderLastFailure). The deliveries
//     are counted as x-delivery-count + 1 where the queue counts them
//     (quorum queues), and on every queue by the broker itself: a table
//     of the requests that came back (the redelivered flag) or failed on
//     this node, keyed by a hash of message_id, correlation_id, reply_to,
//     routing key and body, holding at most 4096 requests (the least
//     recently seen forgotten first), each counted as one more than the
//     redeliveries this node took. A request delivered once never touches
//     the table. The table is per node and per process: on a classic
//     queue a request bouncing between N nodes may be handled up to about
//     N x the limit times before one node stops it; a request that kills
//     the process is counted by nobody (quorum queues count it); and a
//     request held while its session is lost (the connection dropped) is
//     counted too, though it did nothing wrong.
//   - Nothing a delivery holds takes the process down: Recover, outermost,
//     turns a panic anywhere in the chain (logging, metrics, the
//     Observer, decoding) into an internal reply, and again innermost so
//     that Log and Metrics see a handler's panic as that reply; a panic
//     in encoding is answered internal; and a panic in the broker's own
//     steps rejects the delivery to the dead-letter exchange.
//   - The broker watches its connections and each of their channels.
//     When the consumer's connection or channel closes, the broker is not
//     Ready, hands back what it holds unhandled, and starts a new session.
//     When the reply connection or one of its channels (the plain one, the
//     confirm-mode one) closes, the broker is not Ready until a new reply
//     connection is open; the consumer keeps its deliveries, and their
//     workers wait for it. A reply in flight when it closed is handled as
//     one not published: a write's reply was not confirmed, so its
//     request is requeued and answered from its record on redelivery; a
//     read's reply, not confirmed, counts as published once written to
//     the socket, its request is acknowledged, and if RabbitMQ had not
//     routed it yet the caller gets no answer and times out at its
//     deadline (the Go client's Do then returns timeout; a read is safe
//     to send again). Only a publish that fails outright requeues a read.
//     Both connections reconnect with bounded backoff; the probe
//     connection is dialed again when next needed, with backoff only
//     after a failed dial.
//   - Config.MaxTimeout caps the caller's expiration (Deadline).
//   - On shutdown the broker cancels its consumer, finishes every delivery
//     it already holds, acknowledges them, then closes.
package dispatch

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

// Message is one request being handled.
type Message struct {
	// Event is the request's event ID: its message_id if the caller set a
	// valid one, otherwise one generated on arrival.
	Event string
	// Parent is the event the request joins as a child: its
	// x-beds-parent header when that is a valid event ID other than the
	// request's own, otherwise empty.
	Parent string
	// Trace is the request's W3C traceparent header when well formed,
	// otherwise empty; it is logged with the event and returned on the
	// reply.
	Trace    string
	Delivery *amqp.Delivery
	// Request is the decoded body, filled by the Decode middleware. Before
	// Decode, or when the body could not be read, it is an empty Request.
	Request  *wire.Request
	Received time.Time
	// Caller is who sent the request, set by the handler's
	// authentication (package access) before the handler runs: a user of
	// a session, or a trusted service. nil means nobody known.
	Caller *wire.Identity

	req  wire.Request                // what Request points to: one allocation for both
	base *slog.Logger                // the broker's logger
	log  atomic.Pointer[slog.Logger] // base with the event ID, made on first use

	reply        replyVerdict // on Delivery.ReplyTo, once replyChecked
	replyChecked bool
}

// replyTo returns the verdict on the delivery's reply_to, decoding the
// name on first use only: the ReplyTo middleware, the broker's answer and
// its reply all ask. A broker's prefix does not change, so the first
// prefix asked with stands.
func (m *Message) replyTo(prefix string) replyVerdict {
	if !m.replyChecked {
		m.reply, m.replyChecked = checkReplyTo(m.Delivery.ReplyTo, prefix), true
	}
	return m.reply
}

// NewMessage starts handling delivery d: its event ID is the delivery's
// message_id when valid, otherwise a new one from ids.
func NewMessage(d *amqp.Delivery, log *slog.Logger, ids *lineage.Generator) *Message {
	m := &Message{Delivery: d, Received: time.Now(), Event: d.MessageId, base: log}
	m.Request = &m.req
	if !lineage.Valid(m.Event) {
		m.Event = ids.New()
	}
	if p, ok := d.Headers[wire.HeaderParent].(string); ok && lineage.Valid(p) && p != m.Event {
		m.Parent = p
	}
	if tp, ok := d.Headers[wire.HeaderTraceParent].(string); ok && wire.ValidTraceparent(tp) {
		m.Trace = tp
	}
	return m
}

// Writes reports whether the request changes data (a create, update or
// delete, or a batch holding one): the broker then confirms its reply
// before acknowledging the delivery. The op is the one Decode read, which every Broker runs before
// its handler: a body it could not read has none and is answered like a
// read; one it read but rejected (an op with no template, say) keeps its
// op.
func (m *Message) Writes() bool { return m.Request.Writes() }

// Log returns the request's logger, which carries the event ID: use it for
// every line about the request. It is made on first use, so a request
// that logs nothing costs nothing.
//
// Log, ChildLog and Enabled are safe for concurrent use, so the
// operations a handler fans out to may log.
func (m *Message) Log() *slog.Logger {
	if l := m.log.Load(); l != nil {
		return l
	}
	m.log.CompareAndSwap(nil, m.base.With(m.attrs(m.Event, m.Parent)...))
	return m.log.Load()
}

// Enabled reports whether the request's logger writes lines of level,
// without making the logger.
func (m *Message) Enabled(ctx context.Context, level slog.Level) bool {
	return m.base.Enabled(ctx, level)
}

// ChildLog returns a logger for a child event of the request: its own
// event ID, its parent's and the request's traceparent on every line.
func (m *Message) ChildLog(event, parent string) *slog.Logger {
	return m.base.With(m.attrs(event, parent)...)
}

// attrs are the attributes of every line about an event.
func (m *Message) attrs(event, parent string) []any {
	a := []any{"event", event}
	if parent != "" {
		a = append(a, "parent", parent)
	}
	if m.Trace != "" {
		a = append(a, "trace", m.Trace)
	}
	return a
}

// Handler answers one request. It returns the reply body; a nil reply is
// answered as an internal error.
type Handler interface {
	Handle(ctx context.Context, m *Message) *wire.Reply
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Message) *wire.Reply

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, m *Message) *wire.Reply { return f(ctx, m) }

// Middleware wraps a Handler with behaviour before and after it.
type Middleware func(Handler) Handler

// Chain wraps h so that the first middleware runs outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
