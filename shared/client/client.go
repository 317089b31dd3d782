// Package client is the Go client of BEDS: applications call templates
// through it and never see a database.
//
// Dial once and share the Client: Do is safe for concurrent use and keeps
// many requests in flight over a few AMQP channels. Each channel consumes
// RabbitMQ's direct reply-to pseudo queue, so replies need no queue of
// their own; each reply is routed to its caller by correlation ID (the
// request's event ID).
//
// Rules stated once:
//
//   - The context's deadline becomes the message's expiration (RabbitMQ
//     drops a request nobody picked up in time, and the node stops working
//     on it when the deadline passes) and bounds the client's wait.
//     Without a deadline, Options.Timeout applies.
//   - Writes (create, update, delete, and a batch holding one) are
//     published persistent and with publisher confirms: Do does not wait
//     for a reply until RabbitMQ has taken responsibility for the request.
//   - The connection recovers by itself. A request whose connection is lost
//     before it was answered is sent again, with the same event ID, until
//     its deadline: the node applies a write once per event ID, so a resent
//     write is answered with the first result instead of applying twice.
//     A write RabbitMQ refuses (a negative confirm) is answered unavailable
//     and the connection is made anew, since the channel may refuse all
//     that follows. With Options.Addresses, each new connection goes to
//     the next node of the cluster that answers.
//   - Do returns the reply. For a reply that is not ok it also returns the
//     reply's *wire.Error; when no answer came it returns a *wire.Error
//     with code timeout or unavailable. errors.As(err, &werr) and
//     werr.Code.Retryable() tell a caller what to do.
//   - Per-call options (CallOption) become AMQP headers of the request:
//     WithParent sets x-beds-parent, WithTraceparent sets traceparent,
//     WithSession sets x-beds-session. An invalid option fails the call
//     with bad_request before anything is sent. A traceparent the node
//     puts on its reply is Reply.Trace.
//   - A call acts as the client's session (Options.Session, or what
//     SetSession set last) unless it gives WithSession; with neither it
//     acts as the URL's RabbitMQ user, sent as user_id. Login is the one
//     call that never sends the client's session (session.go).
//   - Passwords and session tokens go only into request bodies and
//     headers: the client never logs them or puts them in an error.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
	// Channels is how many AMQP channels carry reads, and as many again
	// (in confirm mode) carry writes (default 4).
	Channels int
	// Timeout bounds a request whose context has no deadline (default 30s).
	Timeout time.Duration
	// DialTimeout bounds one connection attempt to one address (default
	// 5s).
	DialTimeout time.Duration
	// Addresses are the other nodes of the URL's RabbitMQ cluster, each
	// host:port, reached with the URL's credentials, virtual host and
	// parameters. The client connects to one of the URL's node and these
	// (a different one first for each connection, in rotation), and when
	// its connection is lost it reconnects to whichever answers: a node
	// going away moves the client to another (package mq, Dial).
	Addresses []string
	// Log receives reconnect events (default: discarded).
	Log *slog.Logger
	// Session is a session token (Identity.Token, as Login answered it)
	// sent in header x-beds-session with every call that does not give
	// WithSession itself: the calls then act as that session's user.
	// Empty: calls act as the URL's RabbitMQ user. SetSession changes it.
	Session string
}

// Client sends requests to BEDS. It is safe for concurrent use.
type Client struct {
	url  string
	user string // the URL's RabbitMQ user, sent as user_id
	opts Options
	ids  *lineage.Generator
	next atomic.Uint64
	// token is the session sent with every call (Options.Session,
	// SetSession); nil for none. Logout swaps out the pointer it sent.
	token atomic.Pointer[string]

	mu    sync.Mutex
	sess  *session      // nil while reconnecting
	ready chan struct{} // closed once sess is set
	done  chan struct{} // closed by Close
	wg    sync.WaitGroup
}

// session is one connection and its channels.
type session struct {
	conn    *amqp.Connection
	reads   []*mq.Replies // plain channels: reads, counts, pings
	writes  []*mq.Replies // confirm-mode channels: create, update, delete
	blocked atomic.Bool   // RabbitMQ blocked publishing (memory or disk alarm)
}

// Dial connects to RabbitMQ at url, or at one of opts.Addresses. It fails
// if the first connection cannot be made; later losses are recovered in
// the background.
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
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if _, err := mq.URLs(url, opts.Addresses); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := checkToken(opts.Session); opts.Session != "" && err != nil {
		return nil, fmt.Errorf("client options: %w", err)
	}
	c := &Client{url: url, opts: opts, ids: lineage.NewGenerator(), ready: make(chan struct{}), done: make(chan struct{})}
	if opts.Session != "" {
		c.token.Store(&opts.Session)
	}
	// Every request carries the RabbitMQ user as user_id, which RabbitMQ
	// checks against the connection's: a node trusting that user as a
	// service ([access.trusted]) then needs no session.
	if u, err := amqp.ParseURI(url); err == nil {
		c.user = u.Username
	}
	s, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.install(s)
	return c, nil
}

func (c *Client) connect(ctx context.Context) (*session, error) {
	conn, err := mq.Dial(ctx, mq.DialConfig{URL: c.url, Addresses: c.opts.Addresses, Name: c.opts.Name, Timeout: c.opts.DialTimeout})
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn}
	for i := 0; i < c.opts.Channels; i++ {
		r, err := c.openChannel(conn, false)
		if err != nil {
			conn.Close()
			return nil, err
		}
		w, err := c.openChannel(conn, true)
		if err != nil {
			conn.Close()
			return nil, err
		}
		s.reads, s.writes = append(s.reads, r), append(s.writes, w)
	}
	return s, nil
}

// install makes s current and starts its supervisor, which reconnects
// when the connection is lost.
func (c *Client) install(s *session) {
	closed := s.conn.NotifyClose(make(chan *amqp.Error, 1))
	blocked := s.conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	c.mu.Lock()
	c.sess = s
	close(c.ready)
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case b, ok := <-blocked:
				if ok {
					s.blocked.Store(b.Active)
					c.opts.Log.Warn("RabbitMQ flow control", "blocked", b.Active, "reason", b.Reason)
					continue
				}
				blocked = nil
			case err := <-closed:
				c.mu.Lock()
				c.sess = nil
				c.ready = make(chan struct{})
				c.mu.Unlock()
				select {
				case <-c.done:
					return
				default:
				}
				c.opts.Log.Warn("connection lost; reconnecting", "err", err)
				c.reconnect()
				return
			case <-c.done:
				return
			}
		}
	}()
}

// reconnect dials with backoff until it succeeds or the client closes.
func (c *Client) reconnect() {
	backoff := 100 * time.Millisecond
	// Time for every address once.
	within := time.Duration(1+len(c.opts.Addresses))*c.opts.DialTimeout + time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		s, err := c.connect(ctx)
		cancel()
		if err == nil {
			select {
			case <-c.done:
				s.conn.Close()
				return
			default:
			}
			c.opts.Log.Info("reconnected")
			c.install(s)
			return
		}
		select {
		case <-c.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (c *Client) openChannel(conn *amqp.Connection, confirm bool) (*mq.Replies, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if confirm {
		if err := ch.Confirm(false); err != nil {
			return nil, fmt.Errorf("confirm mode: %w", err)
		}
	}
	rc, err := mq.ConsumeReplies(ch)
	if err != nil {
		return nil, err
	}
	// Ends when the channel closes, waking the callers still waiting on it.
	c.wg.Go(rc.Run)
	return rc, nil
}

// Close closes the connection; requests in flight fail with unavailable.
func (c *Client) Close() error {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return nil
	default:
	}
	close(c.done)
	s := c.sess
	c.mu.Unlock()
	var err error
	if s != nil {
		err = s.conn.Close()
	}
	c.wg.Wait()
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}

// Do sends req under a new event ID and waits for its reply.
func (c *Client) Do(ctx context.Context, req *wire.Request, opts ...CallOption) (*wire.Reply, error) {
	return c.Send(ctx, c.ids.New(), req, opts...)
}

// NewEvent returns a new event ID, for Send.
func (c *Client) NewEvent() string { return c.ids.New() }

// Send is Do with the caller's own event ID. A write sent again under the
// same event ID is applied at most once and answered with the first
// result, so Send is how a caller retries a write that was answered
// unavailable, or whose process restarted, without applying it twice.
// Event IDs must be unique per write: printable ASCII, at most 200 bytes.
func (c *Client) Send(ctx context.Context, event string, req *wire.Request, opts ...CallOption) (*wire.Reply, error) {
	if !lineage.Valid(event) {
		return nil, wire.Errorf(wire.CodeBadRequest, "event ID %q: printable ASCII without spaces, 1 to %d bytes", event, lineage.MaxLen)
	}
	headers, _, err := c.headers(opts, true)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return c.send(ctx, event, req.RoutingKey(), req.Writes(), body, headers)
}

// DoRaw sends an already encoded request body with the given routing key.
// It is for tools and tests that must send bodies Do would never produce.
// It goes as a write (persistent, confirmed) when routingKey is
// rec.write or names a user or session op that writes ("usr.register").
func (c *Client) DoRaw(ctx context.Context, routingKey string, body []byte, opts ...CallOption) (*wire.Reply, error) {
	headers, _, err := c.headers(opts, true)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, c.ids.New(), routingKey, writesKey(routingKey), body, headers)
}

// writesKey reports whether a request published with routingKey writes.
func writesKey(routingKey string) bool {
	if routingKey == wire.RouteWrite {
		return true
	}
	_, op, ok := strings.Cut(routingKey, ".")
	return ok && wire.Op(op).Tercero() && wire.Op(op).RoutingKey() == routingKey && wire.Op(op).Writes()
}

// Batch sends items as one request of op batch and waits for its reply.
// The reply's Items answer the items in their order, each with its own ok
// and error; Atomic says the batch's writes ran in one transaction, so
// all of them applied or none did. A batch holding a write goes as a
// write (persistent, confirmed). Like Do, Batch returns a reply that is
// not ok together with its *wire.Error.
//
// Batch checks the items as the node decodes them and answers bad_request
// (too_large past wire.MaxBatch) before sending when they cannot be a
// batch: none at all, an item that is itself a batch, an item that fails
// wire.Request.Check. The node's own limit (limits.max_batch) is lower and
// checked by the node.
func (c *Client) Batch(ctx context.Context, items []wire.Request, opts ...CallOption) (*wire.Reply, error) {
	req := &wire.Request{Op: wire.OpBatch, Batch: items}
	if err := checkBatch(req); err != nil {
		return nil, err
	}
	return c.Do(ctx, req, opts...)
}

// checkBatch applies to a batch the checks a node's decoder applies, with
// its messages.
func checkBatch(req *wire.Request) error {
	if err := req.Check(); err != nil {
		return err
	}
	if len(req.Batch) > wire.MaxBatch {
		return &wire.Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf("batch holds %d requests, more than %d", len(req.Batch), wire.MaxBatch), Field: "batch"}
	}
	for i := range req.Batch {
		item := &req.Batch[i]
		if item.Op == wire.OpBatch || item.Batch != nil {
			return &wire.Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("batch[%d] is a batch: batches do not nest", i), Field: "batch"}
		}
		if err := item.Check(); err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				out := *we
				out.Message = fmt.Sprintf("batch[%d]: %s", i, we.Message)
				return &out
			}
			return fmt.Errorf("batch[%d]: %w", i, err)
		}
	}
	return nil
}

// Lineage reads the recorded lineage tree of event: the event, as its
// node recorded it, and the events below it. A node that recorded nothing
// under event answers with an error, returned as a *wire.Error like Do's.
func (c *Client) Lineage(ctx context.Context, event string, opts ...CallOption) (*wire.Lineage, error) {
	if !lineage.Valid(event) {
		return nil, wire.FieldError(wire.CodeBadRequest, "event", "event ID %q: printable ASCII without spaces, 1 to %d bytes", event, lineage.MaxLen)
	}
	reply, err := c.Do(ctx, &wire.Request{Op: wire.OpLineage, Event: event}, opts...)
	if err != nil {
		return nil, err
	}
	if reply.Lineage == nil {
		return nil, wire.Errorf(wire.CodeInternal, "the reply (event %s) to lineage of %s is ok but carries no tree", reply.Event, event)
	}
	return reply.Lineage, nil
}

func (c *Client) send(ctx context.Context, event, routingKey string, write bool, body []byte, headers amqp.Table) (*wire.Reply, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		deadline = time.Now().Add(c.opts.Timeout)
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	if time.Until(deadline) <= 0 {
		return nil, wire.Errorf(wire.CodeTimeout, "deadline passed before the request was sent")
	}
	backoff := 50 * time.Millisecond
	for {
		reply, err := c.attempt(ctx, deadline, event, routingKey, write, body, headers)
		if !errors.Is(err, errLost) {
			return reply, err
		}
		select {
		case <-ctx.Done():
			return nil, c.ctxError(ctx, event, "the connection to RabbitMQ was lost")
		case <-c.done:
			return nil, wire.Errorf(wire.CodeUnavailable, "client closed")
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// errLost marks an attempt that lost its connection: worth sending again.
var errLost = errors.New("connection lost")

func (c *Client) ctxError(ctx context.Context, event, why string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return wire.Errorf(wire.CodeTimeout, "no reply to event %s before the deadline (%s)", event, why)
	}
	return fmt.Errorf("event %s: %w", event, ctx.Err())
}

// current returns the connected session, waiting for a reconnect if need be.
func (c *Client) current(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		s, ready := c.sess, c.ready
		c.mu.Unlock()
		select {
		case <-c.done:
			return nil, wire.Errorf(wire.CodeUnavailable, "client closed")
		default:
		}
		if s != nil {
			return s, nil
		}
		select {
		case <-ready:
		case <-c.done:
		case <-ctx.Done():
			return nil, wire.Errorf(wire.CodeUnavailable, "no connection to RabbitMQ: reconnecting")
		}
	}
}

// attempt publishes once and waits for the reply. It returns errLost when
// the connection failed under it.
func (c *Client) attempt(ctx context.Context, deadline time.Time, event, routingKey string, write bool, body []byte, headers amqp.Table) (*wire.Reply, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	for s.blocked.Load() {
		select {
		case <-ctx.Done():
			return nil, wire.Errorf(wire.CodeUnavailable, "RabbitMQ blocks publishing (memory or disk alarm)")
		case <-time.After(20 * time.Millisecond):
		}
	}
	chans := s.reads
	if write {
		chans = s.writes
	}
	rc := chans[c.next.Add(1)%uint64(len(chans))]
	w, ok := rc.Expect(event)
	if !ok {
		return nil, errLost
	}
	forget := func() { rc.Forget(event) }

	mode := amqp.Transient
	if write {
		mode = amqp.Persistent
	}
	wait := time.Until(deadline)
	msg := amqp.Publishing{
		Headers:     headers,
		ContentType: wire.ContentType, DeliveryMode: mode, CorrelationId: event, MessageId: event, UserId: c.user,
		ReplyTo: wire.DirectReplyTo, Expiration: strconv.FormatInt(max(wait.Milliseconds(), 1), 10),
		Timestamp: time.Now(), Body: body,
	}
	var conf *amqp.DeferredConfirmation
	if write {
		conf, err = rc.Channel().PublishWithDeferredConfirmWithContext(ctx, wire.Exchange, routingKey, false, false, msg)
	} else {
		err = rc.Channel().PublishWithContext(ctx, wire.Exchange, routingKey, false, false, msg)
	}
	if err != nil {
		forget()
		if errors.Is(err, amqp.ErrClosed) {
			return nil, errLost
		}
		return nil, &wire.Error{Code: wire.CodeUnavailable, Message: "publish: " + err.Error()}
	}
	if write && conf != nil {
		acked, err := conf.WaitContext(ctx)
		switch {
		case err != nil:
			forget()
			return nil, c.ctxError(ctx, event, "RabbitMQ did not confirm the write")
		case !acked && rc.Channel().IsClosed():
			forget()
			return nil, errLost
		case !acked:
			forget()
			// A quorum queue whose leader went away mid-publish can leave
			// the channel nacking every later publish (seen on RabbitMQ
			// 3.10): start again on a new connection, which the
			// supervisor makes; the caller retries, as for unavailable.
			_ = s.conn.Close()
			return nil, wire.Errorf(wire.CodeUnavailable, "RabbitMQ refused event %s (nack); reconnecting", event)
		}
	}

	select {
	case d, ok := <-w:
		if !ok {
			return nil, errLost
		}
		reply, err := wire.DecodeReply(d.Body)
		if tp, ok := d.Headers[wire.HeaderTraceParent].(string); ok && reply != nil {
			reply.Trace = tp
		}
		return reply, err
	case <-ctx.Done():
		forget()
		return nil, c.ctxError(ctx, event, "waited "+wait.Round(time.Millisecond).String())
	}
}
