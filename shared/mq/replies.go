package mq

import (
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// Replies is one channel whose requests are answered through RabbitMQ's
// direct reply-to pseudo queue: it consumes the pseudo queue and hands each
// reply to the caller waiting under its correlation ID. A reply nobody
// waits for (its caller gave up) is dropped.
//
// Requests that expect a reply must be published on Channel with ReplyTo
// wire.DirectReplyTo: RabbitMQ routes the reply back to the channel that
// published the request.
type Replies struct {
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery

	mu      sync.Mutex
	pending map[string]chan amqp.Delivery
	closed  bool
}

// ConsumeReplies starts consuming direct reply-to on ch. Put ch in confirm
// mode first if it needs it. The caller owns the routing loop: it must run
// Run, which returns when ch closes.
func ConsumeReplies(ch *amqp.Channel) (*Replies, error) {
	// Direct reply-to requires no-ack consumption.
	deliveries, err := ch.Consume(wire.DirectReplyTo, "", true, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume direct reply-to: %w", err)
	}
	return &Replies{ch: ch, deliveries: deliveries, pending: map[string]chan amqp.Delivery{}}, nil
}

// Channel is the channel to publish requests on.
func (r *Replies) Channel() *amqp.Channel { return r.ch }

// Run routes replies to their waiters until the channel closes. Then it
// wakes every caller still waiting (its reply channel closes without a
// value) and Expect refuses new waiters.
func (r *Replies) Run() {
	for d := range r.deliveries {
		r.mu.Lock()
		w := r.pending[d.CorrelationId]
		delete(r.pending, d.CorrelationId)
		r.mu.Unlock()
		if w != nil {
			w <- d // buffered for exactly this value: never blocks
		}
	}
	r.mu.Lock()
	r.closed = true
	for id, w := range r.pending {
		close(w)
		delete(r.pending, id)
	}
	r.mu.Unlock()
}

// Expect registers the caller as the waiter for the reply with correlation
// ID id, before it publishes the request, and returns the channel the reply
// arrives on; the channel is closed without a value if the AMQP channel
// closes first. ok is false when the AMQP channel has already closed: the
// request must not be published here. A second Expect with the same id
// replaces the first waiter.
func (r *Replies) Expect(id string) (reply <-chan amqp.Delivery, ok bool) {
	w := make(chan amqp.Delivery, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false
	}
	r.pending[id] = w
	return w, true
}

// Forget drops the waiter for id, for a caller that stops waiting; a reply
// that arrives later is dropped.
func (r *Replies) Forget(id string) {
	r.mu.Lock()
	delete(r.pending, id)
	r.mu.Unlock()
}
