package lineage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

// memLog is a Log in memory. While block is open, AppendLineage waits for
// it to close (or for its context); while fail is set, it fails.
type memLog struct {
	mu      sync.Mutex
	recs    map[string]wire.Lineage
	order   []string // events in the order they were first stored
	batches []int    // size of each successful write
	block   chan struct{}
	fail    error
}

func newMemLog() *memLog { return &memLog{recs: map[string]wire.Lineage{}} }

func (l *memLog) AppendLineage(ctx context.Context, records []wire.Lineage) error {
	l.mu.Lock()
	block, fail := l.block, l.fail
	l.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range records {
		if _, ok := l.recs[r.Event]; !ok {
			l.order = append(l.order, r.Event)
		}
		l.recs[r.Event] = r
	}
	l.batches = append(l.batches, len(records))
	return nil
}

// LineageTree follows Parent links breadth first, as the stores do.
func (l *memLog) LineageTree(ctx context.Context, event string, max int) ([]wire.Lineage, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.recs[event]
	if !ok {
		return nil, nil
	}
	out := []wire.Lineage{r}
	seen := map[string]bool{event: true}
	level := []string{event}
	for depth := 0; depth < MaxDepth && len(level) > 0 && len(out) < max; depth++ {
		var next []string
		for _, e := range l.order {
			c := l.recs[e]
			if !seen[e] && slices.Contains(level, c.Parent) && len(out) < max {
				seen[e] = true
				out = append(out, c)
				next = append(next, e)
			}
		}
		level = next
	}
	return out, nil
}

func (l *memLog) snapshot() (events []string, batches []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order), slices.Clone(l.batches)
}

func (l *memLog) get(event string) wire.Lineage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recs[event]
}

// syncBuffer is a log destination the recorder may write from any
// goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func rec(event string) wire.Lineage {
	return wire.Lineage{Event: event, Op: wire.OpRead, Outcome: "ok", Started: time.Now()}
}

// start runs r until the returned stop is called; stop waits for Run to
// return and fails the test if it returned an error.
func start(t *testing.T, r *Recorder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestRecorderBatchesBySize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		r := NewRecorder(log, RecorderConfig{Queue: 100, Batch: 3, Interval: time.Hour}, nil)
		stop := start(t, r)
		for i := range 7 {
			r.Record(rec(fmt.Sprintf("E%d", i)))
		}
		synctest.Wait()
		events, batches := log.snapshot()
		if !slices.Equal(batches, []int{3, 3}) || len(events) != 6 {
			t.Fatalf("before the interval: batches %v, events %v; want two full batches", batches, events)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		events, batches = log.snapshot()
		if !slices.Equal(batches, []int{3, 3, 1}) {
			t.Fatalf("after the interval: batches %v, want [3 3 1]", batches)
		}
		want := []string{"E0", "E1", "E2", "E3", "E4", "E5", "E6"}
		if !slices.Equal(events, want) {
			t.Errorf("events %v, want them in recorded order %v", events, want)
		}
		stop()
		if r.Written() != 7 || r.Dropped() != 0 {
			t.Errorf("written %d dropped %d, want 7 and 0", r.Written(), r.Dropped())
		}
	})
}

func TestRecorderBatchesByInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		r := NewRecorder(log, RecorderConfig{Batch: 100, Interval: 100 * time.Millisecond}, slog.New(slog.DiscardHandler))
		stop := start(t, r)
		defer stop()
		r.Record(rec("A"))
		time.Sleep(60 * time.Millisecond)
		r.Record(rec("B")) // joins A's batch: the interval runs from A
		time.Sleep(39 * time.Millisecond)
		synctest.Wait()
		if _, batches := log.snapshot(); len(batches) != 0 {
			t.Fatalf("written after 99ms: %v", batches)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if _, batches := log.snapshot(); !slices.Equal(batches, []int{2}) {
			t.Fatalf("after 100ms: batches %v, want [2]", batches)
		}
		// An idle recorder writes nothing; the next record starts a new
		// interval.
		time.Sleep(time.Second)
		r.Record(rec("C"))
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if _, batches := log.snapshot(); !slices.Equal(batches, []int{2, 1}) {
			t.Fatalf("batches %v, want [2 1]", batches)
		}
	})
}

func TestRecorderDropsWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		log.block = make(chan struct{})
		var out syncBuffer
		r := NewRecorder(log, RecorderConfig{Queue: 4, Batch: 1, Interval: time.Millisecond}, slog.New(slog.NewTextHandler(&out, nil)))
		stop := start(t, r)
		r.Record(rec("E0"))
		synctest.Wait() // Run holds E0, blocked in the write
		for i := 1; i <= 7; i++ {
			r.Record(rec(fmt.Sprintf("E%d", i))) // E1..E4 fill the queue
		}
		if got := r.Dropped(); got != 3 {
			t.Fatalf("dropped %d, want 3", got)
		}
		if n := strings.Count(out.String(), "queue is full"); n != 1 {
			t.Errorf("%d queue-full warnings, want 1:\n%s", n, out.String())
		}
		if !strings.Contains(out.String(), "dropped=1 ") {
			t.Errorf("the first warning should count the first drop:\n%s", out.String())
		}
		// E0's write times out: E0 is dropped too, and Run writes E1 next.
		time.Sleep(WriteTimeout)
		synctest.Wait()
		log.mu.Lock()
		close(log.block)
		log.block = nil
		log.mu.Unlock()
		synctest.Wait()
		events, _ := log.snapshot()
		if !slices.Equal(events, []string{"E1", "E2", "E3", "E4"}) {
			t.Errorf("stored %v, want the queued E1..E4", events)
		}
		if r.Dropped() != 4 || r.Written() != 4 {
			t.Errorf("dropped %d written %d, want 4 and 4", r.Dropped(), r.Written())
		}
		// Drops within the minute after a warning are counted, not logged;
		// the first drop after it warns with the count since the last.
		time.Sleep(time.Minute)
		log.mu.Lock()
		log.block = make(chan struct{})
		log.mu.Unlock()
		r.Record(rec("E10"))
		synctest.Wait() // Run holds E10, blocked in the write
		for i := 11; i <= 15; i++ {
			r.Record(rec(fmt.Sprintf("E%d", i))) // E15 finds the queue full
		}
		if n := strings.Count(out.String(), "queue is full"); n != 2 {
			t.Errorf("%d queue-full warnings, want 2:\n%s", n, out.String())
		}
		if !strings.Contains(out.String(), "dropped=3 ") {
			t.Errorf("the second warning should count E6, E7 and E15:\n%s", out.String())
		}
		close(log.block)
		stop()
	})
}

func TestRecorderWriteFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		log.fail = errors.New("table beds_lineage is missing")
		var out syncBuffer
		r := NewRecorder(log, RecorderConfig{Batch: 2, Interval: time.Second}, slog.New(slog.NewTextHandler(&out, nil)))
		stop := start(t, r)
		for _, e := range []string{"A", "B", "C", "D"} {
			r.Record(rec(e))
		}
		synctest.Wait()
		if r.Dropped() != 4 || r.Written() != 0 {
			t.Errorf("dropped %d written %d, want 4 and 0", r.Dropped(), r.Written())
		}
		if n := strings.Count(out.String(), "writing them failed"); n != 1 || !strings.Contains(out.String(), "beds_lineage is missing") {
			t.Errorf("want one warning naming the cause:\n%s", out.String())
		}
		// The store comes back: nothing is retried, new records are written.
		log.mu.Lock()
		log.fail = nil
		log.mu.Unlock()
		r.Record(rec("E"))
		time.Sleep(time.Second)
		synctest.Wait()
		if events, _ := log.snapshot(); !slices.Equal(events, []string{"E"}) {
			t.Errorf("stored %v, want [E]", events)
		}
		if !r.Ready() {
			t.Error("a failing log made the recorder unready")
		}
		stop()
	})
}

func TestRecorderDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		r := NewRecorder(log, RecorderConfig{Batch: 100, Interval: 100 * time.Millisecond}, slog.New(slog.DiscardHandler))
		if r.Ready() {
			t.Error("ready before Run")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()
		if !r.Ready() {
			t.Error("not ready while running")
		}
		for _, e := range []string{"A", "B", "C"} {
			r.Record(rec(e))
		}
		cancel()
		began := time.Now()
		synctest.Wait()
		if r.Ready() {
			t.Error("ready while draining")
		}
		// Brokers finishing what they hold record while Run drains: each
		// record within one interval of the last keeps it taking them.
		time.Sleep(50 * time.Millisecond)
		r.Record(rec("D"))
		time.Sleep(99 * time.Millisecond)
		r.Record(rec("E"))
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if d := time.Since(began); d != 249*time.Millisecond {
			t.Errorf("Run returned %v after its context ended, want 249ms (quiet for one interval after E)", d)
		}
		events, _ := log.snapshot()
		if !slices.Equal(events, []string{"A", "B", "C", "D", "E"}) {
			t.Errorf("stored %v, want A..E", events)
		}
		if r.Dropped() != 0 {
			t.Errorf("dropped %d", r.Dropped())
		}
		// After Run: dropped and counted, never blocking.
		for range 20000 {
			r.Record(rec("late"))
		}
		if r.Dropped() != 20000 {
			t.Errorf("dropped %d after Run, want 20000", r.Dropped())
		}
		if err := r.Run(context.Background()); err == nil {
			t.Error("a second Run succeeded")
		}
	})
}

// With a long interval, the drain stops taking records at half of
// DrainTimeout and writes what it holds.
func TestRecorderDrainLongInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		r := NewRecorder(log, RecorderConfig{Batch: 100, Interval: time.Hour}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		r.Record(rec("A"))
		r.Record(rec("B"))
		synctest.Wait()
		cancel()
		began := time.Now()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(began); d != DrainTimeout/2 {
			t.Errorf("Run returned after %v, want %v", d, DrainTimeout/2)
		}
		if events, _ := log.snapshot(); !slices.Equal(events, []string{"A", "B"}) {
			t.Errorf("stored %v", events)
		}
	})
}

// A drain that cannot finish (the log hangs) gives up after DrainTimeout
// and counts what it could not write.
func TestRecorderDrainBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		log.block = make(chan struct{})
		r := NewRecorder(log, RecorderConfig{Batch: 2, Interval: time.Hour}, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		for _, e := range []string{"A", "B", "C"} {
			r.Record(rec(e))
		}
		synctest.Wait() // A B in a write that hangs, C queued
		cancel()
		began := time.Now()
		time.Sleep(WriteTimeout) // the hung write ends
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(began); d > WriteTimeout+DrainTimeout {
			t.Errorf("Run took %v after its context ended", d)
		}
		if r.Dropped() != 3 {
			t.Errorf("dropped %d, want 3", r.Dropped())
		}
		close(log.block)
	})
}

func TestRecorderRefusesInvalid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		var out syncBuffer
		r := NewRecorder(log, RecorderConfig{Interval: time.Millisecond}, slog.New(slog.NewTextHandler(&out, nil)))
		stop := start(t, r)
		long := strings.Repeat("x", MaxLen+1)
		for _, bad := range []wire.Lineage{
			{Event: ""},
			{Event: long},
			{Event: "has space"},
			{Event: "ok", Parent: long},
			{Event: "ok", Parent: "bad\x00"},
		} {
			r.Record(bad)
		}
		good := rec("G")
		good.Parent = "P"
		good.Children = []*wire.Lineage{{Event: "child"}}
		r.Record(good)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		stop()
		if r.Dropped() != 5 || r.Written() != 1 {
			t.Errorf("dropped %d written %d, want 5 and 1", r.Dropped(), r.Written())
		}
		if got := log.get("G"); got.Parent != "P" || got.Children != nil {
			t.Errorf("stored %+v: want the parent and no children", got)
		}
		if n := strings.Count(out.String(), "not a valid event ID"); n != 1 {
			t.Errorf("%d warnings, want 1:\n%s", n, out.String())
		}
	})
}

// Every record is either written or counted as dropped, whatever the
// interleaving of Record with Run's end (run with -race).
func TestRecorderAccountsForEveryRecord(t *testing.T) {
	log := newMemLog()
	r := NewRecorder(log, RecorderConfig{Queue: 64, Batch: 8, Interval: time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	const writers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Record(rec(fmt.Sprintf("W%d.%d", w, i)))
				if w == 0 && i == each/2 {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	events, _ := log.snapshot()
	if got := r.Written() + r.Dropped(); got != writers*each || r.Written() != uint64(len(events)) {
		t.Errorf("written %d + dropped %d = %d, want %d; stored %d", r.Written(), r.Dropped(), got, writers*each, len(events))
	}
}

// A record for an event already stored replaces it: the latest wins.
func TestRecorderLatestWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newMemLog()
		r := NewRecorder(log, RecorderConfig{Batch: 2, Interval: time.Millisecond}, nil)
		stop := start(t, r)
		first := rec("E")
		first.Outcome = "unavailable"
		r.Record(first)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		again := rec("E")
		again.Outcome = "ok"
		r.Record(again)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		stop()
		if got := log.get("E").Outcome; got != "ok" {
			t.Errorf("outcome %q, want the latest, ok", got)
		}
	})
}
