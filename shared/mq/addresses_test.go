package mq_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/testenv"
)

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:5682", true},
		{"rabbit-2.example.com:5672", true},
		{"[::1]:5672", true},
		{"[fe80::1%eth0]:5672", true},
		{"localhost:1", true},
		{"localhost:65535", true},
		{"localhost", false},              // no port
		{"localhost:", false},             // empty port
		{":5672", false},                  // no host
		{"localhost:0", false},            // port out of range
		{"localhost:65536", false},        // port out of range
		{"localhost:amqp", false},         // port by name
		{"::1:5672", false},               // IPv6 without brackets
		{"amqp://h:5672", false},          // a URL
		{"guest:s3cret@h:5672", false},    // credentials
		{"h/vhost:5672", false},           // a path
		{"amqp://u:s3cret@h:5672", false}, // a URL with a password
	} {
		err := mq.CheckAddress(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddress(%q) = %v, want ok %t", tc.addr, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckAddress(%q): error %q shows the password", tc.addr, err)
		}
	}
}

func TestURLs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		url   string
		addrs []string
		want  []string
		err   string // in the error; "" for none
	}{
		{name: "url alone", url: "amqp://u:p@a:5672/v",
			want: []string{"amqp://u:p@a:5672/v"}},
		{name: "more nodes keep credentials, vhost and query", url: "amqp://u:p@a:5672/v?heartbeat=5",
			addrs: []string{"b:5673", "10.0.0.3:5672"},
			want:  []string{"amqp://u:p@a:5672/v?heartbeat=5", "amqp://u:p@b:5673/v?heartbeat=5", "amqp://u:p@10.0.0.3:5672/v?heartbeat=5"}},
		{name: "the url's own node listed again is left out", url: "amqp://u:p@a:5672/v",
			addrs: []string{"a:5672", "b:5672", "B:5672"},
			want:  []string{"amqp://u:p@a:5672/v", "amqp://u:p@b:5672/v"}},
		{name: "default port of the url", url: "amqp://u:p@a/",
			addrs: []string{"a:5672", "a:5673"},
			want:  []string{"amqp://u:p@a/", "amqp://u:p@a:5673/"}},
		{name: "amqps keeps each host for TLS", url: "amqps://u:p@a:5671/v",
			addrs: []string{"b:5671"},
			want:  []string{"amqps://u:p@a:5671/v", "amqps://u:p@b:5671/v"}},
		{name: "IPv6", url: "amqp://u:p@[::1]:5672/",
			addrs: []string{"[::1]:5673"},
			want:  []string{"amqp://u:p@[::1]:5672/", "amqp://u:p@[::1]:5673/"}},
		{name: "escaped password stays escaped", url: "amqp://u:p%40ss@a:5672/v",
			addrs: []string{"b:5672"},
			want:  []string{"amqp://u:p%40ss@a:5672/v", "amqp://u:p%40ss@b:5672/v"}},
		{name: "bad address", url: "amqp://u:s3cret@a:5672/", addrs: []string{"b:5672", "amqp://u:s3cret@c"},
			err: "amqp address 2 of 2"},
		{name: "bad url", url: "amqp://u:s3cr/et@a:5672/", addrs: []string{"b:5672"},
			err: "malformed AMQP URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mq.URLs(tc.url, tc.addrs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "s3cr") {
					t.Fatalf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("URLs = %q, want %q", got, tc.want)
			}
		})
	}
}

// closedAddr returns the address of a port nothing listens on (it was a
// moment ago).
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A Dial whose first address is closed connects to the next: a node
// that went away is passed over.
func TestDialFirstAddressClosed(t *testing.T) {
	live := testenv.AMQP(t) // amqp://guest:guest@127.0.0.1:5672/<vhost>
	liveAddr := mq.Addr(live)
	dead := closedAddr(t)
	// The URL names the dead node; the live one is an address.
	url := strings.Replace(live, liveAddr, dead, 1)
	cfg := mq.DialConfig{URL: url, Addresses: []string{liveAddr}, Name: "test", Timeout: 2 * time.Second}
	if got := cfg.Addrs(); !slices.Equal(got, []string{dead, liveAddr}) {
		t.Fatalf("Addrs() = %q, want %q", got, []string{dead, liveAddr})
	}
	// Every dial connects, whichever address its rotation starts at.
	for i := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := mq.Dial(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if got := conn.RemoteAddr().String(); got != liveAddr {
			t.Errorf("dial %d connected to %s, want %s", i, got, liveAddr)
		}
		// The connection is a real one: it declares the topology.
		if err := mq.Declare(conn, mq.Topology{QueueType: "classic", DeliveryLimit: 5}, nil); err != nil {
			t.Errorf("dial %d: declare: %v", i, err)
		}
		conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := mq.ReachableAny(ctx, cfg.Addrs(), time.Second); err != nil {
		t.Errorf("ReachableAny: %v, want the live address found", err)
	}
}

// When no address takes the connection, the error names each with its
// failure, and never the password.
func TestDialNoAddressAnswers(t *testing.T) {
	a, b, c := closedAddr(t), closedAddr(t), closedAddr(t)
	cfg := mq.DialConfig{URL: "amqp://guest:s3cret@" + a + "/v", Addresses: []string{b, c}, Timeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := mq.Dial(ctx, cfg)
	if err == nil {
		t.Fatal("dial to three closed ports succeeded")
	}
	for _, addr := range []string{a, b, c} {
		if !strings.Contains(err.Error(), "amqp "+addr+": ") {
			t.Errorf("error %q does not name %s", err, addr)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("error %q does not wrap the dial's *net.OpError", err)
	}
	err = mq.ReachableAny(ctx, cfg.Addrs(), time.Second)
	for _, addr := range []string{a, b, c} {
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("ReachableAny: %v, want an error naming %s", err, addr)
		}
	}
}

// Consecutive dials start at consecutive addresses, so the connections
// of a node spread over the cluster. Each listener here takes the
// connection and closes it (a node going away mid-handshake), so every
// dial tries every address; the one it tried first shows where it
// started.
func TestDialRotates(t *testing.T) {
	const n = 3
	var mu sync.Mutex
	var order []int // listener index of each connection taken, in order
	addrs := make([]string, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		addrs[i] = ln.Addr().String()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				c.Close()
			}
		}()
	}
	cfg := mq.DialConfig{URL: "amqp://guest:guest@" + addrs[0] + "/", Addresses: addrs[1:], Timeout: time.Second}
	var starts []int
	for range n {
		mu.Lock()
		order = order[:0]
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := mq.Dial(ctx, cfg)
		cancel()
		if err == nil {
			t.Fatal("dial to listeners that close at once succeeded")
		}
		mu.Lock()
		if len(order) != n {
			t.Fatalf("one dial made %d connections (%v), want one to each of %d addresses", len(order), order, n)
		}
		starts = append(starts, order[0])
		mu.Unlock()
	}
	for i := 1; i < n; i++ {
		if starts[i] != (starts[i-1]+1)%n {
			t.Fatalf("dials started at addresses %v, want consecutive ones", starts)
		}
	}
}
