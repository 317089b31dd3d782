package mq_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// TestReplies: replies reach the caller waiting under their correlation ID
// whatever their order, replies nobody waits for are dropped without
// stalling the others, and closing the channel wakes the callers still
// waiting and refuses new ones.
func TestReplies(t *testing.T) {
	url := testenv.AMQP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ch := testenv.Channel(t, url)
	rc, err := mq.ConsumeReplies(ch)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Channel() != ch {
		t.Fatal("Channel is not the channel consumed on")
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		rc.Run()
	}()
	t.Cleanup(func() { _ = ch.Close(); <-ran })

	// The answering side: a queue and a channel that replies by hand.
	srv := testenv.Channel(t, url)
	q, err := srv.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	request := func(id string) {
		t.Helper()
		if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp.Publishing{
			CorrelationId: id, ReplyTo: wire.DirectReplyTo, Body: []byte(id),
		}); err != nil {
			t.Fatal(err)
		}
	}
	// take returns the next request on the queue, waiting for it.
	take := func() amqp.Delivery {
		t.Helper()
		for ctx.Err() == nil {
			d, ok, err := srv.Get(q.Name, true)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				return d
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("no request arrived")
		return amqp.Delivery{}
	}
	answer := func(d amqp.Delivery, id string) {
		t.Helper()
		if err := srv.PublishWithContext(ctx, "", d.ReplyTo, false, false, amqp.Publishing{
			CorrelationId: id, Body: []byte("re:" + id),
		}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(id string) <-chan amqp.Delivery {
		t.Helper()
		w, ok := rc.Expect(id)
		if !ok {
			t.Fatalf("Expect(%s) refused on an open channel", id)
		}
		return w
	}
	receive := func(w <-chan amqp.Delivery, id string) {
		t.Helper()
		select {
		case d, ok := <-w:
			if !ok || d.CorrelationId != id || string(d.Body) != "re:"+id {
				t.Fatalf("waiter %s got %q %q (ok %v)", id, d.CorrelationId, d.Body, ok)
			}
		case <-ctx.Done():
			t.Fatalf("no reply for %s", id)
		}
	}

	// Two callers, answered in the reverse order.
	a, b := expect("a"), expect("b")
	request("a")
	request("b")
	da, db := take(), take()
	answer(db, "b")
	answer(da, "a")
	receive(b, "b")
	receive(a, "a")

	// A caller that gave up, and a reply nobody asked for: both dropped,
	// and the next reply (sent after them, so routed after them) arrives.
	c, d := expect("c"), expect("d")
	request("c")
	request("d")
	dc, dd := take(), take()
	rc.Forget("c")
	answer(dc, "c")
	answer(dc, "stranger")
	answer(dd, "d")
	receive(d, "d")
	select {
	case got, ok := <-c:
		t.Fatalf("forgotten waiter got %q (ok %v)", got.CorrelationId, ok)
	default:
	}

	// The channel closes: a waiter still waiting wakes without a reply,
	// Run returns, and no new waiter is accepted.
	e := expect("e")
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case got, ok := <-e:
		if ok {
			t.Fatalf("waiter got %q from a closed channel", got.CorrelationId)
		}
	case <-ctx.Done():
		t.Fatal("waiter not woken when the channel closed")
	}
	select {
	case <-ran:
	case <-ctx.Done():
		t.Fatal("Run did not return when the channel closed")
	}
	if _, ok := rc.Expect("f"); ok {
		t.Error("Expect accepted a waiter on a closed channel")
	}
}
