package mq_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// conn opens a connection to url, closed when the test ends.
func conn(t *testing.T, url string) *amqp.Connection {
	t.Helper()
	c, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deadCount returns how many messages beds.dead holds.
func deadCount(t *testing.T, ch *amqp.Channel) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(wire.DeadQueue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// TestDeadQueueBounds: beds.dead keeps at most DeadMaxLength messages,
// dropping the oldest, and none longer than DeadTTL, on both queue types.
func TestDeadQueueBounds(t *testing.T) {
	for _, qt := range []string{"classic", "quorum"} {
		t.Run(qt, func(t *testing.T) {
			url := testenv.AMQP(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ch := testenv.Channel(t, url)
			if err := mq.Declare(conn(t, url), mq.Topology{QueueType: qt, DeliveryLimit: 5, DeadMaxLength: 3, DeadTTL: time.Hour}, nil); err != nil {
				t.Fatal(err)
			}
			if err := ch.Confirm(false); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"m1", "m2", "m3", "m4", "m5"} {
				c, err := ch.PublishWithDeferredConfirmWithContext(ctx, wire.DeadExchange, "", false, false,
					amqp.Publishing{MessageId: id, Body: []byte(id)})
				if err != nil || !c.Wait() {
					t.Fatalf("publish %s: %v", id, err)
				}
			}
			if n := deadCount(t, ch); n != 3 {
				t.Fatalf("beds.dead holds %d messages, want the length limit 3", n)
			}
			d, ok, err := ch.Get(wire.DeadQueue, true)
			if err != nil || !ok || d.MessageId != "m3" {
				t.Fatalf("head of beds.dead %q (%v %v), want m3: the oldest are dropped", d.MessageId, ok, err)
			}
		})
	}
	t.Run("ttl", func(t *testing.T) {
		url := testenv.AMQP(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ch := testenv.Channel(t, url)
		if err := mq.Declare(conn(t, url), mq.Topology{QueueType: "classic", DeadTTL: 200 * time.Millisecond}, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.PublishWithContext(ctx, wire.DeadExchange, "", false, false, amqp.Publishing{Body: []byte("old")}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for deadCount(t, ch) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("a dead letter outlived the TTL")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// records is a log handler that keeps each record's level and message.
type records struct {
	mu   sync.Mutex
	msgs map[slog.Level][]string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[slog.Level][]string{}
	}
	r.msgs[rec.Level] = append(r.msgs[rec.Level], rec.Message)
	return nil
}

// at returns the messages logged at level.
func (r *records) at(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[level]
}

// TestDeclareOtherArguments: an existing beds.dead made with other bounds
// (or none: a node upgraded from a version without them) is not silently
// kept, nor a reason to refuse to start: Declare keeps it, declares the
// rest, and warns once per process with what to do, the configured values
// filled in. Another queue type still stops it.
func TestDeclareOtherArguments(t *testing.T) {
	url := testenv.AMQP(t)
	vhost := url[strings.LastIndex(url, "/")+1:]
	c := conn(t, url)
	if err := mq.Declare(c, mq.Topology{QueueType: "classic"}, nil); err != nil {
		t.Fatal(err)
	}
	// beds.events as an older version made it, without its bindings.
	ch := testenv.Channel(t, url)
	for _, key := range []string{wire.RouteRead, wire.RouteWrite} {
		if err := ch.QueueUnbind(wire.EventsQueue, key, wire.Exchange, nil); err != nil {
			t.Fatal(err)
		}
	}
	var logs records
	log := slog.New(&logs)
	topo := mq.Topology{QueueType: "classic", DeadMaxLength: 10, DeadTTL: 90 * time.Second}
	if err := mq.Declare(c, topo, log); err != nil {
		t.Fatalf("declare with bounds over an unbounded beds.dead: %v", err)
	}
	warnings := logs.at(slog.LevelWarn)
	if len(warnings) != 1 {
		t.Fatalf("warnings %q, want 1", warnings)
	}
	for _, want := range []string{wire.DeadQueue, "dead_max_length = 10", "unbounded", "delete it",
		"rabbitmqctl delete_queue -p " + vhost + " beds.dead",
		`rabbitmqctl set_policy -p ` + vhost + ` beds-dead '^beds\.dead$' '{"max-length":10,"message-ttl":90000,"overflow":"drop-head"}' --apply-to queues`,
	} {
		if !strings.Contains(warnings[0], want) {
			t.Errorf("warning %q lacks %q", warnings[0], want)
		}
	}
	// The rest was declared after it: beds.events is bound again.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(ctx, wire.Exchange, wire.RouteRead, false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(wire.EventsQueue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Messages == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("beds.events not bound after the warning: Declare stopped at beds.dead")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every session declares again: no second warning in this process.
	for range 2 {
		if err := mq.Declare(c, topo, log); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(logs.at(slog.LevelWarn)); n != 1 {
		t.Errorf("%d warnings after three declarations, want 1", n)
	}

	// Another type is not a bound: the node must not start on it.
	err := mq.Declare(c, mq.Topology{QueueType: "quorum"}, log)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		t.Fatalf("err %v, want PRECONDITION_FAILED", err)
	}
	for _, want := range []string{wire.DeadQueue, "dead_max_length", "delete it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// A malformed URL's error never shows its password, nor a piece of it.
func TestDialHidesThePassword(t *testing.T) {
	for _, raw := range []string{
		"amqp://guest:s3cr%zzet@127.0.0.1:5672/",    // bad escape in the password
		"amqp://guest:s3cr/et@127.0.0.1:5672/",      // unescaped / : "et@127..." is a path, "s3cr" a port
		"amqp://guest:s3cret@127.0.0.1:56x72/",      // bad port
		"amqp://guest:s3cret@[::1/",                 // bad host
		"amqp://guest:31415926535/x@127.0.0.1:5672", // numeric password read as an out-of-range port
		"amqp://guest:s3cr?heartbeat=et@127.0.0.1/", // ? starts a query holding the rest
		"amqp://guest:s3cret @127.0.0.1/",           // whitespace
		"http://guest:s3cret@127.0.0.1/",            // scheme
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := mq.Dial(ctx, mq.DialConfig{URL: raw, Timeout: time.Second})
		cancel()
		if !errors.Is(err, mq.ErrBadURL) {
			t.Errorf("%s: err %v, want ErrBadURL", raw, err)
			continue
		}
		for _, secret := range []string{"s3cr", "et@", "31415926535", "zz"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q shows %q", raw, err, secret)
			}
		}
		if !strings.Contains(err.Error(), "guest:xxxxx@") {
			t.Errorf("%s: error %q does not show the masked URL", raw, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:s3cret@h:5672/v": "amqp://guest:xxxxx@h:5672/v",
		"amqp://guest:a@b/c@h/":        "amqp://guest:xxxxx@h/",
		"amqp://guest@h/":              "amqp://guest@h/",
		"amqp://h:5672/":               "amqp://h:5672/",
		"guest:pw@h":                   "guest:xxxxx@h",
	} {
		if got := mq.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
