package bench

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/wire"
)

// Target answers requests: BEDS through shared/client, or the baseline
// server through RawClient. The load generator drives both the same way.
type Target interface {
	// Do sends one request body and returns the reply, or an error that
	// is a *wire.Error when the reply (or its absence) has a code.
	Do(ctx context.Context, routingKey string, body []byte) (*wire.Reply, error)
	Close() error
}

// BEDS is the Target of a BEDS cluster, through the project's client.
type BEDS struct{ c *client.Client }

// DialBEDS connects to the cluster at url with the client's own options.
func DialBEDS(ctx context.Context, url string, opts client.Options) (*BEDS, error) {
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	return &BEDS{c: c}, nil
}

// Do implements Target.
func (b *BEDS) Do(ctx context.Context, key string, body []byte) (*wire.Reply, error) {
	return b.c.DoRaw(ctx, key, body)
}

// Close implements Target.
func (b *BEDS) Close() error { return b.c.Close() }

// sessionTarget sends every request of a BEDS target with a session
// token. It shares the BEDS target's client, which its owner closes.
type sessionTarget struct {
	*BEDS
	token string
}

// Do implements Target.
func (s *sessionTarget) Do(ctx context.Context, key string, body []byte) (*wire.Reply, error) {
	return s.c.DoRaw(ctx, key, body, client.WithSession(s.token))
}

// Close implements Target: the client is the BEDS target's.
func (s *sessionTarget) Close() error { return nil }

// RawClient is a minimal amqp091-go RPC client equivalent to shared/client:
// a few channels shared by every caller, their replies routed by the same
// mq.Replies and decoded by the same wire.DecodeReply, the same message
// properties, writes persistent and waiting for RabbitMQ's confirm. It
// publishes to one queue through the default exchange. It exists so the
// baseline is driven at the same client cost as BEDS.
type RawClient struct {
	conn    *amqp.Connection
	queue   string
	user    string // the URL's RabbitMQ user, sent as user_id as shared/client does
	chans   []*mq.Replies
	next    atomic.Uint64
	ids     *lineage.Generator
	timeout time.Duration
	wg      sync.WaitGroup
}

// DialRaw connects a RawClient that sends to queue.
func DialRaw(ctx context.Context, url, queue string, channels int, timeout time.Duration) (*RawClient, error) {
	conn, err := mq.Dial(ctx, mq.DialConfig{URL: url, Name: "bedsctl-bench/baseline-client"})
	if err != nil {
		return nil, err
	}
	c := &RawClient{conn: conn, queue: queue, ids: lineage.NewGenerator(), timeout: timeout}
	if u, err := amqp.ParseURI(url); err == nil {
		c.user = u.Username
	}
	for i := 0; i < max(channels, 1); i++ {
		ch, err := conn.Channel()
		if err != nil {
			c.Close()
			return nil, err
		}
		// As shared/client: writes wait for RabbitMQ's confirm.
		if err := ch.Confirm(false); err != nil {
			c.Close()
			return nil, err
		}
		rc, err := mq.ConsumeReplies(ch)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.chans = append(c.chans, rc)
		c.wg.Go(rc.Run)
	}
	return c, nil
}

// Do implements Target. Writes are published persistent, as shared/client
// does.
func (c *RawClient) Do(ctx context.Context, key string, body []byte) (*wire.Reply, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.timeout)
	}
	wait := time.Until(deadline)
	event := c.ids.New()
	rc := c.chans[c.next.Add(1)%uint64(len(c.chans))]
	w, ok := rc.Expect(event)
	if !ok {
		return nil, wire.Errorf(wire.CodeUnavailable, "baseline connection closed")
	}
	forget := func() { rc.Forget(event) }
	write := key == wire.RouteWrite
	mode := amqp.Transient
	if write {
		mode = amqp.Persistent
	}
	conf, err := rc.Channel().PublishWithDeferredConfirmWithContext(ctx, "", c.queue, false, false, amqp.Publishing{
		ContentType: wire.ContentType, DeliveryMode: mode, CorrelationId: event, MessageId: event, UserId: c.user,
		ReplyTo: wire.DirectReplyTo, Expiration: strconv.FormatInt(max(wait.Milliseconds(), 1), 10),
		Timestamp: time.Now(), Body: body,
	})
	if err != nil {
		forget()
		return nil, &wire.Error{Code: wire.CodeUnavailable, Message: "publish: " + err.Error()}
	}
	if write && conf != nil {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		acked, err := conf.WaitContext(cctx)
		cancel()
		if err != nil || !acked {
			forget()
			return nil, wire.Errorf(wire.CodeUnavailable, "RabbitMQ did not confirm event %s", event)
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case d, ok := <-w:
		if !ok {
			return nil, wire.Errorf(wire.CodeUnavailable, "baseline connection closed")
		}
		return wire.DecodeReply(d.Body)
	case <-timer.C:
		forget()
		return nil, wire.Errorf(wire.CodeTimeout, "no reply to event %s within %s", event, wait.Round(time.Millisecond))
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// Close implements Target.
func (c *RawClient) Close() error {
	err := c.conn.Close()
	c.wg.Wait()
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
