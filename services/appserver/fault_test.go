//go:build faults

// Fault tests break real servers under load: they kill appserver
// processes, restart RabbitMQ and MariaDB, and SIGTERM a node, then count
// what was lost or applied twice. They stop and start the machine's own
// servers, so they are built only with -tags faults and run alone, after
// the other suites (make test does this); every server is running again
// when each test ends, even when it fails.
package main

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// proc is one appserver process.
type proc struct {
	name, http string
	cmd        *exec.Cmd
	logs       *bytes.Buffer
	exited     chan error
}

type fixture struct {
	s servers
	// amqpAddrs are the other nodes of amqpURL's RabbitMQ cluster
	// (BEDS_AMQP_ADDRESSES, client.Options.Addresses); none for the
	// machine's single RabbitMQ.
	amqpAddrs []string
	bin       string
	cfg       string // the config folder
	tpl       string
	db        *sql.DB
	procs     []*proc
}

func newFixture(t *testing.T, nodes int) *fixture {
	t.Helper()
	return newFixtureOn(t, nodes, testenv.AMQP(t), nil, "")
}

// newFixtureOn is newFixture with the appservers and the load's clients
// on the RabbitMQ at amqpURL and addrs (a cluster's other nodes), and
// extra added to the nodes' env file.
func newFixtureOn(t *testing.T, nodes int, amqpURL string, addrs []string, extra string) *fixture {
	t.Helper()
	f := &fixture{s: servers{amqpURL: amqpURL, mariaDSN: testenv.MariaDB(t), mongoURI: testenv.Mongo(t)}, amqpAddrs: addrs}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, testenv.ApplySQL(ctx, f.s.mariaDSN, filepath.Join("testdata", "ledger.sql"), filepath.Join("testdata", "counter.sql")))
	var err error
	f.db, err = sql.Open("mysql", f.s.mariaDSN)
	must(t, err)
	t.Cleanup(func() { f.db.Close() })
	// The tally template's key has no unique index on purpose (see
	// testdata/faults/tally_rec.toml), which the strict schema check would
	// refuse.
	f.cfg = configDir(t, "[templates]\ncheck = \"warn\"\n"+extra)
	f.tpl = t.TempDir()
	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), "templates", "*.toml"))
	faults, _ := filepath.Glob(filepath.Join("testdata", "faults", "*.toml"))
	files = append(files, faults...)
	for _, file := range files {
		b, err := os.ReadFile(file)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(f.tpl, filepath.Base(file)), b, 0o644))
	}
	f.bin = buildBinary(t)
	for i := 1; i <= nodes; i++ {
		f.start(t, fmt.Sprintf("fault-%d", i))
	}
	return f
}

func (f *fixture) start(t *testing.T, name string) *proc {
	t.Helper()
	p := &proc{name: name, http: freeAddr(t), logs: &bytes.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(f.bin)
	p.cmd.Env = append(os.Environ(),
		"BEDS_CONFIG_DIR="+f.cfg,
		"BEDS_TEMPLATE_DIR="+f.tpl, "BEDS_AMQP_URL="+f.s.amqpURL, "BEDS_MARIADB_DSN="+f.s.mariaDSN,
		"BEDS_MONGO_URI="+f.s.mongoURI, "BEDS_HTTP_ADDR="+p.http, "BEDS_NODE_NAME="+name, "BEDS_LOG_LEVEL=info",
		"BEDS_AMQP_ADDRESSES="+strings.Join(f.amqpAddrs, ","))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	must(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.logs.String())
		}
	})
	p.waitReady(t, 60*time.Second)
	f.procs = append(f.procs, p)
	return p
}

func (p *proc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s", p.name, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// figures is what a fault test reports.
type figures struct {
	sent, replied, attempts int64
	codes                   map[wire.Code]int64 // error replies then resent
	final                   map[wire.Code]int64 // error replies not resent: failures
	applied, duplicates     int64
	lost                    int64
	recovery                time.Duration
	ok                      []string // the event IDs answered ok (of the requests: a batch's own)
	// partial counts atomic batches seen with some of their writes
	// applied and others not: by the workload's watch while the load
	// ran, or in the count after it.
	partial int64
	// stall is the longest time without an ok reply from the start of
	// the fault to the end of the load: how long service stopped, as the
	// clients saw it.
	stall time.Duration
}

func (fg figures) String() string {
	codes := func(m map[wire.Code]int64) string {
		out := make([]string, 0, len(m))
		for c, n := range m {
			out = append(out, fmt.Sprintf("%s=%d", c, n))
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	return fmt.Sprintf("writes sent %d, replied ok %d, attempts %d, error replies [%s], final errors [%s], applied %d, duplicates %d, lost %d, partial batches %d, recovery %s, longest stall %s",
		fg.sent, fg.replied, fg.attempts, codes(fg.codes), codes(fg.final), fg.applied, fg.duplicates, fg.lost, fg.partial,
		fg.recovery.Round(time.Millisecond), fg.stall.Round(time.Millisecond))
}

// record writes *fg as this test's result (faulttable_test.go) when the
// test ends, passed or failed: fault names the fault and the load in the
// table of docs/guarantees.md, note follows the recovery time there.
func record(t *testing.T, fault, note string, fg *figures) {
	t.Helper()
	dir := resultsDir(t)
	t.Cleanup(func() {
		if t.Skipped() {
			return
		}
		r := faultResult{Test: t.Name(), Fault: fault, Sent: fg.sent, Replied: fg.replied, Attempts: fg.attempts,
			Resent: map[string]int64{}, Applied: fg.applied, Duplicates: fg.duplicates, Lost: fg.lost,
			Recovery: fg.recovery.Seconds(), RecoveryNote: note, Passed: !t.Failed(), Machine: thisMachine(), At: time.Now().UTC()}
		for c, n := range fg.codes {
			r.Resent[string(c)] = n
		}
		if len(fg.final) > 0 {
			r.Final = map[string]int64{}
			for c, n := range fg.final {
				r.Final[string(c)] = n
			}
		}
		if err := writeResult(dir, r); err != nil {
			t.Errorf("record the result: %v", err)
		}
	})
}

// workload is what a load sends: units of steps requests each, the steps
// of a unit one after the other (an update after the create it changes),
// every request with its own event ID. A request is one write, or a batch
// of items writes, item n under the child event ID E.n of the batch's E.
type workload struct {
	steps int
	// units is how many units the database was prepared for; 0 is no
	// limit.
	units int64
	// items is how many writes each request carries as a batch (op
	// batch); 0 sends each write alone.
	items int
	// atomic says every batch must apply all its writes or none: its
	// reply says atomic, and neither watch nor count ever sees a part.
	atomic bool
	// deadline is how long a request waits for its reply before it is
	// sent again (its expiration on the node); 0 is 15 s.
	deadline time.Duration
	write    func(unit int64, step int, event string) *wire.Request
	// count returns, per event ID of a write (E.n for a batch's items),
	// how many times the database shows that write applied.
	count func(t *testing.T, run string) map[string]int64
	// watch, when set, looks at the database once, in one consistent
	// read, and returns how many batches it saw with some but not all of
	// their writes applied; load calls it over and over while it runs.
	watch func(ctx context.Context, run string) (int64, error)
}

// writes returns the event IDs of the writes of the request sent under
// event: event itself, or event.1 to event.items for a batch.
func (w workload) writes(event string) []string {
	if w.items == 0 {
		return []string{event}
	}
	out := make([]string, w.items)
	for n := range out {
		out[n] = lineage.Child(event, n+1)
	}
	return out
}

// eventID names step step of unit unit of run: run-unit for one-step
// units, run-unit-step otherwise.
func (w workload) eventID(run string, unit int64, step int) string {
	if w.steps == 1 {
		return fmt.Sprintf("%s-%d", run, unit)
	}
	return fmt.Sprintf("%s-%d-%d", run, unit, step)
}

// ledger creates one ledger row per write (testdata/ledger.sql), whose ref
// is the write's event ID.
func (f *fixture) ledger() workload {
	return workload{steps: 1,
		write: func(unit int64, _ int, event string) *wire.Request {
			return &wire.Request{Template: "ledger", Op: wire.OpCreate,
				Data: []byte(fmt.Sprintf(`{"ref":%q,"amount":%d}`, event, unit))}
		},
		count: func(t *testing.T, run string) map[string]int64 {
			applied := map[string]int64{}
			rows, err := f.db.Query("SELECT led_ref, COUNT(*) FROM tbl_led WHERE led_ref LIKE ? GROUP BY led_ref", run+"-%")
			must(t, err)
			defer rows.Close()
			for rows.Next() {
				var ref string
				var n int64
				must(t, rows.Scan(&ref, &n))
				applied[ref] = n
			}
			must(t, rows.Err())
			return applied
		}}
}

// outcome is how one write of a load ended.
type outcome int

const (
	answered outcome = iota // ok
	refused                 // an error reply that is not resent (a failure)
	stop                    // no reply before the deadline, or the client failed: the worker stops
)

// unanswered marks a sent write with no reply yet.
const unanswered wire.Code = "(no reply)"

// load sends w's requests from clients clients with workers goroutines
// each: at least total of them, and on until the fault is over and a
// request has succeeded after it, so the fault always strikes mid-load. A
// request answered with a system error is sent again with its event ID
// until it is answered ok; any other error reply is a failure and ends its
// unit. fault runs once a third of total are answered; it returns when the
// fault is over, and the time from then to the next ok reply is the
// recovery time, and the longest time without an ok reply from the
// fault's start on is the stall. Meanwhile w's watch, if any, looks for batches partly
// applied. Then w counts in the database how often each write was applied.
// The figures count writes: a batch's items one by one.
func (f *fixture) load(t *testing.T, run string, total, clients, workers int, w workload, fault func()) figures {
	t.Helper()
	fg := figures{codes: map[wire.Code]int64{}, final: map[wire.Code]int64{}}
	var mu sync.Mutex
	sent := map[string]wire.Code{} // every write sent: "" once answered ok, else its final code
	var next, done atomic.Int64
	var healed atomic.Int64 // unix nanos when the fault ended
	var recovered atomic.Int64
	var lastOK int64 // unix nanos of the last ok reply since the fault began, under mu
	units := (int64(total) + int64(w.steps) - 1) / int64(w.steps)
	faultStarted := make(chan struct{})
	faultOver := make(chan struct{})
	go func() {
		<-faultStarted
		mu.Lock()
		lastOK = time.Now().UnixNano()
		mu.Unlock()
		fault()
		healed.Store(time.Now().UnixNano())
		close(faultOver)
	}()
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	writes := int64(len(w.writes(""))) // per request
	deadline := cmp.Or(w.deadline, 15*time.Second)
	// send sends one request until it is answered ok or fails.
	send := func(cl *client.Client, event string, req *wire.Request) outcome {
		mu.Lock()
		fg.sent += writes
		sent[event] = unanswered
		mu.Unlock()
		for ctx.Err() == nil {
			rctx, rcancel := context.WithTimeout(ctx, deadline)
			r, err := cl.Send(rctx, event, req)
			rcancel()
			mu.Lock()
			fg.attempts++
			mu.Unlock()
			if err == nil {
				if h := healed.Load(); h != 0 {
					recovered.CompareAndSwap(0, time.Now().UnixNano())
				}
				if w.items > 0 && (r.Atomic != w.atomic || len(r.Items) != w.items) {
					t.Errorf("batch %s: answered ok, atomic %t with %d items; want atomic %t with %d", event, r.Atomic, len(r.Items), w.atomic, w.items)
				}
				mu.Lock()
				if lastOK != 0 {
					now := time.Now().UnixNano()
					fg.stall = max(fg.stall, time.Duration(now-lastOK))
					lastOK = now
				}
				fg.replied += writes
				sent[event] = ""
				fg.ok = append(fg.ok, event)
				mu.Unlock()
				if done.Add(1) == int64(total/3) {
					once.Do(func() { close(faultStarted) })
				}
				return answered
			}
			var we *wire.Error
			if !errors.As(err, &we) {
				t.Errorf("write %s: %v", event, err)
				return stop
			}
			mu.Lock()
			if we.Code.Retryable() {
				fg.codes[we.Code]++
			} else {
				fg.final[we.Code]++
				sent[event] = we.Code
			}
			mu.Unlock()
			if !we.Code.Retryable() {
				t.Errorf("write %s: %v", event, err)
				return refused
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("write %s: no ok reply before the test's deadline", event)
		return stop
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	var looks int64
	if w.watch != nil {
		watching.Add(1)
		go func() {
			defer watching.Done()
			for watchCtx.Err() == nil {
				n, err := w.watch(watchCtx, run)
				if err != nil && watchCtx.Err() == nil {
					t.Errorf("%s: watch the database: %v", run, err)
					return
				}
				mu.Lock()
				looks++
				fg.partial += n
				mu.Unlock()
				select {
				case <-watchCtx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	defer func() {
		stopWatch()
		watching.Wait()
	}()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		cl, err := client.Dial(ctx, f.s.amqpURL, client.Options{Name: fmt.Sprintf("%s-client-%d", run, c), Addresses: f.amqpAddrs})
		must(t, err)
		defer cl.Close()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if next.Load() >= units && recovered.Load() != 0 {
						return
					}
					u := next.Add(1)
					if w.units > 0 && u > w.units {
						t.Errorf("%s: the load outran the %d units the database was prepared for", run, w.units)
						return
					}
				steps:
					for step := range w.steps {
						event := w.eventID(run, u, step)
						switch send(cl, event, w.write(u, step, event)) {
						case refused: // the unit's later steps depend on this one
							break steps
						case stop:
							return
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	stopWatch()
	watching.Wait()
	if w.watch != nil {
		t.Logf("%s: looked at the database %d times while the load ran, and saw a batch partly applied %d times", run, looks, fg.partial)
	}
	once.Do(func() { close(faultStarted) })
	<-faultOver
	if r, h := recovered.Load(), healed.Load(); r > h && h != 0 {
		fg.recovery = time.Duration(r - h)
	}
	applied := w.count(t, run)
	expected := map[string]bool{}
	for event := range sent {
		for _, write := range w.writes(event) {
			expected[write] = true
		}
	}
	for write, n := range applied {
		if !expected[write] {
			t.Errorf("%s: the database shows write %s applied %d times, which was never sent", run, write, n)
		}
	}
	var lost, twice, partial []string // examples, for the log
	for event, final := range sent {
		var some int // writes of the request applied at least once
		for _, write := range w.writes(event) {
			n := applied[write]
			fg.applied += n
			if n > 0 {
				some++
			}
			switch {
			case n == 0:
				fg.lost++
				lost = append(lost, write)
			case n > 1:
				fg.duplicates += n - 1
				twice = append(twice, fmt.Sprintf("%s applied %d times", write, n))
			case w.items == 0 && final != "" && final != unanswered:
				// Applied, yet answered as if not (a re-run finding its
				// own effect: not_found, conflict): it ran twice.
				fg.duplicates++
				twice = append(twice, fmt.Sprintf("%s applied, then answered %s", write, final))
			}
		}
		// Whatever its reply, or with none, an atomic batch applied all
		// its writes or none of them.
		if w.atomic && some != 0 && some != w.items {
			fg.partial++
			partial = append(partial, fmt.Sprintf("%s: %d of %d writes applied", event, some, w.items))
		}
	}
	sort.Strings(lost)
	sort.Strings(twice)
	sort.Strings(partial)
	t.Logf("%s: %s", run, fg)
	if len(lost) > 0 {
		t.Logf("%s: lost: %s", run, strings.Join(lost[:min(len(lost), 10)], ", "))
	}
	if len(twice) > 0 {
		t.Logf("%s: applied twice: %s", run, strings.Join(twice[:min(len(twice), 10)], "; "))
	}
	if len(partial) > 0 {
		t.Logf("%s: atomic batches partly applied: %s", run, strings.Join(partial[:min(len(partial), 10)], "; "))
	}
	if fg.duplicates != 0 || fg.lost != 0 || fg.replied != fg.sent {
		t.Errorf("%s: want every write replied and applied exactly once", run)
	}
	if fg.partial != 0 {
		t.Errorf("%s: %d times an atomic batch was seen partly applied, want all of its writes or none", run, fg.partial)
	}
	return fg
}

func TestFaultKillNode(t *testing.T) {
	f := newFixture(t, 2)
	victim := f.procs[0]
	var fg figures
	record(t, "`kill -9` one of two appservers, MariaDB creates", "(the other node serves)", &fg)
	fg = f.load(t, "kill9", 5000, 4, 16, f.ledger(), func() { f.kill(victim) })
}

// TestFaultKillUpdateDelete kills one of two appservers under updates and
// deletes on MariaDB. Each row is updated twice, then deleted, and every
// call of the row's procedures leaves an audit row with the row's update
// count (testdata/counter.sql), so the database shows how often each
// write was applied.
func TestFaultKillUpdateDelete(t *testing.T) {
	f := newFixture(t, 2)
	victim := f.procs[0]
	const total = 3000
	var fg figures
	record(t, "`kill -9` one of two appservers, MariaDB updates and deletes", "(the other node serves)", &fg)
	fg = f.load(t, "kill9ud", total, 4, 16, f.counter(t, total), func() { f.kill(victim) })
}

// TestFaultKillMongo kills one of two appservers under creates and updates
// on the MongoDB-wire server. Creates choose their key, which is not _id
// and has no unique index, so a create applied twice is two documents;
// each document is then updated twice, each update guarded by the step
// before it, so an update run twice finds nothing and answers not_found.
func TestFaultKillMongo(t *testing.T) {
	f := newFixture(t, 2)
	victim := f.procs[0]
	db := f.mongoDB(t)
	var fg figures
	record(t, "`kill -9` one of two appservers, MongoDB creates and updates", "(the other node serves)", &fg)
	// FerretDB's SQLite backend takes one writer at a time: 1,500 writes
	// from 64 workers took up to three minutes, some past the load's
	// deadline, on a busy 2-core machine; fewer, from fewer workers, show
	// the same fault in a third of the time.
	fg = f.load(t, "kill9mg", 900, 4, 6, tally(db), func() { f.kill(victim) })

	// Each write answered ok has its event record, without which a
	// redelivery would run it again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := db.Collection("beds_events").Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	must(t, err)
	recorded := map[string]int{}
	for cur.Next(ctx) {
		id, _ := cur.Current.Lookup("_id").StringValueOK()
		recorded[id]++
	}
	must(t, cur.Err())
	var missing int
	for _, event := range fg.ok {
		if recorded[event] != 1 {
			missing++
		}
	}
	t.Logf("beds_events: %d records, %d writes answered ok without exactly one", len(recorded), missing)
	if missing != 0 {
		t.Errorf("%d writes answered ok have no record in beds_events", missing)
	}
}

// TestFaultKillBatch kills one of two appservers under batches of 4
// creates, each batch under its own event ID and each of its writes under
// the child ID E.n, a resent batch under the same IDs. On one MariaDB
// store a batch is atomic: a reader watching the ledger while the load
// runs must never see part of a batch, and the batch a dead node had begun
// rolls back with its connection and is applied whole by the other node.
// Across stores (2 ledger rows on MariaDB, 2 tally documents on MongoDB)
// a batch is not atomic, and each write applies once under its own event.
// Either way the database must show every write of every batch applied
// exactly once, and every batch answered ok its records in beds_events.
func TestFaultKillBatch(t *testing.T) {
	const k = 4
	t.Run("atomic", func(t *testing.T) {
		f := newFixture(t, 2)
		var fg figures
		record(t, "`kill -9` one of two appservers mid-batch, batches of 4 MariaDB creates (atomic)", "(the other node serves)", &fg)
		w := f.ledgerBatch(k)
		fg = f.load(t, "kill9batch", 1500, 4, 8, w, func() { f.kill(f.procs[0]) })
		f.recorded(t, nil, "kill9batch", w, fg.ok)
	})
	t.Run("across stores", func(t *testing.T) {
		f := newFixture(t, 2)
		db := f.mongoDB(t)
		var fg figures
		record(t, "`kill -9` one of two appservers mid-batch, batches of 2 MariaDB and 2 MongoDB creates (across stores)", "(the other node serves)", &fg)
		w := f.acrossBatch(db, k)
		// A MongoDB write the dead node had claimed is taken over
		// ClaimGrace after the claim's deadline: a shorter deadline than
		// the load's 15 s keeps the test within a minute.
		w.deadline = 8 * time.Second
		fg = f.load(t, "kill9across", 240, 4, 4, w, func() { f.kill(f.procs[0]) })
		f.recorded(t, db, "kill9across", w, fg.ok)
	})
}

// recorded checks that every request of run answered ok (events) has the
// records in beds_events without which a redelivery would apply it again:
// each of its writes', and an atomic batch's own, on MariaDB or, when db
// is not nil, on MongoDB.
func (f *fixture) recorded(t *testing.T, db *mongo.Database, run string, w workload, events []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	have := map[string]bool{}
	rows, err := f.db.QueryContext(ctx, "SELECT evt_id FROM beds_events WHERE evt_id LIKE ?", run+"-%")
	must(t, err)
	defer rows.Close()
	for rows.Next() {
		var id string
		must(t, rows.Scan(&id))
		have[id] = true
	}
	must(t, rows.Err())
	if db != nil {
		cur, err := db.Collection("beds_events").Find(ctx, bson.D{{Key: "_id", Value: bson.Regex{Pattern: "^" + run + "-"}}},
			options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		must(t, err)
		for cur.Next(ctx) {
			id, _ := cur.Current.Lookup("_id").StringValueOK()
			have[id] = true
		}
		must(t, cur.Err())
	}
	var missing []string
	for _, event := range events {
		want := w.writes(event)
		if w.atomic {
			want = append(want, event)
		}
		for _, id := range want {
			if !have[id] {
				missing = append(missing, id)
			}
		}
	}
	sort.Strings(missing)
	t.Logf("%s: beds_events: %d records, %d missing for requests answered ok", run, len(have), len(missing))
	if len(missing) != 0 {
		t.Errorf("%s: %d event records missing for requests answered ok, such as %s", run, len(missing), strings.Join(missing[:min(len(missing), 10)], ", "))
	}
}

// kill sends p SIGKILL and waits for it to be gone.
func (f *fixture) kill(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// mongoDB connects to the test's MongoDB database.
func (f *fixture) mongoDB(t *testing.T) *mongo.Database {
	t.Helper()
	u, err := url.Parse(f.s.mongoURI)
	must(t, err)
	c, err := mongo.Connect(options.Client().ApplyURI(f.s.mongoURI))
	must(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(strings.TrimPrefix(u.Path, "/"))
}

// counter updates rows 1..units of testdata/counter.sql twice each, then
// deletes them: unit u is row u, made here. Every procedure call leaves an
// audit row holding the row's update count, so an update applied twice
// shows as a second audit row for its event and as a count one too high,
// and a delete applied after a lost update as a count one too low.
func (f *fixture) counter(t *testing.T, units int64) workload {
	t.Helper()
	_, err := f.db.Exec(fmt.Sprintf("INSERT INTO tbl_cnt (cnt_id) SELECT seq FROM seq_1_to_%d", units))
	must(t, err)
	w := workload{steps: 3, units: units}
	w.write = func(unit int64, step int, event string) *wire.Request {
		filter := []byte(fmt.Sprintf(`{"id":%d}`, unit))
		if step < 2 {
			return &wire.Request{Template: "counter", Op: wire.OpUpdate, Filter: filter,
				Data: []byte(fmt.Sprintf(`{"ref":%q}`, event))}
		}
		return &wire.Request{Template: "counter", Op: wire.OpDelete, Filter: filter}
	}
	w.count = func(t *testing.T, run string) map[string]int64 {
		rows, err := f.db.Query("SELECT log_op, log_row, log_ref, log_n FROM tbl_cnt_log")
		must(t, err)
		defer rows.Close()
		applied := map[string]int64{}
		var miscounted int
		for rows.Next() {
			var op string
			var row, n int64
			var ref sql.NullString
			must(t, rows.Scan(&op, &row, &ref, &n))
			switch op {
			case "update":
				applied[ref.String]++
				var unit int64
				var step int
				// The update of step s is the row's (s+1)th.
				if _, err := fmt.Sscanf(strings.TrimPrefix(ref.String, run+"-"), "%d-%d", &unit, &step); err != nil || unit != row || n != int64(step+1) {
					miscounted++
				}
			case "delete":
				applied[w.eventID(run, row, 2)]++
				if n != 2 {
					miscounted++
				}
			}
		}
		must(t, rows.Err())
		if miscounted != 0 {
			t.Errorf("%s: %d audit rows show a row updated other than once per update event", run, miscounted)
		}
		return applied
	}
	return w
}

// tally creates documents of the test-only "tally" template on MongoDB,
// key k<unit>, and updates each twice: update s sets step s where step is
// s-1. Counted in the database: documents per create (one), and an update
// is applied when its document reached its step.
func tally(db *mongo.Database) workload {
	w := workload{steps: 3}
	key := func(unit int64) string { return fmt.Sprintf("k%d", unit) }
	w.write = func(unit int64, step int, event string) *wire.Request {
		if step == 0 {
			return &wire.Request{Template: "tally", Op: wire.OpCreate,
				Data: []byte(fmt.Sprintf(`{"key":%q,"ev":%q,"step":0}`, key(unit), event))}
		}
		return &wire.Request{Template: "tally", Op: wire.OpUpdate,
			Filter: []byte(fmt.Sprintf(`{"key":%q,"step":%d}`, key(unit), step-1)),
			Data:   []byte(fmt.Sprintf(`{"step":%d,"by":%q}`, step, event))}
	}
	w.count = func(t *testing.T, run string) map[string]int64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cur, err := db.Collection("tallies").Find(ctx, bson.D{})
		must(t, err)
		type doc struct {
			Key  string `bson:"tly_key"`
			Ev   string `bson:"tly_ev"`
			Step int64  `bson:"tly_step"`
			By   string `bson:"tly_by"`
		}
		var docs []doc
		must(t, cur.All(ctx, &docs))
		byKey := map[string][]doc{}
		for _, d := range docs {
			byKey[d.Key] = append(byKey[d.Key], d)
		}
		applied := map[string]int64{}
		var odd int
		for k, ds := range byKey {
			var unit int64
			if _, err := fmt.Sscanf(k, "k%d", &unit); err != nil {
				t.Errorf("%s: a document with key %q", run, k)
				continue
			}
			create := w.eventID(run, unit, 0)
			applied[create] = int64(len(ds))
			top := int64(0)
			for _, d := range ds {
				top = max(top, d.Step)
			}
			for s := int64(1); s <= top; s++ {
				applied[w.eventID(run, unit, int(s))] = 1
			}
			for _, d := range ds {
				if d.Ev != create || d.Step != top || (top > 0 && d.By != w.eventID(run, unit, int(top))) {
					odd++
					t.Logf("%s: document %+v of %d with key %s", run, d, len(ds), k)
				}
			}
		}
		if odd != 0 {
			t.Errorf("%s: %d documents whose fields disagree with the writes sent to them", run, odd)
		}
		return applied
	}
	return w
}

// ledgerBatch sends batches of k ledger creates, all on one MariaDB store,
// so each batch runs in one transaction: item n of batch E creates the row
// whose ref is E.n, its own event ID. Its watch counts the batches of
// which one read of the ledger shows some rows but not all k.
func (f *fixture) ledgerBatch(k int) workload {
	l := f.ledger()
	w := workload{steps: 1, items: k, atomic: true, count: l.count}
	w.write = func(unit int64, _ int, event string) *wire.Request {
		req := &wire.Request{Op: wire.OpBatch, Batch: make([]wire.Request, k)}
		for n := range req.Batch {
			req.Batch[n] = *l.write(unit, 0, lineage.Child(event, n+1))
		}
		return req
	}
	w.watch = func(ctx context.Context, run string) (int64, error) {
		var n int64
		err := f.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM tbl_led WHERE led_ref LIKE ?
			GROUP BY SUBSTRING_INDEX(led_ref, '.', 1) HAVING COUNT(DISTINCT led_ref) <> ?) AS part`, run+"-%", k).Scan(&n)
		return n, err
	}
	return w
}

// acrossBatch sends batches of k creates that alternate between the
// stores, so no batch is atomic: odd items (E.1, E.3, ...) create ledger
// rows on MariaDB whose ref is the item's event ID, even items create
// tally documents on MongoDB whose key and ev are. Counted in the
// database: ledger rows per ref and documents per key.
func (f *fixture) acrossBatch(db *mongo.Database, k int) workload {
	l := f.ledger()
	w := workload{steps: 1, items: k}
	w.write = func(unit int64, _ int, event string) *wire.Request {
		req := &wire.Request{Op: wire.OpBatch, Batch: make([]wire.Request, k)}
		for n := range req.Batch {
			item := lineage.Child(event, n+1)
			if n%2 == 0 {
				req.Batch[n] = *l.write(unit, 0, item)
				continue
			}
			req.Batch[n] = wire.Request{Template: "tally", Op: wire.OpCreate,
				Data: []byte(fmt.Sprintf(`{"key":%q,"ev":%q,"step":0}`, item, item))}
		}
		return req
	}
	w.count = func(t *testing.T, run string) map[string]int64 {
		applied := l.count(t, run)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cur, err := db.Collection("tallies").Find(ctx, bson.D{})
		must(t, err)
		var docs []struct {
			Key string `bson:"tly_key"`
			Ev  string `bson:"tly_ev"`
		}
		must(t, cur.All(ctx, &docs))
		for _, d := range docs {
			applied[d.Key]++
			if d.Ev != d.Key {
				t.Errorf("%s: document with key %s written by event %s", run, d.Key, d.Ev)
			}
		}
		return applied
	}
	return w
}

func TestFaultRabbitMQRestart(t *testing.T) {
	f := newFixture(t, 2)
	t.Cleanup(func() { ctl(t, "rabbitmqctl", "start_app") })
	var fg figures
	record(t, "RabbitMQ `stop_app`, 1 s, `start_app`", "after RabbitMQ is back", &fg)
	fg = f.load(t, "mqrestart", 2000, 4, 8, f.ledger(), func() {
		ctl(t, "rabbitmqctl", "stop_app")
		time.Sleep(time.Second)
		ctl(t, "rabbitmqctl", "start_app")
	})
	if fg.recovery == 0 || fg.recovery > 10*time.Second {
		t.Errorf("recovery %s, want within 10s", fg.recovery)
	}
	for _, p := range f.procs {
		p.waitReady(t, 10*time.Second)
	}
}

func TestFaultDatabaseRestart(t *testing.T) {
	f := newFixture(t, 1)
	t.Cleanup(func() { startMariaDB(t) })
	var fg figures
	record(t, "MariaDB stopped 3 s, started", "after MariaDB answers", &fg)
	fg = f.load(t, "dbrestart", 2000, 2, 8, f.ledger(), func() {
		ctl(t, "start-stop-daemon", "--stop", "--quiet", "--retry", "30", "--exec", "/usr/sbin/mariadbd")
		time.Sleep(3 * time.Second)
		startMariaDB(t)
	})
	if fg.codes[wire.CodeUnavailable] == 0 {
		t.Errorf("no unavailable replies during the outage: %s", fg)
	}
	f.procs[0].waitReady(t, 15*time.Second)
}

func TestFaultSigterm(t *testing.T) {
	f := newFixture(t, 2)
	victim := f.procs[0]
	var fg figures
	record(t, "SIGTERM one of two appservers, MariaDB creates", "(the node drained and exited 0)", &fg)
	fg = f.load(t, "sigterm", 3000, 4, 8, f.ledger(), func() {
		_ = victim.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-victim.exited; err != nil {
			t.Errorf("%s after SIGTERM: %v", victim.name, err)
		}
	})
	if !strings.Contains(victim.logs.String(), "drained") {
		t.Errorf("%s did not report a drain:\n%s", victim.name, victim.logs.String())
	}
}

func ctl(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// startMariaDB starts the machine's MariaDB (as the machine's docs say)
// and waits until it answers.
func startMariaDB(t *testing.T) {
	t.Helper()
	_ = os.MkdirAll("/run/mysqld", 0o755)
	_ = exec.Command("chown", "mysql:mysql", "/run/mysqld").Run()
	_ = exec.Command("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd", "--", "--user=mysql").Run()
	deadline := time.Now().Add(60 * time.Second)
	for exec.Command("mariadb-admin", "-uroot", "-h127.0.0.1", "ping").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("MariaDB did not come back within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFaultMemoryAlarm sets off RabbitMQ's memory alarm, which blocks
// every publishing connection: a client's request must end at its
// deadline instead of hanging, and everything must work again once the
// alarm clears.
func TestFaultMemoryAlarm(t *testing.T) {
	f := newFixture(t, 1)
	out, err := exec.Command("rabbitmqctl", "-q", "eval", "vm_memory_monitor:get_vm_memory_high_watermark().").Output()
	must(t, err)
	watermark := strings.TrimSpace(string(out))
	if _, perr := strconv.ParseFloat(watermark, 64); perr != nil {
		t.Skipf("memory watermark %q is not a plain ratio; not changing it", watermark)
	}
	t.Cleanup(func() { ctl(t, "rabbitmqctl", "set_vm_memory_high_watermark", watermark) })
	fg := figures{codes: map[wire.Code]int64{}, final: map[wire.Code]int64{}}
	record(t, "RabbitMQ memory alarm", "after the alarm cleared", &fg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, f.s.amqpURL, client.Options{Name: "alarm"})
	must(t, err)
	defer c.Close()
	write := func(event string, within time.Duration) error {
		rctx, rcancel := context.WithTimeout(ctx, within)
		defer rcancel()
		_, err := c.Send(rctx, event, &wire.Request{Template: "ledger", Op: wire.OpCreate,
			Data: []byte(fmt.Sprintf(`{"ref":%q}`, event))})
		fg.attempts++
		var we *wire.Error
		switch {
		case err == nil:
			fg.replied++
		case errors.As(err, &we):
			fg.codes[we.Code]++
		}
		return err
	}
	fg.sent++
	must(t, write("alarm-0", 10*time.Second))

	ctl(t, "rabbitmqctl", "set_vm_memory_high_watermark", "0.0000001")
	time.Sleep(2 * time.Second) // the alarm is raised on RabbitMQ's next memory check
	start := time.Now()
	fg.sent++
	err = write("alarm-1", 2*time.Second)
	took := time.Since(start)
	var we *wire.Error
	if err == nil || !errors.As(err, &we) || !we.Code.Retryable() {
		t.Fatalf("write under a memory alarm: %v, want timeout or unavailable", err)
	}
	if took > 4*time.Second {
		t.Fatalf("write under a memory alarm took %s with a 2s deadline", took)
	}
	t.Logf("under the alarm: %s after %s", we.Code, took.Round(time.Millisecond))

	ctl(t, "rabbitmqctl", "set_vm_memory_high_watermark", watermark)
	start = time.Now()
	for {
		if err := write("alarm-1", 5*time.Second); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("no write succeeded within 30s of the alarm clearing")
		}
	}
	fg.recovery = time.Since(start)
	t.Logf("recovered %s after the alarm cleared", fg.recovery.Round(time.Millisecond))
	var rows, distinct int64
	must(t, f.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT led_ref) FROM tbl_led WHERE led_ref LIKE 'alarm-%'").Scan(&rows, &distinct))
	fg.applied, fg.duplicates, fg.lost = rows, rows-distinct, fg.sent-distinct
	if rows != 2 {
		t.Fatalf("%d ledger rows, want 2 (alarm-0 and alarm-1 once)", rows)
	}
}
