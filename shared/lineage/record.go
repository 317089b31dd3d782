package lineage

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

// Log stores lineage records. Implementations are safe for concurrent use;
// package lineagetest checks one against what is stated here.
type Log interface {
	// AppendLineage stores records; a record whose Event is already stored
	// replaces it (a redelivered request records its latest outcome).
	// Records later in the slice win over earlier ones for the same Event.
	// Started is kept to the microsecond, in UTC. A record whose Event or
	// Parent is not Valid fails the call, naming the record's index,
	// before anything is stored; no records is not an error.
	// It does not keep records after it returns: the caller reuses them.
	AppendLineage(ctx context.Context, records []wire.Lineage) error
	// LineageTree returns the record of event and of every event below it
	// by Parent links, at most max records (breadth first from event,
	// within a level by Started) and at most MaxDepth levels below event,
	// each event once however the links loop, without Children filled;
	// none when event is unknown. max below 1 is an error.
	LineageTree(ctx context.Context, event string, max int) ([]wire.Lineage, error)
}

// MaxDepth is how many levels below its event a lineage tree is followed
// at most.
const MaxDepth = 64

// Defaults for RecorderConfig fields left zero.
const (
	DefaultQueue    = 10000
	DefaultBatch    = 256
	DefaultInterval = 100 * time.Millisecond
)

// Bounds of the Recorder's writes.
const (
	// WriteTimeout bounds one write of a batch while Run runs.
	WriteTimeout = 5 * time.Second
	// DrainTimeout bounds what Run does after its context ends.
	DrainTimeout = 5 * time.Second
	// warnEvery is how often a kind of drop is logged at most.
	warnEvery = time.Minute
)

// RecorderConfig sizes a Recorder.
type RecorderConfig struct {
	// Queue is how many records wait to be written at most (default
	// 10000); a record that finds the queue full is dropped.
	Queue int
	// Batch is how many records one write stores at most (default 256).
	Batch int
	// Interval is the longest a record waits for its batch to fill before
	// the partial batch is written (default 100ms).
	Interval time.Duration
}

// Recorder writes records to a Log in the background, in batches, without
// making a request wait: Record never blocks. Run owns the writing; the
// package documentation states what a Recorder guarantees and what it
// drops.
type Recorder struct {
	log    Log
	cfg    RecorderConfig
	logger *slog.Logger
	queue  chan wire.Lineage

	// mu orders Record's sends against the end of Run: Record holds it
	// shared while it sends, Run holds it alone to set closed, after which
	// nothing more enters the queue.
	mu     sync.RWMutex
	closed bool

	started atomic.Bool // Run was called
	ready   atomic.Bool // Run is writing and not yet draining
	dropped atomic.Uint64
	written atomic.Uint64

	full, failed, invalid, late warner
}

// NewRecorder returns a Recorder writing to log; zero fields of cfg take
// their defaults, and a nil logger is slog.Default(). Nothing is written
// until Run runs.
func NewRecorder(log Log, cfg RecorderConfig, logger *slog.Logger) *Recorder {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Recorder{log: log, cfg: cfg, logger: logger, queue: make(chan wire.Lineage, cfg.Queue)}
}

// Record queues rec to be written; its Children are ignored. It never
// waits: when the queue is full, after Run has returned, or when rec's
// Event or Parent is not a valid ID (see Valid), rec is dropped and
// counted, and a warning is logged at most once a minute for each of
// these reasons.
func (r *Recorder) Record(rec wire.Lineage) {
	if !Valid(rec.Event) || (rec.Parent != "" && !Valid(rec.Parent)) {
		r.drop(&r.invalid, 1, "lineage record dropped: its event or parent is not a valid event ID")
		return
	}
	rec.Children = nil
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		r.drop(&r.late, 1, "lineage record dropped: the recorder has stopped")
		return
	}
	select {
	case r.queue <- rec:
		r.mu.RUnlock()
		return
	default:
	}
	r.mu.RUnlock()
	r.drop(&r.full, 1, "lineage records dropped: the queue is full (the lineage store is slow or down, or the node records more than it can write)")
}

// Dropped returns how many records were dropped so far, for every reason.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Written returns how many records were written so far.
func (r *Recorder) Written() uint64 { return r.written.Load() }

// Name identifies the recorder in logs.
func (r *Recorder) Name() string { return "lineage" }

// Ready reports whether Run is writing: it is, from its start until its
// context ends, whether or not the Log answers (a Log that fails never
// makes a node unready).
func (r *Recorder) Ready() bool { return r.ready.Load() }

// Run writes batches until ctx ends, then drains as the package
// documentation says and returns nil. It returns an error only when it is
// called a second time.
func (r *Recorder) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("lineage recorder: Run called twice")
	}
	r.ready.Store(true)
	batch := make([]wire.Lineage, 0, r.cfg.Batch)
	timer := time.NewTimer(r.cfg.Interval)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time // the timer's channel while a partial batch waits
	for {
		select {
		case <-ctx.Done():
			r.ready.Store(false)
			r.drain(ctx, batch)
			return nil
		case rec := <-r.queue:
			batch = append(batch, rec)
			switch {
			case len(batch) >= r.cfg.Batch:
				timer.Stop()
				due = nil
				batch = r.write(ctx, WriteTimeout, batch)
			case len(batch) == 1:
				timer.Reset(r.cfg.Interval)
				due = timer.C
			}
		case <-due:
			due = nil
			batch = r.write(ctx, WriteTimeout, batch)
		}
	}
}

// drain runs once ctx has ended: it takes records while they still come,
// until the queue has been empty for one Interval or half of DrainTimeout
// has passed, then closes the queue and writes what is left, all within
// DrainTimeout.
func (r *Recorder) drain(ctx context.Context, batch []wire.Lineage) {
	deadline := time.Now().Add(DrainTimeout)
	end := time.NewTimer(DrainTimeout / 2)
	defer end.Stop()
	quiet := time.NewTimer(r.cfg.Interval)
	defer quiet.Stop()
linger:
	for {
		select {
		case rec := <-r.queue:
			batch = append(batch, rec)
			if len(batch) >= r.cfg.Batch {
				batch = r.write(ctx, time.Until(deadline), batch)
			}
			quiet.Reset(r.cfg.Interval)
		case <-quiet.C:
			break linger
		case <-end.C:
			break linger
		}
	}
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	// Nothing enters the queue any more: what is in it is all there is.
	for {
		select {
		case rec := <-r.queue:
			batch = append(batch, rec)
			if len(batch) >= r.cfg.Batch {
				batch = r.write(ctx, time.Until(deadline), batch)
			}
			continue
		default:
		}
		break
	}
	r.write(ctx, time.Until(deadline), batch)
}

// write stores batch within timeout, whether or not ctx has ended, and
// returns batch emptied for reuse. A failed write drops the
// batch: it is counted and logged, never retried.
func (r *Recorder) write(ctx context.Context, timeout time.Duration, batch []wire.Lineage) []wire.Lineage {
	if len(batch) == 0 {
		return batch
	}
	err := context.DeadlineExceeded
	if timeout > 0 {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		err = r.log.AppendLineage(wctx, batch)
		cancel()
	}
	if err != nil {
		// The error is the store's; the adapters' errors carry no DSN or
		// password.
		r.drop(&r.failed, uint64(len(batch)), "lineage records dropped: writing them failed", "err", err)
	} else {
		r.written.Add(uint64(len(batch)))
	}
	clear(batch) // drop references to the records' strings
	return batch[:0]
}

// drop counts n dropped records and logs msg if its warner allows.
func (r *Recorder) drop(w *warner, n uint64, msg string, args ...any) {
	r.dropped.Add(n)
	if since, ok := w.note(n, time.Now()); ok {
		r.logger.Warn(msg, append(args, "dropped", since, "dropped_total", r.dropped.Load())...)
	}
}

// warner allows one warning a minute for one reason, and counts what was
// dropped for that reason since the last warning.
type warner struct {
	last    atomic.Int64 // unix nanoseconds of the last warning; 0: none yet
	pending atomic.Uint64
}

// note adds n and reports whether a warning is due now; if it is, it
// returns the count since the last warning and starts counting afresh.
func (w *warner) note(n uint64, now time.Time) (uint64, bool) {
	w.pending.Add(n)
	last := w.last.Load()
	if last != 0 && now.UnixNano()-last < int64(warnEvery) {
		return 0, false
	}
	if !w.last.CompareAndSwap(last, now.UnixNano()) {
		return 0, false // another caller warns
	}
	return w.pending.Swap(0), true
}
