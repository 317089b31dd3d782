package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/beds-project/beds/shared/wire"
)

// sentCommand is one command the driver sent, as a CommandMonitor saw it.
type sentCommand struct {
	name      string
	maxTimeMS int64 // 0: absent
	remaining time.Duration
	deadline  bool
}

// commandLog records the commands of a store.
type commandLog struct {
	mu   sync.Mutex
	cmds []sentCommand
}

func (l *commandLog) started(ctx context.Context, e *event.CommandStartedEvent) {
	c := sentCommand{name: e.CommandName}
	if dl, ok := ctx.Deadline(); ok {
		c.deadline, c.remaining = true, time.Until(dl)
	}
	if v, err := e.Command.LookupErr("maxTimeMS"); err == nil {
		c.maxTimeMS, _ = v.AsInt64OK()
		if c.maxTimeMS == 0 {
			c.maxTimeMS = -1 // present but not an integer
		}
	}
	l.mu.Lock()
	l.cmds = append(l.cmds, c)
	l.mu.Unlock()
}

// take returns the commands recorded since the last take.
func (l *commandLog) take() []sentCommand {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.cmds
	l.cmds = nil
	return out
}

// monitoredStore is testStore with a command monitor and the given
// OpTimeout.
func monitoredStore(t *testing.T, opTimeout time.Duration) (*Store, *commandLog) {
	t.Helper()
	base := testStore(t) // skips with -short, drops the database at the end
	log := &commandLog{}
	opts, u, err := clientOptions(Config{URI: withDB(testURI(), base.Database()), OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	opts.SetMonitor(&event.CommandMonitor{Started: log.started})
	s, err := openWith(opts, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, log
}

// TestMaxTimeMS: every command a data operation sends carries maxTimeMS
// from the request's deadline, so the server stops work the caller no
// longer waits for. The driver adds it to every command but find (which
// opens a cursor); the adapter adds it there.
func TestMaxTimeMS(t *testing.T) {
	const budget = 5 * time.Second
	// Our find computes maxTimeMS just before the driver sends it; allow
	// for that lag and the driver's rounding up.
	const slack = 20 * time.Millisecond
	s, log := monitoredStore(t, 0)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)

	var b [4]byte
	_, _ = rand.Read(b[:])
	ev := "ev-" + hex.EncodeToString(b[:])
	for _, req := range []*wire.Request{
		{Op: wire.OpRead, Filter: raw(`{"age": {"gte": 0}}`), Sort: []string{"id"}},
		{Op: wire.OpRead, Filter: raw(`{"id": "ann"}`)},
		{Op: wire.OpCount, Filter: raw(`{"age": {"gte": 0}}`)},
		{Op: wire.OpCreate, Data: raw(`{"name": "New"}`)},
		{Op: wire.OpUpdate, Filter: raw(`{"id": "ann"}`), Data: raw(`{"age": 31}`)},
		{Op: wire.OpDelete, Filter: raw(`{"id": "bob"}`)},
	} {
		req.Template = tpl.Name
		q := build(t, tpl, ev+string(req.Op), req)
		log.take()
		ctx, cancel := context.WithTimeout(t.Context(), budget)
		_, err := s.Exec(ctx, q)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", req.Op, err)
		}
		var names []string
		for _, c := range log.take() {
			names = append(names, c.name)
			switch {
			case !c.deadline:
				t.Errorf("%s: %s ran without a deadline", req.Op, c.name)
			case c.maxTimeMS <= 0:
				t.Errorf("%s: %s sent without maxTimeMS", req.Op, c.name)
			case time.Duration(c.maxTimeMS)*time.Millisecond > c.remaining+slack:
				t.Errorf("%s: %s maxTimeMS %d, but %v remained", req.Op, c.name, c.maxTimeMS, c.remaining)
			}
		}
		want := map[wire.Op]string{wire.OpRead: "find", wire.OpCount: "aggregate", wire.OpCreate: "insert",
			wire.OpUpdate: "update", wire.OpDelete: "delete"}[req.Op]
		if !slices.Contains(names, want) {
			t.Errorf("%s sent %v, want a %s among them", req.Op, names, want)
		}
	}
}

// TestMaxTimeMSWithoutDeadline: a context without a deadline gets
// OpTimeout, for find too.
func TestMaxTimeMSWithoutDeadline(t *testing.T) {
	const opTimeout = 7 * time.Second
	s, log := monitoredStore(t, opTimeout)
	tpl := testTemplate(t, "people")
	seed(t, s, tpl)
	log.take()
	for _, req := range []*wire.Request{{Op: wire.OpRead}, {Op: wire.OpCount}} {
		req.Template = tpl.Name
		if _, err := s.Exec(context.Background(), build(t, tpl, "ev", req)); err != nil {
			t.Fatal(err)
		}
	}
	cmds := log.take()
	if len(cmds) < 2 {
		t.Fatalf("commands %+v", cmds)
	}
	for _, c := range cmds {
		if c.maxTimeMS <= 0 || c.maxTimeMS > opTimeout.Milliseconds() || c.maxTimeMS < (opTimeout-time.Second).Milliseconds() {
			t.Errorf("%s: maxTimeMS %d, want about %v", c.name, c.maxTimeMS, opTimeout)
		}
	}
}

// TestMaxTimeMSPassed: a read whose deadline has passed sends nothing
// and answers timeout.
func TestMaxTimeMSPassed(t *testing.T) {
	s, log := monitoredStore(t, 0)
	tpl := testTemplate(t, "people")
	log.take()
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Millisecond))
	defer cancel()
	_, err := s.Exec(ctx, build(t, tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpRead}))
	wantCode(t, err, wire.CodeTimeout)
	if cmds := log.take(); len(cmds) != 0 {
		t.Errorf("sent %+v after the deadline", cmds)
	}
}
