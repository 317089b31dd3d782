package dispatch_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/wire"
)

func TestDeadline(t *testing.T) {
	const fallback = time.Hour
	for _, tc := range []struct {
		name       string
		expiration string
		age        time.Duration // how long ago the node received it
		want       time.Duration // the deadline after Received; 0: answered timeout unrun
	}{
		{"expiration", "1500", 0, 1500 * time.Millisecond},
		{"expiration counted from arrival", "60000", 2 * time.Second, time.Minute},
		{"none: the fallback", "", 0, fallback},
		{"not a number: the fallback", "soon", 0, fallback},
		{"negative: the fallback", "-5", 0, fallback},
		{"partly a number: the fallback", "12ms", 0, fallback},
		{"absurdly large: the fallback", "99999999999999999999", 0, fallback},
		{"zero: already passed", "0", 0, 0},
		{"passed while queued", "1000", 2 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := message(&amqp.Delivery{Expiration: tc.expiration})
			m.Received = m.Received.Add(-tc.age)
			n := &next{reply: ok()}
			reply := dispatch.Deadline(fallback, 0)(n).Handle(context.Background(), m)
			if tc.want == 0 {
				if n.called || reply.OK || reply.Error.Code != wire.CodeTimeout || reply.Event != m.Event {
					t.Fatalf("called %v, reply %+v: want timeout unrun", n.called, reply)
				}
				return
			}
			if !n.called || !reply.OK {
				t.Fatalf("called %v, reply %+v", n.called, reply)
			}
			dl, ok := n.ctx.Deadline()
			if want := m.Received.Add(tc.want); !ok || !dl.Equal(want) {
				t.Fatalf("deadline %v (set %v), want %v", dl, ok, want)
			}
			if n.ctx.Err() == nil {
				t.Fatal("the handler's context outlives the handler")
			}
		})
	}
}

// A caller's deadline never extends one the context already has.
func TestDeadlineKeepsAnEarlierOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	early, _ := ctx.Deadline()
	n := &next{reply: ok()}
	dispatch.Deadline(time.Hour, 0)(n).Handle(ctx, message(&amqp.Delivery{Expiration: "60000"}))
	if dl, _ := n.ctx.Deadline(); !dl.Equal(early) {
		t.Fatalf("deadline %v, want the earlier %v", dl, early)
	}
}

// The caller's expiration, and the fallback, are cut to the limit: a
// caller cannot make the node work on its request for longer.
func TestDeadlineLimit(t *testing.T) {
	const limit = time.Minute
	for _, tc := range []struct {
		name       string
		fallback   time.Duration
		expiration string
		want       time.Duration // the deadline after Received
	}{
		{"expiration under the limit", time.Hour, "1500", 1500 * time.Millisecond},
		{"expiration at the limit", time.Hour, "60000", limit},
		{"expiration over the limit", time.Second, "3600000", limit},
		{"the largest expiration read", time.Second, "1099511627776", limit},
		{"fallback over the limit", time.Hour, "", limit},
		{"fallback under the limit", time.Second, "", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := message(&amqp.Delivery{Expiration: tc.expiration})
			n := &next{reply: ok()}
			dispatch.Deadline(tc.fallback, limit)(n).Handle(context.Background(), m)
			dl, ok := n.ctx.Deadline()
			if want := m.Received.Add(tc.want); !n.called || !ok || !dl.Equal(want) {
				t.Fatalf("called %v, deadline %v after arrival, want %v", n.called, dl.Sub(m.Received), tc.want)
			}
		})
	}
}
