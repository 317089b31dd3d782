package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/testenv"
)

// BEDS_AMQP_ADDRESSES gives bedsctl the cluster's other nodes: with
// --url on a closed port, ping reaches RabbitMQ through the address, and
// a malformed address is refused.
func TestAddressesFromEnvironment(t *testing.T) {
	live := testenv.AMQP(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	u := strings.Replace(live, "127.0.0.1:5672", dead, 1)
	if u == live {
		t.Skipf("the test's RabbitMQ is not at 127.0.0.1:5672: %s", live)
	}

	t.Setenv("BEDS_AMQP_ADDRESSES", "no-port")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"ping", "--url", u, "--count", "1", "--timeout", "5s"}, nil, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "amqp address 1 of 1") {
		t.Fatalf("ping with a malformed address: exit %d:\n%s%s", code, out.String(), errOut.String())
	}

	// Nobody serves the vhost: ping gets as far as sending, and times out
	// instead of failing to connect.
	t.Setenv("BEDS_AMQP_ADDRESSES", "127.0.0.1:5672")
	out.Reset()
	errOut.Reset()
	run(context.Background(), []string{"ping", "--url", u, "--count", "1", "--timeout", "2s"}, nil, &out, &errOut)
	all := out.String() + errOut.String()
	t.Logf("ping:\n%s", all)
	if !strings.Contains(all, "no reply within") || strings.Contains(all, dead) {
		t.Fatalf("ping with the URL's node closed and a live address did not connect:\n%s", all)
	}
}
