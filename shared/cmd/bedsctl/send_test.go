package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// fakeNode consumes beds.events of the vhost at url and answers like a
// node: a batch item of template "refuse" fails the batch (conflict); a
// lineage request for "unknown" is not_found, any other gets a small
// tree; anything else gets one row. It echoes traceparent on the reply
// and sends every request it took on the returned channel first.
func fakeNode(t *testing.T, url string) <-chan amqp.Delivery {
	t.Helper()
	return testenv.Responder{Queue: wire.EventsQueue, Keep: 16, Answer: nodeReply, Headers: echoTrace}.Start(t, url)
}

// nodeReply is the fake node's reply to d.
func nodeReply(d amqp.Delivery) *wire.Reply {
	reply := wire.Reply{OK: true, Event: d.MessageId, Node: "fake"}
	req, err := wire.DecodeRequest(d.Body)
	switch {
	case err != nil:
		we, _ := wire.AsError(err)
		reply = *wire.ErrorReply(d.MessageId, we)
	case req.Op == wire.OpBatch:
		for _, item := range req.Batch {
			r := wire.Reply{OK: true, Event: d.MessageId + ".x"}
			if item.Template == "refuse" {
				r = *wire.ErrorReply(r.Event, wire.Errorf(wire.CodeConflict, "refused"))
				reply.OK, reply.Error = false, wire.Errorf(wire.CodeConflict, "refused")
			}
			reply.Items = append(reply.Items, r)
		}
	case req.Op == wire.OpLineage && req.Event == "unknown":
		reply = *wire.ErrorReply(d.MessageId, wire.Errorf(wire.CodeNotFound, "no lineage recorded for unknown"))
	case req.Op == wire.OpLineage:
		reply.Lineage = &wire.Lineage{Event: req.Event, Op: wire.OpRead, Template: "users", Outcome: "ok", DurationUS: 1240, Node: "fake", Children: []*wire.Lineage{
			{Event: req.Event + ".1", Op: wire.OpRead, Template: "orders", Outcome: "ok", DurationUS: 810}}}
	default:
		reply.Rows, reply.Count = []wire.Row{{"id": 1}}, 1
	}
	return &reply
}

// echoTrace gives the reply to d the traceparent d came with.
func echoTrace(d amqp.Delivery) amqp.Table {
	if tp, ok := d.Headers[wire.HeaderTraceParent].(string); ok {
		return amqp.Table{wire.HeaderTraceParent: tp}
	}
	return nil
}

// TestSendCommands runs call, batch and lineage against a fake node: what
// arrives, what is printed, the exit code.
func TestSendCommands(t *testing.T) {
	url := testenv.AMQP(t)
	got := fakeNode(t, url)
	const root = "01JDQ3V0Z8K4M6T2X9B7C5N1PA"
	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout []string // each must be in stdout
		exact  string   // when set, all of stdout
		stderr string   // must be in stderr
		sent   func(d amqp.Delivery, req *wire.Request) bool
	}{
		{name: "call with include, parent, traceparent, record",
			args: []string{"call", "users", "read", "--include", "orders,orders.items", "--parent", root, "--traceparent", testTrace, "--record"},
			code: 0, stdout: []string{`"ok": true`, `"rows": [`}, stderr: "traceparent: " + testTrace,
			sent: func(d amqp.Delivery, req *wire.Request) bool {
				return d.Headers[wire.HeaderParent] == root && d.Headers[wire.HeaderTraceParent] == testTrace &&
					req.Record && strings.Join(req.Include, " ") == "orders orders.items"
			}},
		{name: "batch from stdin",
			args: []string{"batch", "-"}, stdin: `[{"template":"users","op":"count"},{"template":"users","op":"read"}]`,
			code: 0, stdout: []string{`"items": [`, `"ok": true`},
			sent: func(d amqp.Delivery, req *wire.Request) bool {
				return d.RoutingKey == wire.RouteRead && len(req.Batch) == 2 && d.Headers[wire.HeaderParent] == nil
			}},
		{name: "failed batch exits 1 and prints the reply",
			args: []string{"batch", "-"}, stdin: `[{"template":"users","op":"create","data":{"a":1}},{"template":"refuse","op":"count"}]`,
			code: 1, stdout: []string{`"ok": false`, `"code": "conflict"`},
			sent: func(d amqp.Delivery, req *wire.Request) bool { return d.RoutingKey == wire.RouteWrite }},
		{name: "lineage tree",
			args: []string{"lineage", root}, code: 0,
			exact: root + "  read users  ok  1.24ms  fake\n└─ " + root + ".1  read orders  ok  0.81ms\n",
			sent:  func(d amqp.Delivery, req *wire.Request) bool { return req.Op == wire.OpLineage && req.Event == root }},
		{name: "lineage json",
			args: []string{"lineage", root, "--json"}, code: 0, stdout: []string{`"event": "` + root + `.1"`, `"duration_us": 810`},
			sent: func(d amqp.Delivery, req *wire.Request) bool { return req.Event == root }},
		{name: "lineage not found",
			args: []string{"lineage", "unknown"}, code: 1, stderr: "bedsctl: not_found: no lineage recorded for unknown",
			sent: func(d amqp.Delivery, req *wire.Request) bool { return req.Event == "unknown" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append(tc.args, "--url", url, "--timeout", "10s")
			code := run(context.Background(), args, strings.NewReader(tc.stdin), &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("exit %d (want %d), stderr lacks %q:\n%s", code, tc.code, tc.stderr, errOut.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			if tc.exact != "" && out.String() != tc.exact {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tc.exact)
			}
			select {
			case d := <-got:
				req, err := wire.DecodeRequest(d.Body)
				if err != nil || !tc.sent(d, req) {
					t.Errorf("the node got %s with headers %v (%v)", d.Body, d.Headers, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the node got nothing")
			}
		})
	}
}
