package dispatch_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// TestNackedDeadLetterReconnects: a dead letter RabbitMQ refuses (here
// beds.dead is full and rejects publishes) starts a new reply
// connection, since a channel RabbitMQ nacked may nack all that follows
// (RabbitMQ 3.10, a quorum beds.dead whose leader went away), and the
// request is not taken as done: it is still in beds.events or held.
func TestNackedDeadLetterReconnects(t *testing.T) {
	url := testenv.AMQP(t)
	ch := testenv.Channel(t, url)
	// Made before the broker's topology, which keeps it (other bounds).
	if _, err := ch.QueueDeclare(wire.DeadQueue, true, false, false, false,
		amqp.Table{"x-queue-type": "classic", "x-max-length": int64(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	b, stop := runBrokerWith(t, url, dispatch.HandlerFunc(echo), func(c *dispatch.Config) {
		c.RetryMin, c.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	})
	_, before, _ := dispatch.Sessions(b)
	// No reply_to: the failure is dead-lettered, and RabbitMQ nacks it.
	publish(t, ch, wire.RouteRead, amqp.Publishing{MessageId: ids.New(), Body: []byte(`{"template":"fail","op":"read"}`)})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, reply, _ := dispatch.Sessions(b); reply > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reply side kept the channel RabbitMQ nacked a dead letter on")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("drain: %v", err)
	}
	q, err := ch.QueueDeclarePassive(wire.EventsQueue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 1 {
		t.Fatalf("beds.events holds %d messages after the drain, want the request whose dead letter was refused", q.Messages)
	}
}
