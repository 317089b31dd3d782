// Package dispatch turns deliveries from a queue into replies.
//
// A Broker consumes one queue on one channel and hands each delivery to a
// pool of worker goroutines (one consumer channel feeding N workers costs
// RabbitMQ less than N consumers and is as fast). Each worker runs the
// same steps for every delivery, in this order and no other:
//
//	Log -> Metrics -> Deadline -> Decode -> Recover -> handler -> reply -> ack
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
//     body would cost RabbitMQ a frame for nothing.
//   - Acknowledgements are batched without waiting: one ack with
//     multiple=true covers every finished delivery below the oldest one
//     still being handled, whatever was finished since the last ack. A
//     long request holds back at most half the prefetch window; past that
//     the deliveries behind it are acknowledged one by one.
//   - Every reply carries the request's correlation_id and event ID.
//   - A failed request that nobody can be answered for (no reply_to) is
//     republished to the dead-letter exchange with the error code, message
//     and event ID in its headers (wire.HeaderError, HeaderErrorMessage,
//     HeaderEvent), then acknowledged: nothing vanishes. A successful one
//     is simply acknowledged.
//   - A handler never takes the process down: Recover turns a panic into
//     an internal reply.
//   - On shutdown the broker cancels its consumer, finishes every delivery
//     it already holds, acknowledges them, then closes.
package dispatch

import (
	"context"
	"log/slog"
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
	// Parent is the parent event's ID for a child event.
	Parent   string
	Delivery *amqp.Delivery
	// Request is the decoded body, filled by the Decode middleware. Before
	// Decode, or when the body could not be read, it is an empty Request.
	Request  *wire.Request
	Received time.Time

	req  wire.Request // what Request points to: one allocation for both
	base *slog.Logger // the broker's logger
	log  *slog.Logger // base with the event ID, made on first use
}

// NewMessage starts handling delivery d: its event ID is the delivery's
// message_id when valid, otherwise a new one from ids.
func NewMessage(d *amqp.Delivery, log *slog.Logger, ids *lineage.Generator) *Message {
	m := &Message{Delivery: d, Received: time.Now(), Event: d.MessageId, base: log}
	m.Request = &m.req
	if !lineage.Valid(m.Event) {
		m.Event = ids.New()
	}
	if p, ok := d.Headers[wire.HeaderParent].(string); ok {
		m.Parent = p
	}
	return m
}

// Writes reports whether the request's op changes data (create, update,
// delete): the broker then confirms its reply before acknowledging the
// delivery. The op is the one Decode read, which every Broker runs before
// its handler: a body it could not read has none and is answered like a
// read; one it read but rejected (an op with no template, say) keeps its
// op.
func (m *Message) Writes() bool { return m.Request.Op.Writes() }

// Log returns the request's logger, which carries the event ID: use it for
// every line about the request. It is made on first use, so a request
// that logs nothing costs nothing.
func (m *Message) Log() *slog.Logger {
	if m.log == nil {
		m.log = m.base.With("event", m.Event)
	}
	return m.log
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
