package testenv

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// TestResponder sends a request to a Responder and checks the reply (body
// from Answer, headers from Headers, correlation ID), the delivery handed
// over, and that the responder's consumer is gone once its test ended.
func TestResponder(t *testing.T) {
	url := AMQP(t)
	for _, tc := range []struct {
		name    string
		queue   string
		keep    int
		headers func(amqp.Delivery) amqp.Table
	}{
		{name: "tercero, deliveries kept", queue: wire.TerceroQueue, keep: 1,
			headers: func(d amqp.Delivery) amqp.Table { return amqp.Table{"x-asked": d.MessageId} }},
		{name: "events, none kept", queue: wire.EventsQueue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Responder{Queue: tc.queue, Keep: tc.keep, Headers: tc.headers, Answer: func(d amqp.Delivery) *wire.Reply {
				return &wire.Reply{OK: true, Event: d.MessageId, Node: "answered-" + string(d.Body)}
			}}.Start(t, url)
			if (got != nil) != (tc.keep > 0) {
				t.Fatalf("Keep %d: channel %v", tc.keep, got)
			}
			ch := Channel(t, url)
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			req := amqp.Publishing{MessageId: "ev-1", CorrelationId: "corr-1", ReplyTo: q.Name, Body: []byte("hello")}
			if err := ch.PublishWithContext(context.Background(), "", tc.queue, false, false, req); err != nil {
				t.Fatal(err)
			}
			d := Next(t, ch, q.Name, 10*time.Second)
			var reply wire.Reply
			if err := json.Unmarshal(d.Body, &reply); err != nil {
				t.Fatalf("reply %q: %v", d.Body, err)
			}
			if d.CorrelationId != "corr-1" || d.ContentType != wire.ContentType || !reply.OK || reply.Event != "ev-1" || reply.Node != "answered-hello" {
				t.Errorf("reply: correlation %q, content type %q, body %s", d.CorrelationId, d.ContentType, d.Body)
			}
			var want amqp.Table
			if tc.headers != nil {
				want = amqp.Table{"x-asked": "ev-1"}
			}
			if len(d.Headers) != len(want) || (want != nil && !reflect.DeepEqual(d.Headers, want)) {
				t.Errorf("reply headers %v, want %v", d.Headers, want)
			}
			if got == nil {
				return
			}
			// The delivery is handed over before it is answered.
			select {
			case d := <-got:
				if d.MessageId != "ev-1" || string(d.Body) != "hello" {
					t.Errorf("handed over %q %q", d.MessageId, d.Body)
				}
			default:
				t.Error("the request answered was not handed over")
			}
		})
		ch := Channel(t, url)
		q, err := ch.QueueDeclarePassive(tc.queue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Consumers != 0 {
			t.Errorf("%s: %d consumers after the responder's test ended", tc.queue, q.Consumers)
		}
	}
}
