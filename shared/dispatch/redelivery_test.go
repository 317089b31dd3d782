package dispatch

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestTries: how a node counts the deliveries of a request that comes
// back, on a classic queue (the redelivered flag) and a quorum queue
// (x-delivery-count), within a bounded table.
func TestTries(t *testing.T) {
	now := time.Now()
	poison := func(redelivered bool) *amqp.Delivery {
		return &amqp.Delivery{MessageId: "m", CorrelationId: "c", ReplyTo: "r", RoutingKey: "rec.write", Body: []byte("body"), Redelivered: redelivered}
	}
	t.Run("classic: first delivery, failure, redeliveries", func(t *testing.T) {
		tr := newTries(3, 10)
		if _, over := tr.arrive(poison(false), now); over {
			t.Fatal("first delivery over the limit")
		}
		if tr.order.Len() != 0 {
			t.Fatal("a first delivery is remembered")
		}
		tr.failed(poison(false), "reply channel closed", now)
		for i := 2; i <= 3; i++ {
			if _, over := tr.arrive(poison(true), now.Add(time.Duration(i)*time.Second)); over {
				t.Fatalf("delivery %d over the limit of 3", i)
			}
		}
		h, over := tr.arrive(poison(true), now.Add(4*time.Second))
		if !over || h.deliveries != 4 || h.cause != "reply channel closed" || !h.first.Equal(now) || !h.last.Equal(now.Add(4*time.Second)) {
			t.Fatalf("4th delivery: over %v, history %+v", over, h)
		}
	})
	t.Run("classic: a redelivery never seen before counts as the second", func(t *testing.T) {
		tr := newTries(1, 10)
		if h, over := tr.arrive(poison(true), now); !over || h.deliveries != 2 || h.cause != "" {
			t.Fatalf("over %v, history %+v", over, h)
		}
	})
	t.Run("quorum: x-delivery-count", func(t *testing.T) {
		tr := newTries(3, 10)
		for _, tc := range []struct {
			count any
			over  bool
		}{
			{int64(2), false}, {int64(3), true}, {int32(9), true}, {uint8(3), true}, {"9", false}, {int64(-1), false},
		} {
			d := poison(true)
			d.Body = []byte(fmt.Sprint(tc.count)) // each its own request
			d.Headers = amqp.Table{"x-delivery-count": tc.count}
			if _, over := tr.arrive(d, now); over != tc.over {
				t.Errorf("x-delivery-count %#v: over %v, want %v", tc.count, over, tc.over)
			}
		}
	})
	t.Run("forget", func(t *testing.T) {
		tr := newTries(2, 10)
		tr.arrive(poison(true), now)
		tr.forget(poison(true))
		if tr.order.Len() != 0 || len(tr.byKey) != 0 {
			t.Fatal("a settled request is still remembered")
		}
		if _, over := tr.arrive(poison(true), now); over {
			t.Fatal("counted from before it was forgotten")
		}
	})
	t.Run("bounded, the least recently touched forgotten first", func(t *testing.T) {
		tr := newTries(5, 3)
		d := func(i int) *amqp.Delivery {
			d := poison(true)
			d.MessageId = fmt.Sprint(i)
			return d
		}
		for i := range 3 {
			tr.arrive(d(i), now)
		}
		tr.arrive(d(0), now) // 0 touched again: 1 is now the oldest
		tr.arrive(d(3), now) // evicts 1
		if tr.order.Len() != 3 || len(tr.byKey) != 3 {
			t.Fatalf("%d entries (%d keys), want the bound 3", tr.order.Len(), len(tr.byKey))
		}
		if _, ok := tr.byKey[tr.key(d(1))]; ok {
			t.Fatal("the least recently touched request is still remembered")
		}
		if _, ok := tr.byKey[tr.key(d(0))]; !ok {
			t.Fatal("a recently touched request was forgotten")
		}
		for range 1000 {
			tr.failed(poison(false), string(make([]byte, 10000)), now)
		}
		if e := tr.byKey[tr.key(poison(false))].Value.(*try); len(e.cause) > maxCause {
			t.Fatalf("a cause of %d bytes kept", len(e.cause))
		}
	})
	t.Run("no limit: nothing counted", func(t *testing.T) {
		var tr *tries = newTries(0, 10)
		tr.failed(poison(false), "x", now)
		if _, over := tr.arrive(poison(true), now); over || tr != nil {
			t.Fatal("counted without a limit")
		}
		tr.forget(poison(true))
	})
}
