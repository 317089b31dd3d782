package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// hostileConfig is the node's config for the adversarial suite (a format
// of the MariaDB DSN): limits small enough to reach with a few requests.
const hostileConfig = `
[templates]
check = "warn"   # broken_rec.toml's objects are never deployed, on purpose

[amqp]
delivery_limit = 2
reply_prefix = "hostile."

[limits]
max_affected = 5
max_offset = 1000
max_in_list = 2000
max_reply = 65536
max_timeout = "3s"
request_timeout = "2s"

[brokers.dispatcher]
instances = 8
prefetch = 32

[stores.flaky]   # the test-only flaky template's store; not cut here
kind = "mariadb"
dsn = %q
`

// hostile is one node and a client for the adversarial suite.
type hostile struct {
	s servers
	n *ipl.Node
	c *client.Client
}

func startHostile(t *testing.T) *hostile {
	t.Helper()
	s := newServers(t)
	n := startNode(t, map[string]string{
		"BEDS_CONFIG_DIR":   configDir(t, fmt.Sprintf(hostileConfig, s.mariaDSN)),
		"BEDS_TEMPLATE_DIR": templateDir(t),
		"BEDS_AMQP_URL":     s.amqpURL,
		"BEDS_MARIADB_DSN":  s.mariaDSN,
		"BEDS_MONGO_URI":    s.mongoURI,
		"BEDS_HTTP_ADDR":    "127.0.0.1:0",
		"BEDS_NODE_NAME":    "hostile",
		"BEDS_LOG_LEVEL":    "error",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.amqpURL, client.Options{Name: "hostile"})
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return &hostile{s: s, n: n, c: c}
}

// TestHostile sends what a hostile or buggy caller would through RabbitMQ
// to a real node, and checks that it hurts neither the node nor anyone
// else. Each subtest is one class of issue 9.
//
// A reply that cannot be encoded (a stored NaN or ±Inf) is not here: neither
// MariaDB nor FerretDB stores one, so no request can reach it on these
// servers. shared/dispatch TestPoisonReplies shows it through RabbitMQ with
// a handler that returns one, and FuzzEncodeReply covers the encoder.
func TestHostile(t *testing.T) {
	h := startHostile(t)
	t.Run("metric labels", h.metricLabels)
	t.Run("foreign reply_to", h.foreignReplyTo)
	t.Run("reply over max_reply", h.replyTooLarge)
	t.Run("poison request", h.poisonRequest)
	t.Run("closed reply channel", h.closedReplyChannel)
	t.Run("deadline stops the database", h.deadlineStopsDatabase)
	t.Run("max_timeout caps the caller", h.maxTimeout)
	t.Run("bounded work", h.boundedWork)
	t.Run("statement cache", h.statementCache)
	t.Run("still serving", func(t *testing.T) { do(t, h.c, `{"template":"users","op":"count"}`) })
}

// series counts the samples of metric name on the node's /metrics.
func (h *hostile) series(t *testing.T, name string) int {
	t.Helper()
	resp, err := http.Get("http://" + h.n.Addr() + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") {
			n++
		}
	}
	return n
}

// parallel runs n calls of fn over 32 goroutines.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// metricLabels: 10,000 requests naming unknown templates and ops leave the
// number of series where it was, apart from the one _unknown series each.
func (h *hostile) metricLabels(t *testing.T) {
	expectCode(t, h.c, `{"template":"warmup-unknown","op":"read"}`, wire.CodeUnknownTemplate)
	expectRaw(t, h.c, wire.RouteRead, []byte(`{"template":"users","op":"drop"}`), wire.CodeBadRequest)
	before := h.series(t, "beds_requests_total")
	var mu sync.Mutex
	failed := 0
	parallel(10000, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		body := fmt.Sprintf(`{"template":"t-%d","op":"read"}`, i)
		want := wire.CodeUnknownTemplate
		if i%5 == 0 {
			body, want = fmt.Sprintf(`{"template":"users","op":"op-%d"}`, i), wire.CodeBadRequest
		}
		_, err := h.c.DoRaw(ctx, wire.RouteRead, []byte(body))
		if we, ok := err.(*wire.Error); !ok || we.Code != want {
			mu.Lock()
			failed++
			mu.Unlock()
		}
	})
	if failed > 0 {
		t.Errorf("%d of 10,000 requests did not get their error code", failed)
	}
	if after := h.series(t, "beds_requests_total"); after != before {
		t.Fatalf("beds_requests_total has %d series after 10,000 unknown names, %d before", after, before)
	}
}

// running counts the statements on the server that read the slow view.
func running(t *testing.T, dsn string) int {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	must(t, err)
	defer db.Close()
	var n int
	must(t, db.QueryRow("SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE '%vw_slw%' AND info NOT LIKE '%processlist%'").Scan(&n))
	return n
}

// deadlineStopsDatabase: a read of a view that sleeps 5 s, with a 700 ms
// deadline, is answered timeout and no longer runs on the server soon
// after.
func (h *hostile) deadlineStopsDatabase(t *testing.T) {
	start := time.Now()
	reply := rawCall(t, h.s.amqpURL, wire.RouteRead, amqp.Publishing{
		ContentType: wire.ContentType, Expiration: "700", Body: []byte(`{"template":"slow","op":"read"}`),
	}, 10*time.Second)
	if reply.Error == nil || reply.Error.Code != wire.CodeTimeout {
		t.Fatalf("reply %+v, want timeout", reply)
	}
	for running(t, h.s.mariaDSN) > 0 {
		if time.Since(start) > 2500*time.Millisecond {
			t.Fatalf("the slow view still runs on the server %s after a 700 ms deadline", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// maxTimeout: a caller asking for a minute gets limits.max_timeout (3 s).
func (h *hostile) maxTimeout(t *testing.T) {
	start := time.Now()
	reply := rawCall(t, h.s.amqpURL, wire.RouteRead, amqp.Publishing{
		ContentType: wire.ContentType, Expiration: "60000", Body: []byte(`{"template":"slow","op":"read"}`),
	}, 20*time.Second)
	took := time.Since(start)
	if reply.Error == nil || reply.Error.Code != wire.CodeTimeout || took > 4500*time.Millisecond {
		t.Fatalf("reply %+v after %s, want timeout at about 3s", reply, took.Round(time.Millisecond))
	}
}

// boundedWork: writes that would touch more than max_affected records,
// deep offsets, long like patterns and sorts on unindexed fields are
// refused, and the refused writes changed nothing.
func (h *hostile) boundedWork(t *testing.T) {
	for i := range 6 {
		do(t, h.c, fmt.Sprintf(`{"template":"users","op":"create","data":{"email":"many-%d@example.com","name":"Many"}}`, i))
		do(t, h.c, fmt.Sprintf(`{"template":"profiles","op":"create","data":{"user":%d,"handle":"many-%d"}}`, 700+i, i))
	}
	for _, tc := range []struct {
		name, body string
		code       wire.Code
	}{
		{"mariadb update over max_affected", `{"template":"users","op":"update","filter":{"name":"Many"},"data":{"name":"Changed"}}`, wire.CodeTooLarge},
		{"mariadb delete over max_affected", `{"template":"users","op":"delete","filter":{"name":"Many"}}`, wire.CodeTooLarge},
		{"mongo update over max_affected", `{"template":"profiles","op":"update","filter":{"handle":{"like":"many-%"}},"data":{"bio":"x"}}`, wire.CodeTooLarge},
		{"mongo delete over max_affected", `{"template":"profiles","op":"delete","filter":{"handle":{"like":"many-%"}}}`, wire.CodeTooLarge},
		{"offset over max_offset", `{"template":"users","op":"read","offset":999999999999}`, wire.CodeTooLarge},
		{"like too long", `{"template":"users","op":"read","filter":{"email":{"like":"` + strings.Repeat("a", 201) + `"}}}`, wire.CodeTooLarge},
		{"like with too many wildcards", `{"template":"users","op":"read","filter":{"email":{"like":"` + strings.Repeat("%a", 11) + `"}}}`, wire.CodeTooLarge},
		{"sort on a field not sortable", `{"template":"users","op":"read","sort":["score"]}`, wire.CodeBadField},
	} {
		t.Run(tc.name, func(t *testing.T) { expectCode(t, h.c, tc.body, tc.code) })
	}
	if r := do(t, h.c, `{"template":"users","op":"count","filter":{"name":"Many"}}`); r.Count != 6 {
		t.Errorf("%d users still named Many, want 6: a refused write changed something", r.Count)
	}
	if r := do(t, h.c, `{"template":"profiles","op":"count","filter":{"handle":{"like":"many-%"},"bio":{"null":true}}}`); r.Count != 6 {
		t.Errorf("%d untouched profiles, want 6: a refused write changed something", r.Count)
	}
	do(t, h.c, `{"template":"users","op":"read","offset":1000,"sort":["-email"]}`)
}

// statementCache: 2,000 reads with in lists of 2,000 different lengths
// are all answered, and the server's prepared statements stay bounded.
func (h *hostile) statementCache(t *testing.T) {
	db, err := sql.Open("mysql", h.s.mariaDSN)
	must(t, err)
	defer db.Close()
	prepared := func() int {
		var name string
		var n int
		must(t, db.QueryRow("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").Scan(&name, &n))
		return n
	}
	before := prepared()
	var mu sync.Mutex
	var errs []error
	parallel(2000, func(i int) {
		ids := make([]string, i+1)
		for j := range ids {
			ids[j] = fmt.Sprint(j + 1)
		}
		_, err := call(h.c, `{"template":"users","op":"read","filter":{"id":{"in":[`+strings.Join(ids, ",")+`]}}}`)
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		t.Fatalf("%d of 2,000 reads failed, the first: %v", len(errs), errs[0])
	}
	// A pool keeps at most about 2,000 statements prepared, whatever the
	// callers send; other tests on the server add a few of their own.
	if after := prepared(); after-before > 2000 {
		t.Fatalf("prepared statements on the server grew from %d to %d", before, after)
	}
}

// foreignReplyTo: a request whose reply_to names an ordinary queue is
// dead-lettered as bad_request, and nothing is published to that queue.
func (h *hostile) foreignReplyTo(t *testing.T) {
	ch := testenv.Channel(t, h.s.amqpURL)
	_, err := ch.QueueDeclare("victim", true, false, false, false, nil)
	must(t, err)
	for i, replyTo := range []string{"victim", wire.EventsQueue, wire.DeadQueue} {
		body := fmt.Sprintf(`{"template":"users","op":"create","data":{"email":"foreign-%d@example.com"}}`, i)
		must(t, ch.PublishWithContext(context.Background(), wire.Exchange, wire.RouteWrite, false, false, amqp.Publishing{
			ContentType: wire.ContentType, MessageId: fmt.Sprintf("foreign-%d", i), ReplyTo: replyTo, Body: []byte(body),
		}))
		d := testenv.Next(t, ch, wire.DeadQueue, 15*time.Second)
		if d.Headers[wire.HeaderError] != string(wire.CodeBadRequest) || d.Headers[wire.HeaderEvent] != fmt.Sprintf("foreign-%d", i) {
			t.Errorf("reply_to %s: dead letter headers %v", replyTo, d.Headers)
		}
	}
	if n := testenv.Messages(t, ch, "victim"); n != 0 {
		t.Errorf("%d messages published to the victim queue", n)
	}
	if r := do(t, h.c, `{"template":"users","op":"count","filter":{"email":{"like":"foreign-%"}}}`); r.Count != 0 {
		t.Errorf("%d refused creates were applied", r.Count)
	}
}

// replyTooLarge: a read whose reply is over limits.max_reply (64 KiB here)
// answers too_large instead.
func (h *hostile) replyTooLarge(t *testing.T) {
	msg := strings.Repeat("m", 8000)
	for range 10 {
		do(t, h.c, `{"template":"logs","op":"create","data":{"at":"2026-11-27T10:00:00Z","level":"big","message":"`+msg+`"}}`)
	}
	expectCode(t, h.c, `{"template":"logs","op":"read","filter":{"level":"big"}}`, wire.CodeTooLarge)
	if r := do(t, h.c, `{"template":"logs","op":"read","filter":{"level":"big"},"limit":2}`); len(r.Rows) != 2 {
		t.Errorf("%d rows, want 2", len(r.Rows))
	}
}

// poisonRequest: a write whose reply RabbitMQ refuses every time (its
// reply_to, admitted by reply_prefix, is a full queue that rejects
// publishes) is redelivered at most delivery_limit times, then
// dead-lettered with its history; the write applied once, and other
// requests were answered meanwhile.
func (h *hostile) poisonRequest(t *testing.T) {
	ch := testenv.Channel(t, h.s.amqpURL)
	_, err := ch.QueueDeclare("hostile.full", true, false, false, false, amqp.Table{"x-max-length": int64(0), "x-overflow": "reject-publish"})
	must(t, err)
	must(t, ch.PublishWithContext(context.Background(), wire.Exchange, wire.RouteWrite, false, false, amqp.Publishing{
		ContentType: wire.ContentType, MessageId: "poison-1", ReplyTo: "hostile.full", DeliveryMode: amqp.Persistent, UserId: amqpUser(t, h.s.amqpURL),
		Body: []byte(`{"template":"users","op":"create","data":{"email":"poison@example.com"}}`),
	}))
	pings := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 50 && err == nil; i++ {
			_, err = call(h.c, `{"op":"ping"}`)
		}
		pings <- err
	}()
	d := testenv.Next(t, ch, wire.DeadQueue, 15*time.Second)
	if err := <-pings; err != nil {
		t.Errorf("a ping beside the poison: %v", err)
	}
	if d.Headers[wire.HeaderError] != wire.DeadDeliveryLimit || d.Headers[wire.HeaderEvent] != "poison-1" {
		t.Fatalf("dead letter headers %v", d.Headers)
	}
	if n, _ := d.Headers[wire.HeaderDeliveries].(int64); n < 2 {
		t.Errorf("%s = %v, want at least the limit", wire.HeaderDeliveries, d.Headers[wire.HeaderDeliveries])
	}
	if r := do(t, h.c, `{"template":"users","op":"count","filter":{"email":"poison@example.com"}}`); r.Count != 1 {
		t.Errorf("the poison's create applied %d times, want once", r.Count)
	}
	if n := testenv.Messages(t, ch, wire.EventsQueue); n != 0 {
		t.Errorf("%d requests left in %s", n, wire.EventsQueue)
	}
}

// closedReplyChannel: with beds.dlx gone, the node's dead-letter publish
// closes its confirm channel (404); the node notices, is not ready until
// a new session (which declares beds.dlx again) serves, and the request
// is dead-lettered then.
func (h *hostile) closedReplyChannel(t *testing.T) {
	ch := testenv.Channel(t, h.s.amqpURL)
	must(t, ch.ExchangeDelete(wire.DeadExchange, false, false))
	must(t, ch.PublishWithContext(context.Background(), wire.Exchange, wire.RouteRead, false, false, amqp.Publishing{
		ContentType: wire.ContentType, MessageId: "no-reply-1", Body: []byte(`{"template":"nope","op":"read"}`),
	}))
	waitReady(t, h.n, false)
	waitReady(t, h.n, true)
	d := testenv.Next(t, ch, wire.DeadQueue, 15*time.Second)
	if d.Headers[wire.HeaderEvent] != "no-reply-1" || d.Headers[wire.HeaderError] != string(wire.CodeUnknownTemplate) {
		t.Errorf("dead letter headers %v", d.Headers)
	}
	do(t, h.c, `{"template":"users","op":"count"}`)
}
