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

// TestQuorumPoisonMessage: a request that keeps failing its deliveries
// (nacked with requeue, as when every node taking it dies) is moved to
// beds.dead after the delivery limit instead of looping forever.
func TestQuorumPoisonMessage(t *testing.T) {
	url := testenv.AMQP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := testenv.Channel(t, url)
	topo := mq.Topology{QueueType: "quorum", DeliveryLimit: 2}
	if err := mq.Declare(conn(t, url), topo, nil); err != nil {
		t.Fatal(err)
	}
	// Declaring again is idempotent: every node does it at start.
	if err := mq.Declare(conn(t, url), topo, nil); err != nil {
		t.Fatalf("second declare: %v", err)
	}
	if err := ch.PublishWithContext(ctx, wire.Exchange, wire.RouteWrite, false, false, amqp.Publishing{
		ContentType: wire.ContentType, DeliveryMode: amqp.Persistent, MessageId: "poison", Body: []byte(`{"op":"ping"}`),
	}); err != nil {
		t.Fatal(err)
	}
	deliveries := 0
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d, ok, err := ch.Get(wire.EventsQueue, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			deliveries++
			if err := d.Nack(false, true); err != nil {
				t.Fatal(err)
			}
			continue
		}
		dead, ok, err := ch.Get(wire.DeadQueue, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if dead.MessageId != "poison" {
				t.Fatalf("dead letter %q", dead.MessageId)
			}
			t.Logf("dead-lettered after %d deliveries", deliveries)
			if deliveries < 2 || deliveries > 3 {
				t.Fatalf("%d deliveries, want the limit (2) to apply", deliveries)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not dead-lettered after %d deliveries", deliveries)
}

func TestAddr(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:s3cret@example.com:5673/vh": "example.com:5673",
		"amqp://localhost/":                       "localhost:5672",
		"amqps://u:p@h/":                          "h:5671",
		"amqp://guest:31415926535/x@h:5672/":      "(malformed amqp url)", // not "guest:31415926535"
	} {
		if got := mq.Addr(in); got != want {
			t.Errorf("Addr(%q) = %q, want %q", in, got, want)
		}
	}
}
