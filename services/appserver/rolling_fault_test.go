//go:build faults

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/wire"
)

// TestFaultRolling replaces every appserver of a three-node cluster, one
// after the other, under a steady mix of writes and point reads: each old
// node gets SIGTERM, must drain and exit 0, and a new node under a new
// name is started and must answer /readyz before the next old node goes,
// as an operator does it (docs/guarantees.md, Rolling replacement).
//
// The writes are units of a ledger create and two updates of a counter
// row, each write with its own event ID; the reads read counter rows by
// key. Nothing may go wrong that a client sees: every request is answered
// ok on its first send (no error reply, not even timeout or unavailable,
// so nothing is resent), every write is applied exactly once (counted in
// the database), and every new node answers reads before the test ends.
func TestFaultRolling(t *testing.T) {
	const nodes = 3
	f := newFixture(t, nodes)
	// Prepared for far more than the load sends before, during and after
	// the replacements on a 2-core machine; load fails the test if it
	// outruns them.
	const units = 100_000
	w := f.createUpdate(t, units)
	var fg figures
	record(t, "Rolling replacement of three appservers (SIGTERM, drain, exit 0, a new node ready, the next), MariaDB creates and updates with point reads",
		"after the last new node was ready (service never paused)", &fg)

	// 4 clients with 24 writers and 8 readers each keep about 40 requests
	// on each node when its SIGTERM comes, so the drain has work to
	// finish. The load starts the replacements a third of the way through
	// its 3,000 writes and goes on until a write is answered after the
	// last new node is ready.
	rctx, stopReads := context.WithCancel(context.Background())
	defer stopReads()
	reads := f.readLoad(rctx, t, "rolling-reader", 4, 8, units)
	var steps []replacement
	fg = f.load(t, "rolling", 3000, 4, 24, w, func() { steps = f.roll(t, "rolling", reads.stopping) })

	// Every new node must have served: readers go on until each has
	// answered a read.
	var fresh []string
	for _, s := range steps {
		fresh = append(fresh, s.started)
	}
	reads.await(t, fresh, 30*time.Second)
	stopReads()
	rf := reads.wait()

	for _, s := range steps {
		t.Logf("%s: SIGTERM to exit %s, %d reads answered after its SIGTERM; %s: start to /readyz %s",
			s.stopped, s.drain.Round(time.Millisecond), rf.afterStop[s.stopped], s.started, s.ready.Round(time.Millisecond))
	}
	t.Logf("rolling: %s", rf)
	if len(steps) != nodes {
		t.Errorf("%d of %d nodes replaced", len(steps), nodes)
	}
	if len(fg.codes) != 0 || len(fg.final) != 0 || fg.attempts != fg.sent {
		t.Errorf("writes: %s; want no error reply and no write sent twice", fg)
	}
	if rf.sent == 0 || rf.ok != rf.sent || len(rf.codes) != 0 || rf.wrong != 0 {
		t.Errorf("reads: %s; want every read answered ok with its row", rf)
	}
	// A draining node answers what it was working on when its SIGTERM
	// came (the reads it answered afterwards), and what it held but had
	// not begun (package dispatch's drain); what RabbitMQ had not sent it
	// yet goes to the other nodes.
	var drained int64
	for _, s := range steps {
		drained += rf.afterStop[s.stopped]
	}
	if drained == 0 {
		t.Errorf("no read answered by a node after its SIGTERM: the drains answered nothing they were working on")
	}
}

// replacement is one step of a rolling replacement: node stopped drained
// in drain, and its successor started answered /readyz after ready.
type replacement struct {
	stopped, started string
	drain, ready     time.Duration
}

// roll replaces every node of f in turn, as an operator does: SIGTERM,
// wait for the exit (which must be 0, after a drain), start a new node
// under a new name (prefix-1, ...), wait for /readyz. It runs in load's
// fault goroutine, so it reports failures with t.Errorf and stops there
// rather than calling t.Fatal. stopping is told each node's name just
// before its SIGTERM.
func (f *fixture) roll(t *testing.T, prefix string, stopping func(node string)) []replacement {
	old := append([]*proc(nil), f.procs...)
	var done []replacement
	for i, p := range old {
		r := replacement{stopped: p.name, started: fmt.Sprintf("%s-%d", prefix, i+1)}
		stopping(p.name)
		begin := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM %s: %v", p.name, err)
			return done
		}
		select {
		case err := <-p.exited:
			r.drain = time.Since(begin)
			if err != nil {
				t.Errorf("%s after SIGTERM: %v, want exit 0 after a drain", p.name, err)
				return done
			}
		case <-time.After(time.Minute):
			t.Errorf("%s still running a minute after SIGTERM (shutdown.timeout is 30 s)", p.name)
			return done
		}
		if !strings.Contains(p.logs.String(), "drained") {
			t.Errorf("%s exited without reporting a drain", p.name)
		}
		begin = time.Now()
		// start calls t.Fatal when the node does not come up, which ends
		// only the goroutine it runs on: here its own, so that roll can
		// still return and load can end.
		started := make(chan *proc, 1)
		go func() {
			var q *proc
			defer func() { started <- q }()
			q = f.start(t, r.started)
		}()
		if <-started == nil {
			t.Errorf("%s did not start", r.started)
			return done
		}
		r.ready = time.Since(begin)
		done = append(done, r)
	}
	return done
}

// createUpdate is the rolling replacement's write load: unit u creates a
// ledger row whose ref is its first event ID, then updates counter row u
// twice (testdata/counter.sql), each write under its own event ID. Counted
// in the database: ledger rows per ref, and the counter's audit rows per
// update event, each of which must show the row's own update count.
func (f *fixture) createUpdate(t *testing.T, units int64) workload {
	t.Helper()
	_, err := f.db.Exec(fmt.Sprintf("INSERT INTO tbl_cnt (cnt_id) SELECT seq FROM seq_1_to_%d", units))
	must(t, err)
	ledger := f.ledger()
	w := workload{steps: 3, units: units}
	w.write = func(unit int64, step int, event string) *wire.Request {
		if step == 0 {
			return ledger.write(unit, 0, event)
		}
		return &wire.Request{Template: "counter", Op: wire.OpUpdate, Filter: []byte(fmt.Sprintf(`{"id":%d}`, unit)),
			Data: []byte(fmt.Sprintf(`{"ref":%q}`, event))}
	}
	w.count = func(t *testing.T, run string) map[string]int64 {
		applied := ledger.count(t, run)
		rows, err := f.db.Query("SELECT log_row, log_ref, log_n FROM tbl_cnt_log WHERE log_op = 'update' AND log_ref LIKE ?", run+"-%")
		must(t, err)
		defer rows.Close()
		var miscounted int
		for rows.Next() {
			var row, n int64
			var ref string
			must(t, rows.Scan(&row, &ref, &n))
			applied[ref]++
			var unit int64
			var step int
			// Update step s (1 or 2) is the row's sth.
			if _, err := fmt.Sscanf(strings.TrimPrefix(ref, run+"-"), "%d-%d", &unit, &step); err != nil || unit != row || n != int64(step) {
				miscounted++
			}
		}
		must(t, rows.Err())
		if miscounted != 0 {
			t.Errorf("%s: %d audit rows show a counter row updated other than once per update event", run, miscounted)
		}
		return applied
	}
	return w
}

// readFigures is what a read load saw.
type readFigures struct {
	sent, ok int64
	codes    map[wire.Code]int64 // error replies
	wrong    int64               // ok replies without exactly the row asked for
	byNode   map[string]int64    // ok replies per answering node
	// afterStop counts, per node, ok replies it sent that arrived after
	// the node was told to stop (reads.stopping).
	afterStop map[string]int64
}

func (rf readFigures) String() string {
	var codes, nodes []string
	for c, n := range rf.codes {
		codes = append(codes, fmt.Sprintf("%s=%d", c, n))
	}
	for node, n := range rf.byNode {
		nodes = append(nodes, fmt.Sprintf("%s=%d", node, n))
	}
	sort.Strings(codes)
	sort.Strings(nodes)
	return fmt.Sprintf("point reads sent %d, answered ok %d, error replies [%s], wrong rows %d, answered by [%s]",
		rf.sent, rf.ok, strings.Join(codes, " "), rf.wrong, strings.Join(nodes, " "))
}

// reads is a running read load (readLoad).
type reads struct {
	mu   sync.Mutex
	fg   readFigures
	seen chan struct{} // signalled (without blocking) when a node answers its first read
	// stopped holds the nodes told to stop (stopping).
	stopped map[string]bool
	wg      sync.WaitGroup
}

// readLoad reads counter rows 1..units by key, at random, from clients
// clients with workers goroutines each, until ctx or the test ends; wait
// returns what they saw. A read gets one send: an error reply is counted,
// not retried.
func (f *fixture) readLoad(ctx context.Context, t *testing.T, name string, clients, workers int, units int64) *reads {
	t.Helper()
	r := &reads{fg: readFigures{codes: map[wire.Code]int64{}, byNode: map[string]int64{}, afterStop: map[string]int64{}},
		seen: make(chan struct{}, 1), stopped: map[string]bool{}}
	cls := make([]*client.Client, clients)
	for c := range cls {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cl, err := client.Dial(dctx, f.s.amqpURL, client.Options{Name: fmt.Sprintf("%s-%d", name, c)})
		cancel()
		must(t, err)
		t.Cleanup(func() { cl.Close() })
		cls[c] = cl
	}
	// Even when the test stops early the readers end before it does, and
	// before their clients close (cleanups run last registered first).
	ctx, stop := context.WithCancel(ctx)
	t.Cleanup(func() {
		stop()
		r.wg.Wait()
	})
	for _, cl := range cls {
		for range workers {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				for ctx.Err() == nil {
					r.read(ctx, t, cl, rand.Int64N(units)+1)
				}
			}()
		}
	}
	return r
}

// read reads counter row id once and counts the outcome.
func (r *reads) read(ctx context.Context, t *testing.T, cl *client.Client, id int64) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	reply, err := cl.Do(rctx, &wire.Request{Template: "counter", Op: wire.OpRead, Filter: []byte(fmt.Sprintf(`{"id":%d}`, id))})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fg.sent++
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		r.fg.codes[we.Code]++
		t.Errorf("read of counter row %d: %v", id, err)
	case err != nil:
		r.fg.codes["(client error)"]++
		t.Errorf("read of counter row %d: %v", id, err)
	default:
		r.fg.ok++
		if r.fg.byNode[reply.Node] == 0 {
			select {
			case r.seen <- struct{}{}:
			default:
			}
		}
		r.fg.byNode[reply.Node]++
		if r.stopped[reply.Node] {
			r.fg.afterStop[reply.Node]++
		}
		if len(reply.Rows) != 1 || fmt.Sprint(reply.Rows[0]["id"]) != strconv.FormatInt(id, 10) {
			r.fg.wrong++
			t.Errorf("read of counter row %d answered %v", id, reply.Rows)
		}
	}
}

// stopping marks node as told to stop: its replies from now on count in
// afterStop.
func (r *reads) stopping(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped[node] = true
}

// await returns once every node in nodes has answered a read, or reports
// which have not within the bound.
func (r *reads) await(t *testing.T, nodes []string, within time.Duration) {
	t.Helper()
	bound := time.After(within)
	for {
		var missing []string
		r.mu.Lock()
		for _, n := range nodes {
			if r.fg.byNode[n] == 0 {
				missing = append(missing, n)
			}
		}
		r.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-r.seen:
		case <-bound:
			t.Errorf("no read answered by %s within %s", strings.Join(missing, ", "), within)
			return
		}
	}
}

// wait waits for the readers to stop (their context ended) and returns
// what they saw.
func (r *reads) wait() readFigures {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fg
}
