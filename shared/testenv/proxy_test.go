package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// echoServer answers every connection with what it reads until the test
// ends, and returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and waits for its echo.
func roundTrip(c net.Conn, msg string) (time.Duration, error) {
	t0 := time.Now()
	if _, err := io.WriteString(c, msg); err != nil {
		return 0, err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return 0, err
	}
	if string(got) != msg {
		return 0, fmt.Errorf("echo %q, want %q", got, msg)
	}
	return time.Since(t0), nil
}

func TestProxyDelay(t *testing.T) {
	const d = 20 * time.Millisecond
	goroutines := runtime.NumGoroutine()
	for _, tc := range []struct {
		name string
		// delay is set before the test connects.
		delay time.Duration
		run   func(t *testing.T, p *Proxy)
	}{
		{"without delay bytes pass", 0, func(t *testing.T, p *Proxy) {
			c := dialProxy(t, p)
			for i := range 3 {
				if _, err := roundTrip(c, fmt.Sprintf("hello %d", i)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"a round trip costs twice the delay", d, func(t *testing.T, p *Proxy) {
			took, err := roundTrip(dialProxy(t, p), "ping")
			if err != nil {
				t.Fatal(err)
			}
			if took < 2*d {
				t.Errorf("round trip took %s, want at least %s", took, 2*d)
			}
		}},
		{"ten connections wait the delay once, not ten times", d, func(t *testing.T, p *Proxy) {
			one, err := roundTrip(dialProxy(t, p), "one")
			if err != nil {
				t.Fatal(err)
			}
			conns := make([]net.Conn, 10)
			for i := range conns {
				conns[i] = dialProxy(t, p)
			}
			errs := make([]error, len(conns))
			var wg sync.WaitGroup
			t0 := time.Now()
			for i, c := range conns {
				wg.Go(func() {
					var took time.Duration
					took, errs[i] = roundTrip(c, fmt.Sprintf("conn %d", i))
					if errs[i] == nil && took < 2*d {
						errs[i] = fmt.Errorf("conn %d: round trip took %s, want at least %s", i, took, 2*d)
					}
				})
			}
			wg.Wait()
			all := time.Since(t0)
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if all >= 5*one {
				t.Errorf("10 concurrent round trips took %s, one took %s: want well under 10x (< 5x)", all, one)
			}
		}},
		{"pipelined writes on one connection wait the delay once", d, func(t *testing.T, p *Proxy) {
			c := dialProxy(t, p)
			var want bytes.Buffer
			t0 := time.Now()
			for i := range 10 {
				msg := fmt.Sprintf("[%d]", i)
				want.WriteString(msg)
				if _, err := io.WriteString(c, msg); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			got := make([]byte, want.Len())
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			took := time.Since(t0)
			if string(got) != want.String() {
				t.Fatalf("echo %q, want %q in order", got, want.String())
			}
			if took < 2*d || took >= 5*2*d {
				t.Errorf("10 pipelined writes echoed in %s, want %s..%s", took, 2*d, 5*2*d)
			}
		}},
		{"set on an open connection, and removed", 0, func(t *testing.T, p *Proxy) {
			c := dialProxy(t, p)
			if _, err := roundTrip(c, "before"); err != nil {
				t.Fatal(err)
			}
			p.SetDelay(d)
			took, err := roundTrip(c, "delayed")
			if err != nil {
				t.Fatal(err)
			}
			if took < 2*d {
				t.Errorf("round trip after SetDelay took %s, want at least %s", took, 2*d)
			}
			p.SetDelay(0)
			for i := range 3 {
				if _, err := roundTrip(c, fmt.Sprintf("after %d", i)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"close ends a delayed connection at once", 10 * time.Second, func(t *testing.T, p *Proxy) {
			c := dialProxy(t, p)
			if _, err := io.WriteString(c, "never echoed"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // the chunk is queued
			t0 := time.Now()
			p.Close()
			if took := time.Since(t0); took > time.Second {
				t.Errorf("Close took %s with a chunk due in 10s", took)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(make([]byte, 64))
			if n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read after Close: %d bytes, %v; want the connection closed", n, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewProxy(t, echoServer(t))
			p.SetDelay(tc.delay)
			tc.run(t, p)
		})
	}
	// Every subtest's proxy, echo server and connections are closed: no
	// goroutine of theirs may be left.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines left, %d before", n, goroutines)
	}
}
