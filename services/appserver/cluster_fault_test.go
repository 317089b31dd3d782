//go:build faults

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// rmqCluster is the three-node RabbitMQ cluster of
// scripts/rabbitmq-cluster.sh (its BEDS_RMQ_* environment applies here
// too).
type rmqCluster struct {
	script string
	nodes  []rmqNode
	vhost  string
}

type rmqNode struct {
	n    int    // the script's node number
	name string // beds1@localhost
	port int    // AMQP port on 127.0.0.1
}

// startCluster makes sure the cluster runs, starting it (and stopping it
// when the test ends) if it does not, and gives the test a virtual host
// of its own on it.
func startCluster(t *testing.T) *rmqCluster {
	t.Helper()
	c := &rmqCluster{script: filepath.Join(testenv.Root(t), "scripts", "rabbitmq-cluster.sh")}
	sc := bufio.NewScanner(strings.NewReader(c.run(t, "nodes")))
	for sc.Scan() {
		var nd rmqNode
		if _, err := fmt.Sscanf(sc.Text(), "%d %s %d", &nd.n, &nd.name, &nd.port); err != nil {
			t.Fatalf("rabbitmq-cluster.sh nodes: %q: %v", sc.Text(), err)
		}
		c.nodes = append(c.nodes, nd)
	}
	if len(c.nodes) < 3 {
		t.Fatalf("rabbitmq-cluster.sh has %d nodes; the test stops two in turn and needs a majority left: 3 at least", len(c.nodes))
	}
	if err := exec.Command(c.script, "status").Run(); err != nil {
		t.Logf("the RabbitMQ cluster is not up (%v): starting it", err)
		c.run(t, "start")
		t.Cleanup(func() { c.run(t, "stop") })
	}
	// Every node runs again when the test ends, whatever it stopped.
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.run(t, "start-node", strconv.Itoa(nd.n))
		}
	})
	c.vhost = testenv.Name("beds-test-")
	c.ctl(t, "add_vhost", c.vhost)
	t.Cleanup(func() { c.ctl(t, "delete_vhost", c.vhost) })
	c.ctl(t, "set_permissions", "-p", c.vhost, "guest", ".*", ".*", ".*")
	return c
}

// run runs the cluster script and returns its output; it fails t if the
// script fails.
func (c *rmqCluster) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(c.script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmq-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ctl runs rabbitmqctl against the first node that runs (never the
// machine's own node) and returns its output, without table headers.
func (c *rmqCluster) ctl(t *testing.T, args ...string) string {
	t.Helper()
	var errs []string
	for _, nd := range c.nodes {
		out, err := exec.Command("rabbitmqctl", append([]string{"-n", nd.name, "-q"}, args...)...).CombinedOutput()
		if err == nil {
			return string(out)
		}
		errs = append(errs, fmt.Sprintf("%s: %v: %s", nd.name, err, out))
	}
	t.Fatalf("rabbitmqctl %s: no node answered:\n%s", strings.Join(args, " "), strings.Join(errs, "\n"))
	return ""
}

// url and addrs are how BEDS reaches the test's virtual host: the first
// node's URL and the others' host:port.
func (c *rmqCluster) url() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/%s", c.nodes[0].port, c.vhost)
}

func (c *rmqCluster) addrs() []string {
	var out []string
	for _, nd := range c.nodes[1:] {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", nd.port))
	}
	return out
}

func (c *rmqCluster) byName(t *testing.T, name string) rmqNode {
	t.Helper()
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	t.Fatalf("%q is not a node of the cluster", name)
	return rmqNode{}
}

// queue returns the leader and the members of a quorum queue of the
// test's virtual host.
func (c *rmqCluster) queue(t *testing.T, name string) (leader string, members []string) {
	t.Helper()
	out := c.ctl(t, "list_queues", "-p", c.vhost, "--no-table-headers", "name", "type", "leader", "members")
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 || f[0] != name {
			continue
		}
		if f[1] != "quorum" {
			t.Fatalf("queue %s is %s, want quorum", name, f[1])
		}
		for _, m := range strings.Split(strings.Trim(f[3], "[]"), ",") {
			members = append(members, strings.TrimSpace(m))
		}
		return f[2], members
	}
	t.Fatalf("no queue %s in virtual host %s:\n%s", name, c.vhost, out)
	return "", nil
}

// connectedTo returns the node the connection named name (its
// connection_name client property) is on.
func (c *rmqCluster) connectedTo(t *testing.T, name string) rmqNode {
	t.Helper()
	out := c.ctl(t, "list_connections", "vhost", "port", "client_properties", "--formatter", "json")
	var conns []struct {
		VHost string  `json:"vhost"`
		Port  int     `json:"port"`
		Props [][]any `json:"client_properties"` // [key, type, value]
	}
	if err := json.Unmarshal([]byte(out), &conns); err != nil {
		t.Fatalf("list_connections: %v:\n%s", err, out)
	}
	for _, cn := range conns {
		if cn.VHost != c.vhost {
			continue
		}
		for _, p := range cn.Props {
			if len(p) == 3 && p[0] == "connection_name" && p[2] == name {
				for _, nd := range c.nodes {
					if nd.port == cn.Port {
						return nd
					}
				}
				t.Fatalf("connection %s is on port %d, no node of the cluster", name, cn.Port)
			}
		}
	}
	t.Fatalf("no connection %s in virtual host %s:\n%s", name, c.vhost, out)
	return rmqNode{}
}

// TestFaultClusterNodeStop runs an appserver against a three-node
// RabbitMQ cluster (scripts/rabbitmq-cluster.sh) with quorum queues,
// knowing all three addresses, under a steady load of ledger creates from
// clients that know them too. In turn, each node started again and back
// in the cluster before the next fault, it stops (rabbitmqctl stop) the
// node that leads beds.events' replicas, kills (SIGKILL) the node that
// leads them then, and stops the node the appserver consumes through.
// Each time no write answered ok may be lost and none applied twice,
// counted in the database, and the leader or the appserver's connection
// must have moved. The recovery recorded is the longest time without an
// ok reply from the fault on: the other nodes serve while one goes, so
// that is how long service stopped as the clients saw it.
func TestFaultClusterNodeStop(t *testing.T) {
	c := startCluster(t)
	f := newFixtureOn(t, 1, c.url(), c.addrs(), "[amqp]\nqueue_type = \"quorum\"\nquorum_size = 3\n")
	node := f.procs[0]

	for _, q := range []string{wire.EventsQueue, wire.TerceroQueue, wire.DeadQueue} {
		leader, members := c.queue(t, q)
		t.Logf("queue %s: leader %s, members %v", q, leader, members)
		if len(members) != len(c.nodes) {
			t.Errorf("queue %s has replicas on %v, want one on each of the %d nodes", q, members, len(c.nodes))
		}
	}

	// fault runs the script's how ("stop-node", "kill-node") on nd and
	// returns when the node is gone.
	fault := func(t *testing.T, how string, nd rmqNode) func() {
		return func() { // on the load's goroutine: no t.Fatal
			start := time.Now()
			if out, err := exec.Command(c.script, how, strconv.Itoa(nd.n)).CombinedOutput(); err != nil {
				t.Errorf("rabbitmq-cluster.sh %s %d: %v\n%s", how, nd.n, err, out)
			}
			t.Logf("%s %s: done in %s", how, nd.name, time.Since(start).Round(time.Millisecond))
		}
	}
	restart := func(t *testing.T, nd rmqNode) {
		start := time.Now()
		c.run(t, "start-node", strconv.Itoa(nd.n))
		t.Logf("%s running and clustered again after %s", nd.name, time.Since(start).Round(time.Millisecond))
		node.waitReady(t, 30*time.Second)
	}

	t.Run("leader", func(t *testing.T) {
		leader, _ := c.queue(t, wire.EventsQueue)
		victim := c.byName(t, leader)
		t.Logf("beds.events is led by %s; the appserver consumes through %s", leader, c.connectedTo(t, node.name+"/dispatcher").name)
		var fg figures
		record(t, "RabbitMQ cluster of 3, quorum queues: stop the node leading `beds.events`, MariaDB creates", "longest time without an ok reply, from the stop on", &fg)
		fg = f.load(t, "mqleader", 1500, 4, 8, f.ledger(), fault(t, "stop-node", victim))
		// The other nodes serve on while the stop runs: full service is
		// back when replies flow again, which the longest stall shows.
		fg.recovery = fg.stall
		now, _ := c.queue(t, wire.EventsQueue)
		t.Logf("beds.events is now led by %s", now)
		if now == leader {
			t.Errorf("beds.events still led by %s, which was stopped", now)
		}
		restart(t, victim)
	})

	t.Run("leader killed", func(t *testing.T) {
		leader, _ := c.queue(t, wire.EventsQueue)
		victim := c.byName(t, leader)
		t.Logf("beds.events is led by %s; the appserver consumes through %s", leader, c.connectedTo(t, node.name+"/dispatcher").name)
		var fg figures
		record(t, "RabbitMQ cluster of 3, quorum queues: `kill -9` of the node leading `beds.events`, MariaDB creates", "longest time without an ok reply, from the kill on", &fg)
		fg = f.load(t, "mqkill", 1500, 4, 8, f.ledger(), fault(t, "kill-node", victim))
		fg.recovery = fg.stall
		now, _ := c.queue(t, wire.EventsQueue)
		t.Logf("beds.events is now led by %s", now)
		if now == leader {
			t.Errorf("beds.events still led by %s, which was killed", now)
		}
		restart(t, victim)
	})

	t.Run("connected", func(t *testing.T) {
		victim := c.connectedTo(t, node.name+"/dispatcher")
		leader, _ := c.queue(t, wire.EventsQueue)
		t.Logf("the appserver consumes through %s; beds.events is led by %s", victim.name, leader)
		var fg figures
		record(t, "RabbitMQ cluster of 3, quorum queues: stop the node the appserver consumes through, MariaDB creates", "longest time without an ok reply, from the stop on", &fg)
		fg = f.load(t, "mqconnected", 1500, 4, 8, f.ledger(), fault(t, "stop-node", victim))
		fg.recovery = fg.stall
		if now := c.connectedTo(t, node.name+"/dispatcher"); now.name == victim.name {
			t.Errorf("the appserver still consumes through %s, which was stopped", now.name)
		} else {
			t.Logf("the appserver now consumes through %s", now.name)
		}
		restart(t, victim)
	})
}
