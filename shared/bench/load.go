package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beds-project/beds/shared/wire"
)

// load is one run of the load generator against one target: clients
// goroutines sending requests back to back, each waiting for its reply,
// until the duration passed or the request count is used up, or no
// request can be made (a Delete with no record left to delete).
type load struct {
	target   Target
	picker   picker
	work     *Workload
	clients  int
	duration time.Duration // used when requests is 0
	requests int64
	tag      string // unique per run: makes create emails unique
	seed     uint64
	// rate paces the run: requests per second across all clients, the
	// k-th (from 0) sent no earlier than k/rate after the start; 0 sends
	// each client's next request as soon as its reply is in.
	rate float64

	done atomic.Int64 // completed requests, for the progress bar
	errs atomic.Int64

	stopOnce sync.Once
	stopErr  error // why a client could not make its next request
}

// loadResult is what one run measured.
type loadResult struct {
	hist    Histogram
	ops     map[Op]*Histogram
	errors  map[string]int64
	n       int64
	elapsed time.Duration
	// err is why the run stopped before its end: a client could not make
	// its next request (errUsedUp). What it measured is not a full run.
	err error
}

// Error codes of the load generator's own checks of a reply that is ok.
const (
	// CodeEmpty counts a point read (alone, in a batch or with include)
	// that found no record, or a delete that did not delete exactly one:
	// the seeded key was not there (a baseline pointed at another
	// database than the node's).
	CodeEmpty = "empty"
	// CodeItems counts a batch reply without one item per request.
	CodeItems = "items"
	// CodeChildren counts an include read whose record did not carry
	// exactly its seeded children under Relation.
	CodeChildren = "children"
)

func (l *load) run(ctx context.Context) *loadResult {
	var issued, paced atomic.Int64
	deadline := time.Now().Add(l.duration)
	results := make([]*loadResult, l.clients)
	// Requests outlive an interrupt: it stops new requests, and those in
	// flight are answered.
	reqCtx := context.WithoutCancel(ctx)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &loadResult{ops: map[Op]*Histogram{}, errors: map[string]int64{}}
			results[i] = res
			r := rand.New(rand.NewPCG(l.seed, uint64(i)))
			tag := l.tag + "." + strconv.Itoa(i)
			for n := int64(1); ; n++ {
				if l.requests > 0 {
					if issued.Add(1) > l.requests {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				if l.rate > 0 {
					at := start.Add(slot(paced.Add(1)-1, l.rate))
					if l.requests == 0 && !at.Before(deadline) {
						return
					}
					if !sleepUntil(ctx, at) {
						return
					}
				}
				if ctx.Err() != nil {
					return
				}
				op := l.picker.pick(r)
				key, body, err := l.work.body(op, r, tag, n)
				if err != nil {
					// The others stop at their next request too:
					// nothing is left for them either.
					l.stopOnce.Do(func() { l.stopErr = err })
					return
				}
				t0 := time.Now()
				reply, err := l.target.Do(reqCtx, key, body)
				took := time.Since(t0)
				res.hist.Record(took)
				h := res.ops[op]
				if h == nil {
					h = &Histogram{}
					res.ops[op] = h
				}
				h.Record(took)
				res.n++
				l.done.Add(1)
				if code := l.work.errorCode(op, reply, err); code != "" {
					res.errors[code]++
					l.errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	total := &loadResult{ops: map[Op]*Histogram{}, errors: map[string]int64{}, elapsed: time.Since(start), err: l.stopErr}
	for _, r := range results {
		total.hist.Merge(&r.hist)
		total.n += r.n
		for op, h := range r.ops {
			if total.ops[op] == nil {
				total.ops[op] = &Histogram{}
			}
			total.ops[op].Merge(h)
		}
		for c, n := range r.errors {
			total.errors[c] += n
		}
	}
	return total
}

// slot is when, after the start of a run paced at rate requests per
// second, its k-th request (from 0) is due.
func slot(k int64, rate float64) time.Duration {
	return time.Duration(float64(k) / rate * float64(time.Second))
}

// sleepUntil waits until t; it returns false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errorCode names a failed request's error: its contract code (a batch's:
// the first failed item's), one of the codes above for a reply that is ok
// but wrong, "canceled" or "client" for failures without a code. It is ""
// for a success.
func (w *Workload) errorCode(op Op, reply *wire.Reply, err error) string {
	if err != nil {
		var we *wire.Error
		switch {
		case errors.As(err, &we):
			return string(we.Code)
		case errors.Is(err, context.Canceled):
			return "canceled"
		}
		return "client"
	}
	switch op {
	case PointRead:
		if reply == nil || len(reply.Rows) != 1 {
			return CodeEmpty
		}
	case Batch:
		if reply == nil || len(reply.Items) != max(w.Batch, 1) {
			return CodeItems
		}
		for i := range reply.Items {
			it := &reply.Items[i]
			if it.Error != nil {
				return string(it.Error.Code)
			}
			if len(it.Rows) != 1 {
				return CodeEmpty
			}
		}
	case Delete:
		if reply == nil || reply.Affected != 1 {
			return CodeEmpty
		}
	case Include:
		if reply == nil || len(reply.Rows) != 1 {
			return CodeEmpty
		}
		if n, ok := nested(reply.Rows[0][Relation]); !ok || n != w.Children {
			return CodeChildren
		}
	}
	return ""
}

// nested counts the rows nested under a relation name: a JSON array as
// wire.DecodeReply leaves it, or rows a node built.
func nested(v any) (int, bool) {
	switch rows := v.(type) {
	case []any:
		return len(rows), true
	case []wire.Row:
		return len(rows), true
	case []map[string]any:
		return len(rows), true
	}
	return 0, false
}
