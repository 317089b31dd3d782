package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// whoamiResponder stands in for tercero on url until the test ends: a
// token "user-<n>" is user n with role member, any other is
// unauthenticated. It returns the count of whoamis it answered.
func whoamiResponder(t *testing.T, url string) *atomic.Int64 {
	t.Helper()
	var asked atomic.Int64
	testenv.Responder{Queue: wire.TerceroQueue, Answer: func(d amqp.Delivery) *wire.Reply {
		asked.Add(1)
		token, _ := d.Headers[wire.HeaderSession].(string)
		var n int64
		if _, err := fmt.Sscanf(token, "user-%d", &n); err != nil {
			return wire.ErrorReply(d.MessageId, wire.Errorf(wire.CodeUnauthenticated, "no session holds this token"))
		}
		return &wire.Reply{OK: true, Event: d.MessageId, Identity: &wire.Identity{User: n, Name: token, Roles: []string{"member"}}}
	}}.Start(t, url)
	return &asked
}

// TestAccess runs requests through a whole appserver: who the caller is
// (trusted service, session, nobody) decides what the templates' [access]
// tables let them do.
func TestAccess(t *testing.T) {
	s := newServers(t)
	n := startNode(t, map[string]string{
		"BEDS_CONFIG_DIR":   configDir(t, "[access]\nresolve_timeout = \"500ms\"\n"),
		"BEDS_TEMPLATE_DIR": filepath.Join(testenv.Root(t), "templates"),
		"BEDS_AMQP_URL":     s.amqpURL, "BEDS_MARIADB_DSN": s.mariaDSN, "BEDS_MONGO_URI": s.mongoURI,
		"BEDS_HTTP_ADDR": "127.0.0.1:0", "BEDS_NODE_NAME": "access-appserver", "BEDS_LOG_LEVEL": "warn",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.amqpURL, client.Options{Name: "test"})
	must(t, err)
	defer c.Close()
	as := func(token, body string) (*wire.Reply, error) {
		var req wire.Request
		must(t, json.Unmarshal([]byte(body), &req))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return c.Do(ctx, &req, client.WithSession(token))
	}

	// guest is trusted as an admin (env_dev.toml): it places orders for
	// users 1 and 2.
	for _, u := range []int{1, 1, 2} {
		do(t, c, fmt.Sprintf(`{"template":"orders","op":"create","data":{"user":%d,"total":1}}`, u))
	}

	t.Run("nobody", func(t *testing.T) {
		r := rawCall(t, s.amqpURL, wire.RouteRead, amqp.Publishing{ContentType: wire.ContentType,
			Body: []byte(`{"template":"orders","op":"read"}`)}, 10*time.Second)
		if !r.OK { // rawCall publishes as guest
			t.Fatalf("guest: %v", r.Error)
		}
		var anon wire.Reply
		must(t, json.Unmarshal(rawCallAs(t, s.amqpURL, wire.RouteRead, amqp.Publishing{ContentType: wire.ContentType,
			Body: []byte(`{"template":"orders","op":"read"}`)}, 10*time.Second), &anon))
		if anon.OK || anon.Error.Code != wire.CodeUnauthenticated || !strings.Contains(anon.Error.Message, wire.HeaderSession) {
			t.Fatalf("nobody: %+v, want unauthenticated naming %s", anon.Error, wire.HeaderSession)
		}
	})
	t.Run("no tercero: unavailable", func(t *testing.T) {
		r, err := as("user-1", `{"template":"orders","op":"read"}`)
		checkCode(t, r, err, wire.CodeUnavailable)
	})

	asked := whoamiResponder(t, s.amqpURL)
	t.Run("owner-limited read through the node", func(t *testing.T) {
		for _, tc := range []struct {
			token string
			rows  int
		}{{"user-1", 2}, {"user-2", 1}, {"user-3", 0}} {
			r, err := as(tc.token, `{"template":"orders","op":"read"}`)
			if err != nil {
				t.Fatalf("%s: %v", tc.token, err)
			}
			if len(r.Rows) != tc.rows {
				t.Errorf("%s: %d rows, want %d", tc.token, len(r.Rows), tc.rows)
			}
			for _, row := range r.Rows {
				if fmt.Sprintf("user-%v", row["user"]) != tc.token {
					t.Errorf("%s got a row of user %v", tc.token, row["user"])
				}
			}
		}
		before := asked.Load()
		if _, err := as("user-1", `{"template":"orders","op":"count"}`); err != nil {
			t.Fatal(err)
		}
		if asked.Load() != before {
			t.Error("a cached session was resolved again")
		}
	})
	t.Run("forbidden and unauthenticated", func(t *testing.T) {
		r, err := as("user-1", `{"template":"orders","op":"delete","filter":{"user":1}}`)
		checkCode(t, r, err, wire.CodeForbidden)
		r, err = as("no-such-token", `{"template":"orders","op":"read"}`)
		checkCode(t, r, err, wire.CodeUnauthenticated)
		// A session op published where data requests go.
		expectRaw(t, c, wire.RouteRead, []byte(`{"op":"whoami"}`), wire.CodeBadRequest)
	})
	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + n.Addr() + "/metrics")
		must(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		must(t, err)
		for _, want := range []string{`beds_session_resolve_total{outcome="cached"}`, `beds_session_resolve_total{outcome="unavailable"} 1`, "beds_session_cache_entries"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}
