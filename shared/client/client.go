// Package client is the Go client of BEDS: applications call templates
// through it and never see a database.
//
// Dial once and share the Client: Do is safe for concurrent use and keeps
// many requests in flight over a few AMQP channels. Each channel consumes
// RabbitMQ's direct reply-to pseudo queue, so replies need no queue of
// their own; each reply is routed to its caller by correlation ID (the
// request's event ID).
//
// The context's deadline becomes the message's expiration (RabbitMQ drops
// a request nobody picked up in time, and the node stops working on it
// when the deadline passes) and the client's own wait. Without a deadline,
// Options.Timeout applies.
//
// Do returns the reply when it is ok, and otherwise an error: the reply's
// *wire.Error when the node answered one, or a *wire.Error with code
// timeout or unavailable when no answer came. errors.As(err, &werr) and
// werr.Code.Retryable() tell a caller what to do.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/wire"
)

// Options configure a Client.
type Options struct {
	// Name identifies the application in RabbitMQ's tools.
	Name string
	// Channels is how many AMQP channels carry requests (default 4).
	Channels int
	// Timeout bounds a request whose context has no deadline (default 30s).
	Timeout time.Duration
	// DialTimeout bounds connecting (default 5s).
	DialTimeout time.Duration
}

// Client sends requests to BEDS. It is safe for concurrent use.
type Client struct {
	conn    *amqp.Connection
	chans   []*replyChannel
	next    atomic.Uint64
	ids     *lineage.Generator
	timeout time.Duration
	wg      sync.WaitGroup
}

// replyChannel is one channel with its callers waiting for replies.
type replyChannel struct {
	ch      *amqp.Channel
	mu      sync.Mutex
	pending map[string]chan amqp.Delivery
	err     error // set once the channel is closed
}

// Dial connects to the broker at url.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	if opts.Channels <= 0 {
		opts.Channels = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Name == "" {
		opts.Name = "beds-client"
	}
	conn, err := mq.Dial(ctx, mq.DialConfig{URL: url, Name: opts.Name, Timeout: opts.DialTimeout})
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, ids: lineage.NewGenerator(), timeout: opts.Timeout}
	for i := 0; i < opts.Channels; i++ {
		rc, err := c.openChannel()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.chans = append(c.chans, rc)
	}
	return c, nil
}

func (c *Client) openChannel() (*replyChannel, error) {
	ch, err := c.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	// Direct reply-to requires no-ack consumption.
	deliveries, err := ch.Consume(wire.DirectReplyTo, "", true, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume direct reply-to: %w", err)
	}
	rc := &replyChannel{ch: ch, pending: map[string]chan amqp.Delivery{}}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for d := range deliveries {
			rc.mu.Lock()
			w := rc.pending[d.CorrelationId]
			delete(rc.pending, d.CorrelationId)
			rc.mu.Unlock()
			if w != nil {
				w <- d
			}
		}
		// The channel is gone: fail everyone still waiting on it.
		rc.mu.Lock()
		rc.err = amqp.ErrClosed
		for id, w := range rc.pending {
			close(w)
			delete(rc.pending, id)
		}
		rc.mu.Unlock()
	}()
	return rc, nil
}

// Close closes the connection; requests in flight fail with unavailable.
func (c *Client) Close() error {
	err := c.conn.Close()
	c.wg.Wait()
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}

// Do sends req and waits for its reply.
func (c *Client) Do(ctx context.Context, req *wire.Request) (*wire.Reply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return c.DoRaw(ctx, req.Op.RoutingKey(), body)
}

// DoRaw sends an already encoded request body with the given routing key.
// It is for tools and tests that must send bodies Do would never produce.
func (c *Client) DoRaw(ctx context.Context, routingKey string, body []byte) (*wire.Reply, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.timeout)
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return nil, wire.Errorf(wire.CodeTimeout, "deadline passed before the request was sent")
	}
	event := c.ids.New()
	rc := c.chans[c.next.Add(1)%uint64(len(c.chans))]
	w := make(chan amqp.Delivery, 1)
	rc.mu.Lock()
	if rc.err != nil {
		rc.mu.Unlock()
		return nil, wire.Errorf(wire.CodeUnavailable, "connection to the broker is closed")
	}
	rc.pending[event] = w
	rc.mu.Unlock()
	forget := func() {
		rc.mu.Lock()
		delete(rc.pending, event)
		rc.mu.Unlock()
	}

	mode := amqp.Transient
	if routingKey == wire.RouteWrite {
		mode = amqp.Persistent
	}
	err := rc.ch.PublishWithContext(ctx, wire.Exchange, routingKey, false, false, amqp.Publishing{
		ContentType: wire.ContentType, DeliveryMode: mode, CorrelationId: event, MessageId: event,
		ReplyTo: wire.DirectReplyTo, Expiration: strconv.FormatInt(max(wait.Milliseconds(), 1), 10),
		Timestamp: time.Now(), Body: body,
	})
	if err != nil {
		forget()
		return nil, &wire.Error{Code: wire.CodeUnavailable, Message: "publish: " + err.Error()}
	}

	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case d, ok := <-w:
		if !ok {
			return nil, wire.Errorf(wire.CodeUnavailable, "connection to the broker closed while waiting for event %s", event)
		}
		return decodeReply(d.Body)
	case <-timer.C:
		forget()
		return nil, wire.Errorf(wire.CodeTimeout, "no reply to event %s within %s", event, wait.Round(time.Millisecond))
	case <-ctx.Done():
		forget()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, wire.Errorf(wire.CodeTimeout, "no reply to event %s before the deadline", event)
		}
		return nil, fmt.Errorf("event %s: %w", event, ctx.Err())
	}
}

func decodeReply(body []byte) (*wire.Reply, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var r wire.Reply
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode reply: %w", err)
	}
	if !r.OK {
		if r.Error == nil {
			return &r, wire.Errorf(wire.CodeInternal, "reply not ok and without error")
		}
		return &r, r.Error
	}
	return &r, nil
}
