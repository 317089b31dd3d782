package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// echo answers with the request's template in Rows, panics for "boom",
// waits for its deadline for "wait" and sleeps a little for "slow".
func echo(ctx context.Context, m *dispatch.Message) *wire.Reply {
	switch m.Request.Template {
	case "boom":
		panic("boom")
	case "wait":
		<-ctx.Done()
		return wire.ErrorReply(m.Event, wire.Errorf(wire.CodeTimeout, "waited"))
	case "slow":
		time.Sleep(50 * time.Millisecond)
	case "fail":
		return wire.ErrorReply(m.Event, wire.Errorf(wire.CodeUnknownTemplate, "no template fail"))
	}
	return &wire.Reply{OK: true, Rows: []wire.Row{{"template": m.Request.Template}}}
}

type counter struct {
	mu    sync.Mutex
	codes map[wire.Code]int
}

func (c *counter) Observe(_ string, _ wire.Op, code wire.Code, _ time.Duration) {
	c.mu.Lock()
	c.codes[code]++
	c.mu.Unlock()
}

// startBroker runs a broker answering with echo until the test ends; stop
// drains it early and returns Run's result (it may be called more than
// once).
func startBroker(t *testing.T, url string, obs dispatch.Observer) (b *dispatch.Broker, stop func() error) {
	t.Helper()
	return runBroker(t, url, dispatch.HandlerFunc(echo), obs, 8, 5*time.Second)
}

// runBroker is startBroker with any handler, observer, prefetch and
// timeout. Bodies are limited to 1024 bytes.
func runBroker(t *testing.T, url string, h dispatch.Handler, obs dispatch.Observer, prefetch int, timeout time.Duration) (b *dispatch.Broker, stop func() error) {
	t.Helper()
	return runBrokerWith(t, url, h, func(cfg *dispatch.Config) {
		cfg.Observer, cfg.Prefetch, cfg.Timeout = obs, prefetch, timeout
	})
}

// runBrokerWith runs a broker answering with h, its config the tests'
// usual one (4 instances, prefetch 8, bodies up to 1024 bytes, a 5s
// timeout) changed by set, until the test ends.
func runBrokerWith(t *testing.T, url string, h dispatch.Handler, set func(*dispatch.Config)) (b *dispatch.Broker, stop func() error) {
	t.Helper()
	cfg := dispatch.Config{
		Name: "dispatcher", Node: "test-node", Queue: wire.EventsQueue,
		Dial: mq.DialConfig{URL: url, Name: "test"}, Instances: 4, Prefetch: 8,
		MaxBody: 1024, Timeout: 5 * time.Second,
	}
	if set != nil {
		set(&cfg)
	}
	b = dispatch.NewBroker(cfg, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !b.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("broker not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	return b, stop
}

func TestBroker(t *testing.T) {
	url := testenv.AMQP(t)
	obs := &counter{codes: map[wire.Code]int{}}
	startBroker(t, url, obs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	codeOf := func(err error) wire.Code {
		var we *wire.Error
		if errors.As(err, &we) {
			return we.Code
		}
		return ""
	}

	t.Run("panic answers internal and the broker goes on", func(t *testing.T) {
		_, err := c.Do(ctx, &wire.Request{Template: "boom", Op: wire.OpRead})
		if codeOf(err) != wire.CodeInternal {
			t.Fatalf("err %v, want internal", err)
		}
		r, err := c.Do(ctx, &wire.Request{Template: "after", Op: wire.OpRead})
		if err != nil || r.Rows[0]["template"] != "after" || r.Node != "test-node" {
			t.Fatalf("after panic: %v %v", r, err)
		}
	})
	t.Run("deadline from expiration", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.Do(wctx, &wire.Request{Template: "wait", Op: wire.OpRead})
		if codeOf(err) != wire.CodeTimeout || time.Since(start) > 3*time.Second {
			t.Fatalf("err %v after %s", err, time.Since(start))
		}
	})
	t.Run("bad bodies", func(t *testing.T) {
		for name, tc := range map[string]struct {
			body []byte
			code wire.Code
		}{
			"not json":       {[]byte("hello"), wire.CodeBadRequest},
			"invalid utf-8":  {[]byte("{\"template\":\"\xff\",\"op\":\"read\"}"), wire.CodeBadRequest},
			"too large":      {[]byte(fmt.Sprintf(`{"template":%q,"op":"read"}`, make([]byte, 2000))), wire.CodeTooLarge},
			"unknown op":     {[]byte(`{"template":"x","op":"drop"}`), wire.CodeBadRequest},
			"unknown key":    {[]byte(`{"template":"x","op":"read","sql":"DROP"}`), wire.CodeBadRequest},
			"two values":     {[]byte(`{"op":"ping"}{"op":"ping"}`), wire.CodeBadRequest},
			"empty":          {[]byte(``), wire.CodeBadRequest},
			"array not obj.": {[]byte(`[1,2]`), wire.CodeBadRequest},
		} {
			r, err := c.DoRaw(ctx, wire.RouteRead, tc.body)
			if codeOf(err) != tc.code || r == nil || r.Event == "" {
				t.Errorf("%s: reply %+v err %v, want %s", name, r, err, tc.code)
			}
		}
	})
	t.Run("concurrent requests are matched to their callers", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 400)
		for i := 0; i < 400; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("t%d", i)
				r, err := c.Do(ctx, &wire.Request{Template: name, Op: wire.OpRead})
				if err != nil {
					errs <- err
					return
				}
				if r.Rows[0]["template"] != name {
					errs <- fmt.Errorf("request %s got the reply of %v", name, r.Rows[0]["template"])
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	obs.mu.Lock()
	if obs.codes[wire.CodeInternal] != 1 || obs.codes[""] < 400 {
		t.Errorf("observed %v", obs.codes)
	}
	obs.mu.Unlock()
}

// TestNoReplyTo checks a failed request nobody waits for lands in
// beds.dead with the reason, and a successful one is simply acked.
func TestNoReplyTo(t *testing.T) {
	url := testenv.AMQP(t)
	startBroker(t, url, nil)
	ch := testenv.Channel(t, url)
	ctx := context.Background()
	for _, body := range []string{`{"template":"ok","op":"read"}`, `{"template":"fail","op":"read"}`} {
		if err := ch.PublishWithContext(ctx, wire.Exchange, wire.RouteRead, false, false,
			amqp.Publishing{ContentType: wire.ContentType, MessageId: "ev-" + body[13:15], Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, ok, err := ch.Get(wire.DeadQueue, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if d.Headers[wire.HeaderError] != string(wire.CodeUnknownTemplate) || d.Headers[wire.HeaderEvent] != "ev-fa" {
				t.Fatalf("dead letter headers %v", d.Headers)
			}
			var req wire.Request
			if err := json.Unmarshal(d.Body, &req); err != nil || req.Template != "fail" {
				t.Fatalf("dead letter body %s", d.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	q, err := ch.QueueDeclarePassive(wire.DeadQueue, true, false, false, false, amqp.Table{"x-queue-type": "classic"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Fatalf("%d more dead letters: the ok request must not be one", q.Messages)
	}
}

// TestDrain cancels a busy broker: every request is either answered or
// still in the queue for another node; none is lost.
func TestDrain(t *testing.T) {
	url := testenv.AMQP(t)
	_, stopBroker := startBroker(t, url, nil)
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	c, err := client.Dial(ctx, url, client.Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 4*time.Second)
			defer cancel()
			if _, err := c.Do(rctx, &wire.Request{Template: "slow", Op: wire.OpRead}); err == nil {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(150 * time.Millisecond)
	if err := stopBroker(); err != nil {
		t.Fatalf("drain: %v", err)
	}
	ch := testenv.Channel(t, url)
	q, err := ch.QueueDeclarePassive(wire.EventsQueue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("sent %d, answered before drain %d, left in queue %d", n, answered, q.Messages)
	if answered == 0 || answered+q.Messages != n {
		t.Fatalf("answered %d + queued %d != sent %d", answered, q.Messages, n)
	}
}

// TestQueueDeleted: when RabbitMQ cancels the consumer (its queue was
// deleted), the broker starts a new session, declares the topology again
// and serves.
func TestQueueDeleted(t *testing.T) {
	url := testenv.AMQP(t)
	b, _ := startBroker(t, url, nil)
	ch := testenv.Channel(t, url)
	if _, err := ch.QueueDelete(wire.EventsQueue, false, false, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		r, err := c.Do(rctx, &wire.Request{Template: "back", Op: wire.OpRead})
		rcancel()
		if err == nil && r.Rows[0]["template"] == "back" && b.Ready() {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("broker did not come back after its queue was deleted: %v", err)
		}
	}
}

// One request held by its handler must not hold back the others: their
// acknowledgements may not wait behind its own for long, or the prefetch
// window fills with finished but unacknowledged deliveries and RabbitMQ
// stops delivering.
func TestLongRequestDoesNotStallTheChannel(t *testing.T) {
	url := testenv.AMQP(t)
	holding, release := make(chan struct{}), make(chan struct{})
	h := dispatch.HandlerFunc(func(ctx context.Context, m *dispatch.Message) *wire.Reply {
		if m.Request.Template == "hold" {
			close(holding)
			<-release
		}
		return &wire.Reply{OK: true, Rows: []wire.Row{{"template": m.Request.Template}}}
	})
	_, stop := runBroker(t, url, h, nil, 4, 30*time.Second)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, &wire.Request{Template: "hold", Op: wire.OpRead})
		held <- err
	}()
	<-holding
	// 40 requests, ten times the prefetch, while the first is held.
	for i := range 40 {
		name := fmt.Sprintf("r%d", i)
		r, err := c.Do(ctx, &wire.Request{Template: name, Op: wire.OpRead})
		if err != nil || r.Rows[0]["template"] != name {
			t.Fatalf("request %d behind a held one: %v %v", i, r, err)
		}
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("held request: %v", err)
	}
}
