package client_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

func traceOut(in string) string { return in[:36] + "b7ad6b7169203331" + in[52:] }

// fakeNode consumes beds.events of the vhost at url as a node would and
// answers each request from its body (see answer). Every delivery it took
// is sent on the returned channel before it is answered. It stops when the
// test ends.
func fakeNode(t *testing.T, url string) <-chan amqp.Delivery {
	t.Helper()
	return testenv.Responder{Queue: wire.EventsQueue, Keep: 64, Answer: answer, Headers: traceHeaders}.Start(t, url)
}

// traceHeaders gives the reply to d a traceparent of the same trace as
// d's valid one, with the parent ID of the fake node's span (traceOut).
func traceHeaders(d amqp.Delivery) amqp.Table {
	if tp, ok := d.Headers[wire.HeaderTraceParent].(string); ok && wire.CheckTraceparent(tp) == nil {
		return amqp.Table{wire.HeaderTraceParent: traceOut(tp)}
	}
	return nil
}

// answer is the fake node's reply to d: a batch's items succeed unless
// their template is "refuse" (then the batch fails whole, conflict); a
// lineage request gets a tree of two children, or not_found for event
// "unknown"; anything else gets one row.
func answer(d amqp.Delivery) *wire.Reply {
	event := d.MessageId
	reply := wire.Reply{OK: true, Event: event, Node: "fake"}
	req, err := wire.DecodeRequest(d.Body)
	switch {
	case err != nil:
		we, _ := wire.AsError(err)
		reply = *wire.ErrorReply(event, we)
	case req.Op == wire.OpBatch:
		reply.Atomic = req.Writes()
		for i, item := range req.Batch {
			r := wire.Reply{OK: true, Event: event + "." + strconv.Itoa(i+1), Node: "fake"}
			if item.Op.Writes() {
				r.Affected = 1
			}
			if item.Template == "refuse" {
				r = *wire.ErrorReply(r.Event, wire.Errorf(wire.CodeConflict, "refused"))
				reply.OK, reply.Error, reply.Atomic = false, wire.Errorf(wire.CodeConflict, "batch[%d]: refused", i), false
			}
			reply.Items = append(reply.Items, r)
		}
	case req.Op == wire.OpLineage && req.Event == "unknown":
		reply = *wire.ErrorReply(event, wire.Errorf(wire.CodeNotFound, "no lineage recorded for unknown"))
	case req.Op == wire.OpLineage:
		reply.Lineage = &wire.Lineage{Event: req.Event, Op: wire.OpRead, Template: "users", Outcome: "ok", Children: []*wire.Lineage{
			{Event: req.Event + ".1", Parent: req.Event, Op: wire.OpRead, Template: "orders", Outcome: "ok"},
			{Event: req.Event + ".2", Parent: req.Event, Op: wire.OpRead, Template: "profiles", Outcome: "timeout"},
		}}
	default:
		reply.Rows, reply.Count = []wire.Row{{"id": 1}}, 1
	}
	return &reply
}

// TestCallOptionsAndHelpers sends through a fake node and checks what
// arrives (routing key, headers, body) and what the caller gets back;
// invalid options and batches are refused before anything is sent.
func TestCallOptionsAndHelpers(t *testing.T) {
	url := testenv.AMQP(t)
	got := fakeNode(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Name: "test", Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const (
		tp     = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		parent = "01JDQ3V0Z8K4M6T2X9B7C5N1PA"
	)
	read := wire.Request{Template: "users", Op: wire.OpRead, Include: []string{"orders", "orders.items"}}
	create := wire.Request{Template: "users", Op: wire.OpCreate, Data: json.RawMessage(`{"name":"Ann"}`)}
	asReply := func(l *wire.Lineage, err error) (*wire.Reply, error) {
		if l == nil {
			return nil, err
		}
		return &wire.Reply{OK: true, Lineage: l}, err
	}
	for _, tc := range []struct {
		name string
		call func() (*wire.Reply, error)
		// What must arrive; key "" means nothing may be sent.
		key, op, parent, trace string
		// What the caller must get.
		code  wire.Code
		check func(*wire.Reply) string // "" when the reply is right
	}{
		{name: "no options", call: func() (*wire.Reply, error) { return c.Do(ctx, &read) },
			key: wire.RouteRead, op: "read",
			check: func(r *wire.Reply) string {
				if r.Trace != "" || len(r.Rows) != 1 {
					return "want one row and no trace"
				}
				return ""
			}},
		{name: "parent and traceparent", call: func() (*wire.Reply, error) {
			return c.Do(ctx, &read, client.WithParent(parent), client.WithTraceparent(tp))
		}, key: wire.RouteRead, op: "read", parent: parent, trace: tp,
			check: func(r *wire.Reply) string {
				if r.Trace != traceOut(tp) {
					return "want Trace " + traceOut(tp) + ", the reply header"
				}
				return ""
			}},
		{name: "send with parent", call: func() (*wire.Reply, error) {
			return c.Send(ctx, parent+".3", &read, client.WithParent(parent))
		}, key: wire.RouteRead, op: "read", parent: parent,
			check: func(r *wire.Reply) string {
				if r.Event != parent+".3" {
					return "want the event ID sent"
				}
				return ""
			}},
		{name: "read batch", call: func() (*wire.Reply, error) {
			return c.Batch(ctx, []wire.Request{read, {Template: "users", Op: wire.OpCount}}, client.WithTraceparent(tp))
		}, key: wire.RouteRead, op: "batch", trace: tp,
			check: func(r *wire.Reply) string {
				if len(r.Items) != 2 || r.Atomic || !r.Items[0].OK || r.Items[1].Event != r.Event+".2" {
					return "want two items in order, not atomic"
				}
				return ""
			}},
		{name: "batch with a write goes as a write", call: func() (*wire.Reply, error) {
			return c.Batch(ctx, []wire.Request{read, create})
		}, key: wire.RouteWrite, op: "batch",
			check: func(r *wire.Reply) string {
				if len(r.Items) != 2 || !r.Atomic || r.Items[1].Affected != 1 {
					return "want two items, atomic, the create affecting 1"
				}
				return ""
			}},
		{name: "failed batch returns reply and error", call: func() (*wire.Reply, error) {
			return c.Batch(ctx, []wire.Request{create, {Template: "refuse", Op: wire.OpDelete, Filter: json.RawMessage(`{"id":1}`)}})
		}, key: wire.RouteWrite, op: "batch", code: wire.CodeConflict,
			check: func(r *wire.Reply) string {
				if len(r.Items) != 2 || r.OK || r.Items[1].Error == nil || r.Items[1].Error.Code != wire.CodeConflict {
					return "want the reply, its second item refused"
				}
				return ""
			}},
		{name: "lineage", call: func() (*wire.Reply, error) { return asReply(c.Lineage(ctx, parent)) },
			key: wire.RouteRead, op: "lineage",
			check: func(r *wire.Reply) string {
				l := r.Lineage
				if l.Event != parent || len(l.Children) != 2 || l.Children[0].Event != parent+".1" || l.Children[1].Outcome != "timeout" {
					return "want the tree of " + parent
				}
				return ""
			}},
		{name: "lineage not found", call: func() (*wire.Reply, error) { return asReply(c.Lineage(ctx, "unknown")) },
			key: wire.RouteRead, op: "lineage", code: wire.CodeNotFound},

		// Refused before sending.
		{name: "bad parent", call: func() (*wire.Reply, error) { return c.Do(ctx, &read, client.WithParent("has space")) },
			code: wire.CodeBadRequest},
		{name: "empty parent", call: func() (*wire.Reply, error) { return c.Do(ctx, &read, client.WithParent("")) },
			code: wire.CodeBadRequest},
		{name: "bad traceparent", call: func() (*wire.Reply, error) {
			return c.Do(ctx, &read, client.WithParent(parent), client.WithTraceparent(strings.ToUpper(tp)))
		}, code: wire.CodeBadRequest},
		{name: "bad traceparent on a batch", call: func() (*wire.Reply, error) {
			return c.Batch(ctx, []wire.Request{read}, client.WithTraceparent("00-x"))
		}, code: wire.CodeBadRequest},
		{name: "bad traceparent on DoRaw", call: func() (*wire.Reply, error) {
			return c.DoRaw(ctx, wire.RouteRead, []byte(`{"op":"ping"}`), client.WithTraceparent(""))
		}, code: wire.CodeBadRequest},
		{name: "empty batch", call: func() (*wire.Reply, error) { return c.Batch(ctx, nil) }, code: wire.CodeBadRequest},
		{name: "nested batch", call: func() (*wire.Reply, error) {
			return c.Batch(ctx, []wire.Request{read, {Op: wire.OpBatch, Batch: []wire.Request{read}}})
		}, code: wire.CodeBadRequest},
		{name: "bad batch item", call: func() (*wire.Reply, error) {
			return c.Batch(ctx, []wire.Request{read, {Template: "users", Op: wire.OpCount, Include: []string{"orders"}}})
		}, code: wire.CodeBadRequest},
		{name: "batch too large", call: func() (*wire.Reply, error) {
			return c.Batch(ctx, make([]wire.Request, wire.MaxBatch+1))
		}, code: wire.CodeTooLarge},
		{name: "bad lineage event", call: func() (*wire.Reply, error) { return asReply(c.Lineage(ctx, "")) },
			code: wire.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := tc.call()
			if code(err) != tc.code {
				t.Fatalf("err %v, want code %q", err, tc.code)
			}
			if tc.check != nil {
				if reply == nil {
					t.Fatalf("no reply (err %v)", err)
				}
				if why := tc.check(reply); why != "" {
					t.Errorf("%s; got %+v", why, reply)
				}
			} else if tc.code == wire.CodeBadRequest && reply != nil {
				t.Errorf("a refused call returned a reply: %+v", reply)
			}
			if tc.key == "" {
				return // checked below: nothing was sent
			}
			var d amqp.Delivery
			select {
			case d = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("the fake node got nothing")
			}
			if d.RoutingKey != tc.key {
				t.Errorf("routing key %q, want %q", d.RoutingKey, tc.key)
			}
			req, err := wire.DecodeRequest(d.Body)
			if err != nil || string(req.Op) != tc.op {
				t.Errorf("body %s (%v), want op %s", d.Body, err, tc.op)
			}
			p, _ := d.Headers[wire.HeaderParent].(string)
			tr, _ := d.Headers[wire.HeaderTraceParent].(string)
			if p != tc.parent || tr != tc.trace {
				t.Errorf("headers %v, want parent %q traceparent %q", d.Headers, tc.parent, tc.trace)
			}
			if _, ok := d.Headers[wire.HeaderParent]; ok != (tc.parent != "") {
				t.Errorf("headers %v: parent header present %v, want %v", d.Headers, ok, tc.parent != "")
			}
		})
	}

	// Nothing refused reached the queue: the next request the node takes
	// is the ping sent now.
	if _, err := c.Do(ctx, &wire.Request{Op: wire.OpPing}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if req, err := wire.DecodeRequest(d.Body); err != nil || req.Op != wire.OpPing {
			t.Errorf("the node got %s after the refused calls, want the ping", d.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fake node got nothing")
	}
}
