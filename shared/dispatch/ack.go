package dispatch

import (
	"log/slog"
	"slices"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// settlement is a worker's verdict on one delivery of the session's
// consumer channel: acknowledge it, hand it back to the queue (requeue),
// or reject it to the queue's dead-letter exchange (reject).
type settlement struct {
	tag     uint64
	requeue bool
	reject  bool
}

// acker settles one channel's deliveries for its workers. Workers finish
// deliveries out of order; the acker acknowledges with multiple=true up to
// the highest tag below which every delivery is settled. The worker that
// settles a delivery sends the frames itself, unless another worker is
// already sending: then it leaves its settlement for that worker, which
// takes everything left to it before it returns. A busy channel so sends
// one ack frame for many deliveries (a frame, a write system call and
// RabbitMQ work saved on each of the others), and an idle one acks each
// delivery as it comes, with no hand-off to another goroutine.
//
// A delivery that takes long would hold back the acks of everything
// delivered after it, and with them the channel's prefetch window; once
// more than half the window's worth of settled deliveries wait behind one,
// they are acknowledged one by one instead.
type acker struct {
	ch  *amqp.Channel
	log *slog.Logger

	mu      sync.Mutex
	win     window
	nacks   []settlement // to hand back or reject, before any ack covering them
	sending bool         // a worker is sending frames
	// failed is set after the first failed frame: the channel is gone and
	// RabbitMQ requeues whatever it had not been told.
	failed bool
}

func newAcker(ch *amqp.Channel, prefetch int, log *slog.Logger) *acker {
	stall := prefetch / 2
	if prefetch <= 0 {
		stall = 256
	}
	return &acker{ch: ch, log: log, win: newWindow(max(stall, 1))}
}

// settle records a worker's verdict and sends what can be sent.
func (a *acker) settle(s settlement) {
	a.mu.Lock()
	if s.requeue || s.reject {
		a.nacks = append(a.nacks, s)
	} else {
		a.win.settle(s.tag, false)
	}
	if a.sending {
		a.mu.Unlock()
		return
	}
	a.sending = true
	for {
		if nacks := a.nacks; len(nacks) > 0 {
			a.nacks = nil
			a.mu.Unlock()
			for _, n := range nacks {
				a.check(a.ch.Nack(n.tag, false, !n.reject), "nack", n.tag)
			}
			a.mu.Lock()
			for _, n := range nacks {
				a.win.settle(n.tag, true)
			}
		}
		top, stalled := a.win.advance(), a.win.stalled()
		if top == 0 && len(stalled) == 0 && len(a.nacks) == 0 {
			a.sending = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		if top > 0 {
			a.check(a.ch.Ack(top, true), "ack", top)
		}
		for _, tag := range stalled {
			a.check(a.ch.Ack(tag, false), "ack", tag)
		}
		a.mu.Lock()
	}
}

// check logs the first failed frame; called by the one sending worker.
func (a *acker) check(err error, what string, tag uint64) {
	if err != nil && !a.failed {
		a.failed = true
		a.log.Warn(what+" failed; RabbitMQ requeues the deliveries not acknowledged", "tag", tag, "err", err)
	}
}

// window is the bookkeeping of an acker: which delivery tags above the
// lowest unsettled one are settled, and whether each is still to be
// acknowledged (false) or already sent on its own (true: nacked, or acked
// one by one). Delivery tags of a channel start at 1 and go up by one.
type window struct {
	next  uint64          // lowest tag not settled
	done  map[uint64]bool // settled tags >= next
	stall int
	// unsent holds, in the order they were settled, the tags settled
	// still to be acknowledged, and tags advance has since passed (a
	// multiple ack covered them), which stalled skips and prune drops.
	// It lets a stalled window find the tags to acknowledge one by one
	// without going through done on every settlement.
	unsent []uint64
}

func newWindow(stall int) window {
	return window{next: 1, done: map[uint64]bool{}, stall: stall}
}

// settle records that tag is settled; sent says it needs no ack.
func (w *window) settle(tag uint64, sent bool) {
	w.done[tag] = sent
	if !sent {
		w.unsent = append(w.unsent, tag)
	}
}

// advance moves past every settled tag from the lowest unsettled one and
// returns the tag to acknowledge with multiple=true, or 0 for none. It is
// the highest of those tags still to be acknowledged: an ack must name an
// unacknowledged delivery, and acknowledges every unacknowledged one
// below it, which are exactly the others still to be acknowledged.
func (w *window) advance() uint64 {
	var top uint64
	for {
		sent, ok := w.done[w.next]
		if !ok {
			w.prune()
			return top
		}
		if !sent {
			top = w.next
		}
		delete(w.done, w.next)
		w.next++
	}
}

// prune drops from unsent the tags advance has passed once they
// outnumber the settled tags still waiting, so unsent stays within twice
// the window at an amortised constant cost per settlement.
func (w *window) prune() {
	if len(w.unsent) <= 2*len(w.done)+w.stall {
		return
	}
	w.unsent = slices.DeleteFunc(w.unsent, func(tag uint64) bool { return !w.waiting(tag) })
}

// waiting reports whether tag is settled and still to be acknowledged.
func (w *window) waiting(tag uint64) bool {
	sent, ok := w.done[tag]
	return ok && !sent
}

// stalled returns the settled tags still to be acknowledged once more than
// stall wait behind an unsettled delivery, in order, and marks them sent.
func (w *window) stalled() []uint64 {
	if len(w.done) <= w.stall {
		return nil
	}
	var tags []uint64
	for _, tag := range w.unsent {
		if w.waiting(tag) {
			tags = append(tags, tag)
			w.done[tag] = true
		}
	}
	w.unsent = w.unsent[:0]
	slices.Sort(tags)
	return tags
}
