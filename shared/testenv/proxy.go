package testenv

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a server and can cut them all at once,
// which makes "the database went away" a real network event in a test. It
// can also add latency (SetDelay), which makes "the database is 20 ms
// away" one.
//
// Every connection it accepts is a link of two TCP connections, the
// client's and the server's, with one goroutine per direction copying
// bytes; a direction that has carried delayed bytes has a second goroutine
// delivering them. All of them belong to the link and end when it is cut:
// when either side closes or fails, or on Close.
type Proxy struct {
	target string
	addr   string
	delay  atomic.Int64 // time.Duration added to every chunk, each way

	mu     sync.Mutex
	ln     net.Listener
	closed bool // no link may start: Close ran and Reopen did not
	links  map[*link]bool
	wg     sync.WaitGroup // accept loops and every link's goroutines
}

// Bounds of a delayed direction: it reads at most chunkSize bytes at a
// time and holds at most queueLen chunks (so at most 4 MiB) read but not
// yet delivered; past that, reading waits, as a full TCP window would.
const (
	chunkSize = 16 << 10
	queueLen  = 256
)

// NewProxy starts a proxy to target on a free loopback port; it stops when
// the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, ln: ln, addr: ln.Addr().String(), links: map[*link]bool{}}
	p.wg.Add(1)
	go p.accept(ln)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// SetDelay makes the proxy deliver every byte it reads from now on d
// later, in each direction, on open connections and new ones alike: a
// request and its reply cost 2d more than without the proxy. It models
// latency, not bandwidth: bytes read in quick succession leave in quick
// succession, d later and in order, so requests pipelined on one
// connection, or sent on several at once, wait d once, not once each. A d
// of zero or less copies bytes directly again, once the ones already
// delayed have been delivered.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(max(d, 0))) }

// Reopen listens again on the same address after Close: the server is
// back.
func (p *Proxy) Reopen() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.closed = false
	p.wg.Add(1)
	p.mu.Unlock()
	go p.accept(ln)
	return nil
}

// Close stops listening and cuts every open connection, delayed bytes
// included, and returns once every goroutine of the proxy has ended.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	_ = p.ln.Close()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.cut()
	}
	p.wg.Wait()
}

// link is one proxied connection: the client's side (in) and the
// server's (out). Cutting it closes both and wakes every goroutine of it.
type link struct {
	in, out net.Conn
	done    chan struct{}
	once    sync.Once
}

func (l *link) cut() {
	l.once.Do(func() {
		close(l.done)
		_ = l.in.Close()
		_ = l.out.Close()
	})
}

// start registers l and counts its two copying goroutines, unless the
// proxy is closed.
func (p *Proxy) start(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.links[l] = true
	p.wg.Add(2)
	return true
}

func (p *Proxy) forget(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		in, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		l := &link{in: in, out: out, done: make(chan struct{})}
		if !p.start(l) {
			l.cut()
			continue
		}
		go p.forward(l, out, in)
		go p.forward(l, in, out)
	}
}

// chunk is bytes read from one side, due on the other at a time.
type chunk struct {
	due time.Time
	b   []byte
}

// forward copies src to dst until either fails, then cuts l. Without a
// delay it writes what it reads at once. With one, it stamps each chunk
// with its due time and queues it for a deliver goroutine it starts on the
// first delayed chunk; pending counts the chunks queued and not yet
// written, so that bytes are written directly again only once none is
// waiting, and never overtake queued ones.
func (p *Proxy) forward(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer p.forget(l)
	var (
		queue   chan chunk
		pending atomic.Int64
	)
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			d := time.Duration(p.delay.Load())
			if d == 0 && pending.Load() == 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					l.cut()
					return
				}
			} else {
				if queue == nil {
					queue = make(chan chunk, queueLen)
					p.wg.Add(1)
					go p.deliver(l, dst, queue, &pending)
				}
				pending.Add(1)
				select {
				case queue <- chunk{due: time.Now().Add(d), b: bytes.Clone(buf[:n])}:
				case <-l.done:
					return
				}
			}
		}
		if err != nil {
			if queue != nil {
				// deliver writes what is queued, then cuts l; on
				// anything but a clean end l is cut already, or now.
				close(queue)
				if errors.Is(err, io.EOF) {
					return
				}
			}
			l.cut()
			return
		}
	}
}

// deliver writes each queued chunk to dst at its due time, in order, until
// the queue is closed and drained or l is cut; then it cuts l.
func (p *Proxy) deliver(l *link, dst net.Conn, queue <-chan chunk, pending *atomic.Int64) {
	defer p.wg.Done()
	defer l.cut()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var c chunk
		var ok bool
		select {
		case c, ok = <-queue:
		case <-l.done:
			return
		}
		if !ok {
			return
		}
		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-l.done:
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
		pending.Add(-1)
	}
}
