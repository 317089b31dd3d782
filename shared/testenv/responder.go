package testenv

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/wire"
)

// A Responder stands in for a service a test talks to over RabbitMQ
// (tercero on wire.TerceroQueue, a node on wire.EventsQueue): it takes
// every request of Queue and replies to its ReplyTo with its correlation
// ID. What it answers is the test's business, given by Answer and Headers.
type Responder struct {
	// Queue is the queue consumed, with automatic acks.
	Queue string
	// Answer returns the reply to a delivery. It runs on the responder's
	// one goroutine, so a slow or blocking Answer delays every later
	// reply; a test that makes it block must release it in a cleanup
	// registered after Start, so that it runs first.
	Answer func(amqp.Delivery) *wire.Reply
	// Headers, when set, returns the headers of the reply to a delivery
	// (a traceparent echoed, for one).
	Headers func(amqp.Delivery) amqp.Table
	// Keep is how many deliveries the channel Start returns holds unread;
	// one more unread fails the test. With Keep 0 none is handed over and
	// Start returns nil.
	Keep int
}

// Start declares BEDS's topology with classic queues on the virtual host
// at url (nothing changes where it exists alike), consumes r.Queue and
// answers each delivery, after sending it on the returned channel when
// r.Keep is above 0. It stops when the test ends: its cleanup closes the
// connection and waits for its goroutine. Failing to reply is reported
// with t.Errorf, unless the cleanup's close caused it.
func (r Responder) Start(t testing.TB, url string) <-chan amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("testenv: responder: amqp %s: %v", url, err)
	}
	var closing atomic.Bool
	done := make(chan struct{})
	t.Cleanup(func() {
		closing.Store(true)
		_ = conn.Close()
		<-done
	})
	if err := mq.Declare(conn, mq.Topology{QueueType: "classic"}, nil); err != nil {
		close(done)
		t.Fatalf("testenv: responder: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		close(done)
		t.Fatalf("testenv: responder: open channel: %v", err)
	}
	deliveries, err := ch.Consume(r.Queue, "", true, false, false, false, nil)
	if err != nil {
		close(done)
		t.Fatalf("testenv: responder: consume %s: %v", r.Queue, err)
	}
	var got chan amqp.Delivery
	if r.Keep > 0 {
		got = make(chan amqp.Delivery, r.Keep)
	}
	go func() {
		defer close(done)
		for d := range deliveries {
			if got != nil {
				select {
				case got <- d:
				default:
					t.Errorf("testenv: responder on %s: more than %d requests unread by the test", r.Queue, cap(got))
				}
			}
			body, err := json.Marshal(r.Answer(d))
			if err != nil {
				t.Errorf("testenv: responder on %s: encode the reply: %v", r.Queue, err)
				continue
			}
			msg := amqp.Publishing{ContentType: wire.ContentType, CorrelationId: d.CorrelationId, Body: body}
			if r.Headers != nil {
				msg.Headers = r.Headers(d)
			}
			if err := ch.PublishWithContext(context.Background(), "", d.ReplyTo, false, false, msg); err != nil && !closing.Load() {
				t.Errorf("testenv: responder on %s: reply: %v", r.Queue, err)
			}
		}
	}()
	return got
}
