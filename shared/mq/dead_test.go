package mq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

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
			if err := mq.Declare(ch, mq.Topology{QueueType: qt, DeliveryLimit: 5, DeadMaxLength: 3, DeadTTL: time.Hour}); err != nil {
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
		if err := mq.Declare(ch, mq.Topology{QueueType: "classic", DeadTTL: 200 * time.Millisecond}); err != nil {
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

// TestDeclareOtherArguments: an existing beds.dead made with other bounds
// is not silently kept or replaced: Declare fails and tells the operator
// what to do.
func TestDeclareOtherArguments(t *testing.T) {
	url := testenv.AMQP(t)
	ch := testenv.Channel(t, url)
	if err := mq.Declare(ch, mq.Topology{QueueType: "classic"}); err != nil {
		t.Fatal(err)
	}
	ch = testenv.Channel(t, url)
	err := mq.Declare(ch, mq.Topology{QueueType: "classic", DeadMaxLength: 10})
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
