// Package mq owns BEDS's use of RabbitMQ: dialing with a bounded time,
// declaring the contract's topology, and checking reachability before a
// node tries to log in.
//
// Topology (declared idempotently by every node at start and after every
// reconnect):
//
//	exchange beds       topic, durable, alternate-exchange beds.dlx
//	exchange beds.dlx   fanout, durable
//	queue beds.events   durable, dead-letter-exchange beds.dlx, type from config
//	                    (quorum: x-delivery-limit from config), bound to beds
//	                    with rec.read and rec.write
//	queue beds.dead     durable, bound to beds.dlx
//
// The alternate exchange catches messages no queue is bound for, and the
// dead-letter exchange catches rejected and expired requests, so nothing
// published to beds vanishes.
package mq

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// Addr returns host:port of an AMQP URL, for messages that must not show
// credentials.
func Addr(rawURL string) string {
	u, err := amqp.ParseURI(rawURL)
	if err != nil {
		if p, perr := url.Parse(rawURL); perr == nil {
			return p.Host
		}
		return "(unparseable amqp url)"
	}
	return net.JoinHostPort(u.Host, fmt.Sprint(u.Port))
}

// Reachable checks that something accepts TCP connections at addr.
func Reachable(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// DialConfig says how to connect.
type DialConfig struct {
	URL       string
	Name      string // connection name shown by RabbitMQ's tools
	Timeout   time.Duration
	Heartbeat time.Duration
}

// Dial opens a connection, giving up after cfg.Timeout or when ctx ends.
func Dial(ctx context.Context, cfg DialConfig) (*amqp.Connection, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(cfg.Name)
	ac := amqp.Config{
		Heartbeat:  cfg.Heartbeat,
		Properties: props,
		Locale:     "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: cfg.Timeout}
			dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			c, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bound the handshake too: a half-open server must not hang us.
			if err := c.SetDeadline(time.Now().Add(cfg.Timeout)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	conn, err := amqp.DialConfig(cfg.URL, ac)
	if err != nil {
		return nil, fmt.Errorf("amqp %s: %w", Addr(cfg.URL), err)
	}
	return conn, nil
}

// Topology describes the queues a node declares.
type Topology struct {
	QueueType string // classic or quorum
	// DeliveryLimit, for quorum queues, dead-letters a request after this
	// many failed deliveries (a poison message that kills every node that
	// takes it). 0 leaves RabbitMQ's default.
	DeliveryLimit int
	// DeadMaxLength and DeadTTL bound beds.dead: at most this many
	// messages (the oldest dropped first), each kept at most this long.
	// 0 leaves it unbounded.
	DeadMaxLength int
	DeadTTL       time.Duration
}

// Declare declares the contract's exchanges and queues on ch.
func Declare(ch *amqp.Channel, t Topology) error {
	if err := ch.ExchangeDeclare(wire.DeadExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", wire.DeadExchange, err)
	}
	if _, err := ch.QueueDeclare(wire.DeadQueue, true, false, false, false, queueArgs(t, false)); err != nil {
		return fmt.Errorf("declare queue %s: %w", wire.DeadQueue, err)
	}
	if err := ch.QueueBind(wire.DeadQueue, "", wire.DeadExchange, false, nil); err != nil {
		return fmt.Errorf("bind %s: %w", wire.DeadQueue, err)
	}
	if err := ch.ExchangeDeclare(wire.Exchange, amqp.ExchangeTopic, true, false, false, false,
		amqp.Table{"alternate-exchange": wire.DeadExchange}); err != nil {
		return fmt.Errorf("declare exchange %s: %w", wire.Exchange, err)
	}
	if _, err := ch.QueueDeclare(wire.EventsQueue, true, false, false, false, queueArgs(t, true)); err != nil {
		return fmt.Errorf("declare queue %s: %w", wire.EventsQueue, err)
	}
	for _, key := range []string{wire.RouteRead, wire.RouteWrite} {
		if err := ch.QueueBind(wire.EventsQueue, key, wire.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind %s to %s: %w", wire.EventsQueue, key, err)
		}
	}
	return nil
}

func queueArgs(t Topology, deadLetter bool) amqp.Table {
	args := amqp.Table{"x-queue-type": t.QueueType}
	if t.QueueType == "" {
		args["x-queue-type"] = "classic"
	}
	if deadLetter {
		args["x-dead-letter-exchange"] = wire.DeadExchange
		if t.QueueType == "quorum" && t.DeliveryLimit > 0 {
			args["x-delivery-limit"] = int64(t.DeliveryLimit)
		}
	}
	return args
}
