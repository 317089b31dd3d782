package client_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

func code(err error) wire.Code {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return ""
}

// TestNoAnswer: with the topology in place but no node consuming, a
// request times out at its deadline, and its expiration makes RabbitMQ
// drop it from the queue rather than leave it for a node that would answer
// nobody.
func TestNoAnswer(t *testing.T) {
	url := testenv.AMQP(t)
	ch := testenv.Channel(t, url)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := mq.Declare(conn, mq.Topology{QueueType: "classic"}, nil); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	c, err := client.Dial(ctx, url, client.Options{Name: "test", Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Do(rctx, &wire.Request{Template: "users", Op: wire.OpRead})
	if code(err) != wire.CodeTimeout {
		t.Fatalf("err %v, want timeout", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
	// The expired request is dead-lettered, not left for a node.
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(wire.DeadQueue, true, false, false, false, amqp.Table{"x-queue-type": "classic"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := ch.QueueDeclarePassive(wire.EventsQueue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Messages == 1 && e.Messages == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead %d, events %d: want the expired request dead-lettered", q.Messages, e.Messages)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A context without deadline uses Options.Timeout; an already expired
	// one fails before sending.
	expired, cancel2 := context.WithTimeout(ctx, -time.Second)
	defer cancel2()
	if _, err := c.Do(expired, &wire.Request{Template: "users", Op: wire.OpRead}); code(err) != wire.CodeTimeout {
		t.Fatalf("expired ctx: %v", err)
	}
	// After Close, requests fail as unavailable.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &wire.Request{Template: "users", Op: wire.OpRead}); code(err) != wire.CodeUnavailable {
		t.Fatalf("after close: %v", err)
	}
}

func TestDialFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, "amqp://guest:s3cret@127.0.0.1:1/", client.Options{DialTimeout: time.Second})
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || strings.Contains(msg, "s3cret") {
		t.Fatalf("error %q must name the address and hide the password", msg)
	}
}

// A malformed URL's error shows neither the password nor a piece of it
// (amqp091's own parse error quotes the whole URL).
func TestDialMalformedURLHidesThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, raw := range []string{
		"amqp://guest:s3cr%zzet@127.0.0.1:5672/",
		"amqp://guest:s3cr/et@127.0.0.1:5672/",
	} {
		_, err := client.Dial(ctx, raw, client.Options{DialTimeout: time.Second})
		if err == nil {
			t.Fatalf("%s: dial succeeded", raw)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cr") || !strings.Contains(msg, "guest:xxxxx@") {
			t.Errorf("error %q must hide the password and show the masked URL", msg)
		}
	}
}

// A client whose URL names a node that is gone connects through the next
// of its addresses, and its requests reach the queue there.
func TestDialFirstAddressClosed(t *testing.T) {
	live := testenv.AMQP(t)
	conn, err := amqp.Dial(live)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := mq.Declare(conn, mq.Topology{QueueType: "classic"}, nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	url := strings.Replace(live, mq.Addr(live), dead, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := client.Dial(ctx, url, client.Options{DialTimeout: time.Second, Addresses: []string{"no-port"}}); err == nil ||
		!strings.Contains(err.Error(), "amqp address 1 of 1") {
		t.Fatalf("dial with a malformed address: %v, want an error naming it", err)
	}
	c, err := client.Dial(ctx, url, client.Options{Name: "failover", DialTimeout: time.Second, Addresses: []string{mq.Addr(live)}})
	if err != nil {
		t.Fatalf("dial with the first address closed: %v", err)
	}
	defer c.Close()
	// Nobody consumes: the write times out in beds.events, which
	// dead-letters it when it expires.
	rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer rcancel()
	if _, err := c.Do(rctx, &wire.Request{Template: "users", Op: wire.OpCreate, Data: []byte(`{}`)}); code(err) != wire.CodeTimeout {
		t.Fatalf("write with nobody consuming: %v, want timeout", err)
	}
	ch := testenv.Channel(t, live)
	for {
		q, err := ch.QueueDeclarePassive(wire.EventsQueue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ch.QueueDeclarePassive(wire.DeadQueue, true, false, false, false, amqp.Table{"x-queue-type": "classic"})
		if err != nil {
			t.Fatal(err)
		}
		if q.Messages+d.Messages == 1 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("beds.events holds %d messages and beds.dead %d, want the one write", q.Messages, d.Messages)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A write RabbitMQ refuses (a negative confirm: here beds.events is full
// and rejects publishes) is answered unavailable, and the client starts
// again on a new connection, since a channel that was nacked may nack
// everything after (RabbitMQ 3.10's quorum queues after a leader loss).
func TestNackReconnects(t *testing.T) {
	url := testenv.AMQP(t)
	ch := testenv.Channel(t, url)
	// beds.events made before the topology, full from the start.
	if _, err := ch.QueueDeclare(wire.EventsQueue, true, false, false, false,
		amqp.Table{"x-max-length": int64(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(wire.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(wire.EventsQueue, wire.RouteWrite, wire.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Name: "nacked", Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vhost := url[strings.LastIndex(url, "/")+1:]
	port := func() string { // the client's connection, as RabbitMQ sees it
		for ctx.Err() == nil {
			out, err := exec.Command("rabbitmqctl", "-q", "list_connections", "-p", vhost, "--no-table-headers", "peer_port", "client_properties").CombinedOutput()
			if err != nil {
				t.Fatalf("rabbitmqctl list_connections: %v: %s", err, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, `"nacked"`) {
					return strings.Fields(line)[0]
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("no connection of the client")
		return ""
	}
	before := port()
	_, err = c.Do(ctx, &wire.Request{Template: "users", Op: wire.OpCreate, Data: []byte(`{}`)})
	if code(err) != wire.CodeUnavailable || !strings.Contains(err.Error(), "nack") {
		t.Fatalf("write to a full queue: %v, want unavailable (nack)", err)
	}
	for port() == before {
		if ctx.Err() != nil {
			t.Fatal("the client kept the connection its write was nacked on")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
