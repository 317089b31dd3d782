package dispatch_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// Hostile and buggy callers (issue 9), through a real RabbitMQ.

// hostile answers like echo, and for "nan" with a row JSON cannot hold,
// for "big" with a 10 KB row, for "noerr" with a failure without an
// error.
func hostile(ctx context.Context, m *dispatch.Message) *wire.Reply {
	switch m.Request.Template {
	case "nan":
		return &wire.Reply{OK: true, Rows: []wire.Row{{"doc": map[string]any{"x": math.NaN()}}}}
	case "big":
		return &wire.Reply{OK: true, Rows: []wire.Row{{"blob": strings.Repeat("x", 10000)}}}
	case "noerr":
		return &wire.Reply{OK: false}
	}
	return echo(ctx, m)
}

// calls counts the handler's calls per template.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) wrap(h dispatch.HandlerFunc) dispatch.Handler {
	c.n = map[string]int{}
	return dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) *wire.Reply {
		c.mu.Lock()
		c.n[m.Request.Template]++
		c.mu.Unlock()
		return h(ctx, m)
	})
}

func (c *calls) of(template string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[template]
}

func codeOf(err error) wire.Code {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return ""
}

// dial returns a client of url, closed when the test ends.
func dial(t *testing.T, ctx context.Context, url string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, url, client.Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// publish sends a request by hand, with the properties of p.
func publish(t *testing.T, ch *amqp.Channel, key string, p amqp.Publishing) {
	t.Helper()
	p.ContentType = wire.ContentType
	if err := ch.PublishWithContext(context.Background(), wire.Exchange, key, false, false, p); err != nil {
		t.Fatal(err)
	}
}

// TestReplyToRefused: a request whose reply_to names an ordinary queue, or
// a direct reply-to name RabbitMQ cannot decode, is not handled, nothing
// is published to that name, and it lands in beds.dead as bad_request; a
// queue under the configured prefix gets its reply.
func TestReplyToRefused(t *testing.T) {
	url := testenv.AMQP(t)
	var n calls
	runBrokerWith(t, url, n.wrap(echo), func(c *dispatch.Config) { c.ReplyPrefix = "test.replies." })
	ch := testenv.Channel(t, url)
	for _, q := range []string{"foreign", "test.replies.mine"} {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	refused := map[string]string{} // event -> reply_to
	for _, to := range []string{wire.EventsQueue, "foreign", wire.DeadQueue, "amq.rabbitmq.reply-tox", wire.DirectReplyTo + ".a.b"} {
		event := ids.New()
		refused[event] = to
		publish(t, ch, wire.RouteWrite, amqp.Publishing{MessageId: event, CorrelationId: event, ReplyTo: to,
			Body: []byte(`{"template":"refused","op":"create","data":{"a":1}}`)})
	}
	publish(t, ch, wire.RouteRead, amqp.Publishing{MessageId: ids.New(), CorrelationId: "mine", ReplyTo: "test.replies.mine",
		Body: []byte(`{"template":"mine","op":"read"}`)})

	for range len(refused) {
		d := testenv.Next(t, ch, wire.DeadQueue, 10*time.Second)
		event, _ := d.Headers[wire.HeaderEvent].(string)
		to, ok := refused[event]
		if !ok || d.Headers[wire.HeaderError] != string(wire.CodeBadRequest) {
			t.Fatalf("dead letter headers %v", d.Headers)
		}
		if msg, _ := d.Headers[wire.HeaderErrorMessage].(string); !strings.Contains(msg, "reply_to") || !strings.Contains(msg, to) {
			t.Errorf("dead letter message %q does not say which reply_to was refused", msg)
		}
		if !strings.Contains(string(d.Body), `"template":"refused"`) {
			t.Errorf("dead letter body %s is not the request", d.Body)
		}
		delete(refused, event)
	}
	deadline := time.Now().Add(10 * time.Second)
	for testenv.Messages(t, ch, "test.replies.mine") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no reply in the queue under the reply prefix")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A reply published to beds.events would come back as a request and
	// be dead-lettered in turn; one published to beds.dead would be there.
	time.Sleep(500 * time.Millisecond)
	for q, want := range map[string]int{"foreign": 0, wire.EventsQueue: 0, wire.DeadQueue: 0} {
		if got := testenv.Messages(t, ch, q); got != want {
			t.Errorf("%s holds %d messages, want %d: a reply was published to a refused reply_to", q, got, want)
		}
	}
	if got := n.of("refused"); got != 0 {
		t.Errorf("the handler ran %d times for requests with a refused reply_to", got)
	}
}

// TestPoisonReplies: a reply that cannot be encoded is answered internal,
// one above MaxReply too_large, a failure without an error internal;
// each request is handled once, never sent back to the queue.
func TestPoisonReplies(t *testing.T) {
	url := testenv.AMQP(t)
	var n calls
	runBrokerWith(t, url, n.wrap(hostile), func(c *dispatch.Config) { c.MaxReply = 4096 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, ctx, url)
	for _, tc := range []struct {
		template string
		code     wire.Code
	}{
		{"nan", wire.CodeInternal},
		{"big", wire.CodeTooLarge},
		{"noerr", wire.CodeInternal},
	} {
		for _, op := range []wire.Op{wire.OpRead, wire.OpCreate} { // plain and confirmed replies
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			r, err := c.Do(rctx, &wire.Request{Template: tc.template, Op: op, Data: []byte(`{}`)})
			rcancel()
			if codeOf(err) != tc.code || r == nil || r.Event == "" || r.Node != "test-node" {
				t.Errorf("%s %s: err %v, want %s", tc.template, op, err, tc.code)
			}
		}
	}
	// A failure without an error, answered to nobody, is dead-lettered as
	// internal (it used to panic the broker).
	ch := testenv.Channel(t, url)
	event := ids.New()
	publish(t, ch, wire.RouteRead, amqp.Publishing{MessageId: event, Body: []byte(`{"template":"noerr","op":"read"}`)})
	d := testenv.Next(t, ch, wire.DeadQueue, 10*time.Second)
	if d.Headers[wire.HeaderError] != string(wire.CodeInternal) || d.Headers[wire.HeaderEvent] != event {
		t.Fatalf("dead letter headers %v", d.Headers)
	}
	time.Sleep(300 * time.Millisecond)
	for template, want := range map[string]int{"nan": 2, "big": 2, "noerr": 3} {
		if got := n.of(template); got != want {
			t.Errorf("%s handled %d times, want %d: a poison reply was sent back to the queue", template, got, want)
		}
	}
	if r, err := c.Do(ctx, &wire.Request{Template: "after", Op: wire.OpRead}); err != nil || r.Rows[0]["template"] != "after" {
		t.Fatalf("after the poison: %v %v", r, err)
	}
}

// TestDeliveryLimit: a request that comes back for ever is dead-lettered
// after the delivery limit, with its history, on a classic queue, and
// other requests are answered. The poison here is real: RabbitMQ 3.10
// closes the whole connection (541 INTERNAL_ERROR) on a publish to a
// direct reply-to name of a node it does not know, which a caller can
// set, so a write's reply is never confirmed and the request goes back to
// the queue each time. (A malformed name is refused up front instead.)
func TestDeliveryLimit(t *testing.T) {
	url := testenv.AMQP(t)
	if !crashesOnForeignReplyTo(t, url) {
		t.Skip("this RabbitMQ drops a reply to a foreign direct reply-to name instead of closing the connection: no poison to test with")
	}
	var n calls
	const limit = 3
	b, _ := runBrokerWith(t, url, n.wrap(echo), func(c *dispatch.Config) {
		c.DeliveryLimit, c.RetryMin, c.RetryMax = limit, 20*time.Millisecond, 100*time.Millisecond
	})
	ch := testenv.Channel(t, url)
	event := ids.New()
	publish(t, ch, wire.RouteWrite, amqp.Publishing{MessageId: event, CorrelationId: event, ReplyTo: foreignReplyTo,
		Body: []byte(`{"template":"poison","op":"create","data":{"a":1}}`)})
	d := testenv.Next(t, ch, wire.DeadQueue, 30*time.Second)
	h := d.Headers
	if h[wire.HeaderError] != wire.DeadDeliveryLimit || h[wire.HeaderEvent] != event || h[wire.HeaderNode] != "test-node" {
		t.Fatalf("dead letter headers %v", h)
	}
	if h[wire.HeaderDeliveries] != int64(limit+1) {
		t.Errorf("%s = %v, want %d", wire.HeaderDeliveries, h[wire.HeaderDeliveries], limit+1)
	}
	first, err1 := time.Parse(time.RFC3339Nano, h[wire.HeaderFirstSeen].(string))
	last, err2 := time.Parse(time.RFC3339Nano, h[wire.HeaderLastSeen].(string))
	if err1 != nil || err2 != nil || last.Before(first) {
		t.Errorf("first/last seen %v %v", h[wire.HeaderFirstSeen], h[wire.HeaderLastSeen])
	}
	if cause, _ := h[wire.HeaderLastFailure].(string); !strings.Contains(cause, "reply") {
		t.Errorf("last failure %q", cause)
	}
	if got := n.of("poison"); got != limit {
		t.Errorf("handled %d times, want the limit %d", got, limit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, ctx, url)
	if r, err := c.Do(ctx, &wire.Request{Template: "after", Op: wire.OpCreate, Data: []byte(`{}`)}); err != nil || r.Rows[0]["template"] != "after" || !b.Ready() {
		t.Fatalf("after the poison: %v %v ready %v", r, err, b.Ready())
	}
}

// TestDeadReplyChannel: RabbitMQ closes the write-reply channel (here: a
// dead letter published to a dead-letter exchange someone deleted). The
// broker notices, is not ready until a new session is, hands the request
// back instead of acknowledging it unpublished, and the new session (which
// declares the exchange again) dead-letters it and answers the rest.
func TestDeadReplyChannel(t *testing.T) {
	url := testenv.AMQP(t)
	b, _ := runBrokerWith(t, url, dispatch.HandlerFunc(echo), func(c *dispatch.Config) {
		c.RetryMin, c.RetryMax = time.Second, time.Second
	})
	var dipped atomic.Bool
	watching, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	go func() {
		for watching.Err() == nil {
			if !b.Ready() {
				dipped.Store(true)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	ch := testenv.Channel(t, url)
	if err := ch.ExchangeDelete(wire.DeadExchange, false, false); err != nil {
		t.Fatal(err)
	}
	event := ids.New()
	publish(t, ch, wire.RouteRead, amqp.Publishing{MessageId: event, Body: []byte(`{"template":"fail","op":"read"}`)})
	d := testenv.Next(t, ch, wire.DeadQueue, 20*time.Second)
	if d.Headers[wire.HeaderError] != string(wire.CodeUnknownTemplate) || d.Headers[wire.HeaderEvent] != event {
		t.Fatalf("dead letter headers %v", d.Headers)
	}
	if !dipped.Load() {
		t.Error("the broker stayed ready with a closed reply channel")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, ctx, url)
	for _, op := range []wire.Op{wire.OpRead, wire.OpCreate} {
		if r, err := c.Do(ctx, &wire.Request{Template: "later", Op: op, Data: []byte(`{}`)}); err != nil || r.Rows[0]["template"] != "later" {
			t.Fatalf("%s after the channel closed: %v %v", op, r, err)
		}
	}
	if !b.Ready() {
		t.Error("not ready after recovering")
	}
}

// foreignReplyTo is a direct reply-to name as RabbitMQ 3.10 makes one for
// a channel on the node rabbit@nowhere, which is in no cluster here: its
// pid names the node "reply@<erlang:phash2('rabbit@nowhere')>" (82109301).
// RabbitMQ 3.10 and 3.11 close the connection that publishes to it (541
// INTERNAL_ERROR); later versions drop what is published to it.
const foreignReplyTo = wire.DirectReplyTo + ".g1h2AA5yZXBseUA4MjEwOTMwMQAAAGQAAAAAAAAAAQ==.8T4HfZRYHX50/TuEjRmRUw=="

// crashesOnForeignReplyTo reports whether the RabbitMQ at url closes a
// connection that publishes to foreignReplyTo.
func crashesOnForeignReplyTo(t *testing.T, url string) bool {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v, _ := conn.Properties["version"].(string)
	return strings.HasPrefix(v, "3.10.") || strings.HasPrefix(v, "3.11.")
}

// TestHostileReplyTo: a hostile caller's reply_to cannot make RabbitMQ
// drop the broker's consumer. While a client reads, a raw publisher sends
// reads and writes whose reply_to is a direct reply-to name RabbitMQ
// cannot decode (refused up front, dead-lettered as bad_request, never
// handled) or one of a node that does not exist (RabbitMQ 3.10 closes the
// connection that replies to it: only the probe connection, so the
// request comes back until the delivery limit dead-letters it). Every
// innocent read is answered, and neither the consumer's connection nor the
// reply connection is ever restarted.
func TestHostileReplyTo(t *testing.T) {
	url := testenv.AMQP(t)
	crashes := crashesOnForeignReplyTo(t, url)
	var n calls
	const limit = 3
	b, _ := runBrokerWith(t, url, n.wrap(echo), func(c *dispatch.Config) {
		c.DeliveryLimit, c.RetryMin, c.RetryMax = limit, 20*time.Millisecond, 200*time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := dial(t, ctx, url)

	var answered atomic.Int64
	reading, stopReading := context.WithCancel(ctx)
	var readers sync.WaitGroup
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for reading.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				r, err := c.Do(rctx, &wire.Request{Template: "innocent", Op: wire.OpRead})
				rcancel()
				if err != nil || r.Rows[0]["template"] != "innocent" {
					t.Errorf("innocent read: %v %v", r, err)
					return
				}
				answered.Add(1)
			}
		}()
	}

	ch := testenv.Channel(t, url)
	malformed := wire.DirectReplyTo + ".a.b"
	sent := map[string]string{} // event -> template
	const rounds = 5
	for range rounds {
		for _, to := range []struct{ name, template string }{{malformed, "malformed"}, {foreignReplyTo, "foreign"}} {
			for op, key := range map[wire.Op]string{wire.OpRead: wire.RouteRead, wire.OpCreate: wire.RouteWrite} {
				event := ids.New()
				sent[event] = to.template
				publish(t, ch, key, amqp.Publishing{MessageId: event, CorrelationId: event, ReplyTo: to.name,
					Body: []byte(`{"template":"` + to.template + `","op":"` + string(op) + `","data":{"a":1}}`)})
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The malformed ones are refused up front; the foreign ones, where
	// RabbitMQ closes the reply connection, come back until the limit.
	wantDead := rounds * 2
	if crashes {
		wantDead *= 2
	}
	for range wantDead {
		d := testenv.Next(t, ch, wire.DeadQueue, 30*time.Second)
		event, _ := d.Headers[wire.HeaderEvent].(string)
		want := map[string]string{"malformed": string(wire.CodeBadRequest), "foreign": wire.DeadDeliveryLimit}[sent[event]]
		if got, _ := d.Headers[wire.HeaderError].(string); got != want || want == "" {
			t.Errorf("dead letter of a %q request: %s %v, want %s", sent[event], got, d.Headers[wire.HeaderErrorMessage], want)
		}
		delete(sent, event)
	}
	time.Sleep(300 * time.Millisecond)
	stopReading()
	readers.Wait()

	if got := n.of("malformed"); got != 0 {
		t.Errorf("requests with an undecodable reply_to handled %d times, want never", got)
	}
	if got, most := n.of("foreign"), rounds*2*limit; crashes && got > most {
		t.Errorf("requests with a foreign reply_to handled %d times, more than the limit allows (%d)", got, most)
	}
	if got := testenv.Messages(t, ch, wire.DeadQueue); got != 0 {
		t.Errorf("%d more dead letters", got)
	}
	consumer, reply, probes := dispatch.Sessions(b)
	t.Logf("%d innocent reads answered; %d consumer, %d reply and %d probe connections (RabbitMQ closes on foreign: %v)",
		answered.Load(), consumer, reply, probes, crashes)
	if consumer != 1 || reply != 1 {
		t.Errorf("consumer connection opened %d times, reply connection %d times, want once each: a hostile reply_to restarted one", consumer, reply)
	}
	if crashes && probes < 2 {
		t.Errorf("probe connection opened %d times: the foreign reply_to should have closed it", probes)
	}
	if answered.Load() == 0 {
		t.Error("no innocent read answered")
	}
	if !b.Ready() {
		t.Error("not ready after the hostile requests")
	}
}
