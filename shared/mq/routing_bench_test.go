package mq_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// BenchmarkRouting measures what RabbitMQ spends per write request on the
// way into its queue, by the route it takes, in the same run: each
// message persistent, published with a confirm the publisher waits for
// (32 publishers), consumed and acknowledged one by one:
//
//   - default exchange: published to a durable queue by its name, the
//     bench baseline's route;
//   - beds topology: published to beds (topic, with its alternate
//     exchange) on rec.write, routed to beds.events (with its dead-letter
//     exchange), as Declare makes them: BEDS's route;
//   - direct exchange: the same queue reached through a direct exchange
//     with an alternate exchange, and default exchange to beds.events:
//     the same queue by its name, for comparison (what the exchange costs,
//     what the queue's arguments cost).
//
// Besides ns/op it reports rabbitmq-µs/op, the RabbitMQ node's CPU per
// message, when the node on the test URL runs on this machine (its pid
// from rabbitmqctl):
//
//	go test -run '^$' -bench BenchmarkRouting -benchtime 50000x ./shared/mq
func BenchmarkRouting(b *testing.B) {
	if testing.Short() {
		b.Skip("needs RabbitMQ")
	}
	url := testenv.AMQP(b)
	c, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := mq.Declare(c, mq.Topology{QueueType: "classic"}, nil); err != nil {
		b.Fatal(err)
	}
	ch, err := c.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	const plain, direct = "bench.plain", "bench.direct"
	for _, step := range []func() error{
		func() error { _, err := ch.QueueDeclare(plain, true, false, false, false, nil); return err },
		func() error {
			return ch.ExchangeDeclare(direct, amqp.ExchangeDirect, true, false, false, false, amqp.Table{"alternate-exchange": wire.DeadExchange})
		},
		func() error { return ch.QueueBind(wire.EventsQueue, wire.RouteWrite, direct, false, nil) },
	} {
		if err := step(); err != nil {
			b.Fatal(err)
		}
	}
	pid := rabbitPID()
	for _, tc := range []struct{ name, exchange, key, queue string }{
		{"default exchange", "", plain, plain},
		{"beds topology", wire.Exchange, wire.RouteWrite, wire.EventsQueue},
		{"direct exchange", direct, wire.RouteWrite, wire.EventsQueue},
		{"default exchange to beds.events", "", wire.EventsQueue, wire.EventsQueue},
	} {
		b.Run(tc.name, func(b *testing.B) { benchRoute(b, c, pid, tc.exchange, tc.key, tc.queue) })
	}
}

// benchRoute publishes b.N messages to exchange with key while one
// consumer acknowledges them from queue.
func benchRoute(b *testing.B, c *amqp.Connection, pid int, exchange, key, queue string) {
	cons, err := c.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close() // ends the consumer's deliveries, and its goroutine
	if err := cons.Qos(256, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := cons.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for d := range deliveries {
			_ = d.Ack(false)
		}
	}()
	pubs := make(chan *amqp.Channel, 32)
	for range cap(pubs) {
		p, err := c.Channel()
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		if err := p.Confirm(false); err != nil {
			b.Fatal(err)
		}
		pubs <- p
	}
	body := []byte(`{"template":"users","op":"update","filter":{"id":1},"data":{"name":"` + strings.Repeat("x", 100) + `"}}`)
	testenv.BenchParallel(b, pid, "rabbitmq-µs/op", func(ctx context.Context) error {
		p := <-pubs
		defer func() { pubs <- p }()
		conf, err := p.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{
			ContentType: wire.ContentType, DeliveryMode: amqp.Persistent, MessageId: "bench", CorrelationId: "bench",
			Expiration: "30000", Body: body,
		})
		if err != nil {
			return err
		}
		if ok, err := conf.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("not confirmed: %v", err)
		}
		return nil
	})
}

// rabbitPID returns the process ID of this machine's RabbitMQ node, or 0.
func rabbitPID() int {
	out, err := exec.Command("rabbitmqctl", "-q", "eval", "os:getpid().").Output()
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.Trim(strings.TrimSpace(string(out)), `"`))
	return pid
}
