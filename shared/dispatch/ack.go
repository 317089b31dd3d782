package dispatch

import (
	"log/slog"
	"slices"

	amqp "github.com/rabbitmq/amqp091-go"
)

// settlement is a worker's verdict on one delivery of the session's
// consumer channel: acknowledge it, or hand it back to the queue.
type settlement struct {
	tag     uint64
	requeue bool
}

// acker settles one channel's deliveries for the workers. Workers finish
// deliveries out of order; the acker acknowledges with multiple=true up to
// the highest tag below which every delivery is settled, once for all the
// settlements it finds waiting. A busy channel so sends one ack frame for
// many deliveries (a frame, a write system call and broker work saved on
// each of the others), and an idle one acks each delivery as it comes.
//
// A delivery that takes long would hold back the acks of everything
// delivered after it, and with them the channel's prefetch window; once
// more than stall settled deliveries wait behind one, they are
// acknowledged one by one instead.
type acker struct {
	ch  *amqp.Channel
	in  chan settlement
	log *slog.Logger
	win window
	// failed is set after the first failed ack: the channel is gone and
	// RabbitMQ requeues whatever it had not been told.
	failed bool
}

func newAcker(ch *amqp.Channel, prefetch int, log *slog.Logger) *acker {
	stall := prefetch / 2
	if prefetch <= 0 {
		stall = 256
	}
	return &acker{ch: ch, in: make(chan settlement, max(prefetch, 64)), log: log, win: newWindow(max(stall, 1))}
}

// run settles until in is closed and everything received is sent.
func (a *acker) run() {
	for s := range a.in {
		a.take(s)
		for more := true; more; {
			select {
			case s, ok := <-a.in:
				if !ok {
					more = false
					break
				}
				a.take(s)
			default:
				more = false
			}
		}
		a.flush()
	}
	a.flush()
}

func (a *acker) take(s settlement) {
	if !s.requeue {
		a.win.settle(s.tag, false)
		return
	}
	// A nack goes out at once, before any multiple ack covering its tag.
	a.check(a.ch.Nack(s.tag, false, true), "nack", s.tag)
	a.win.settle(s.tag, true)
}

func (a *acker) flush() {
	if top := a.win.advance(); top > 0 {
		a.check(a.ch.Ack(top, true), "ack", top)
	}
	for _, tag := range a.win.stalled() {
		a.check(a.ch.Ack(tag, false), "ack", tag)
	}
}

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
}

func newWindow(stall int) window {
	return window{next: 1, done: map[uint64]bool{}, stall: stall}
}

// settle records that tag is settled; sent says it needs no ack.
func (w *window) settle(tag uint64, sent bool) { w.done[tag] = sent }

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
			return top
		}
		if !sent {
			top = w.next
		}
		delete(w.done, w.next)
		w.next++
	}
}

// stalled returns the settled tags still to be acknowledged once more than
// stall wait behind an unsettled delivery, in order, and marks them sent.
func (w *window) stalled() []uint64 {
	if len(w.done) <= w.stall {
		return nil
	}
	var tags []uint64
	for tag, sent := range w.done {
		if !sent {
			tags = append(tags, tag)
			w.done[tag] = true
		}
	}
	slices.Sort(tags)
	return tags
}
