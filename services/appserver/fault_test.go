//go:build faults

// Fault tests break real servers under load: they kill appserver
// processes, restart RabbitMQ and MariaDB, and SIGTERM a node, then count
// what was lost or applied twice. They stop and start the machine's own
// servers, so they are built only with -tags faults and run alone, after
// the other suites (make test does this); every server is running again
// when each test ends, even when it fails.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// proc is one appserver process.
type proc struct {
	name, http string
	cmd        *exec.Cmd
	logs       *bytes.Buffer
	exited     chan error
}

type fixture struct {
	s     servers
	bin   string
	tpl   string
	db    *sql.DB
	procs []*proc
}

func newFixture(t *testing.T, nodes int) *fixture {
	t.Helper()
	f := &fixture{s: servers{amqpURL: testenv.AMQP(t), mariaDSN: testenv.MariaDB(t), mongoURI: testenv.Mongo(t)}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, testenv.ApplySQL(ctx, f.s.mariaDSN, filepath.Join("testdata", "ledger.sql")))
	var err error
	f.db, err = sql.Open("mysql", f.s.mariaDSN)
	must(t, err)
	t.Cleanup(func() { f.db.Close() })
	f.tpl = t.TempDir()
	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), "templates", "*.toml"))
	files = append(files, filepath.Join("testdata", "faults", "ledger_rec.toml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(f.tpl, filepath.Base(file)), b, 0o644))
	}
	f.bin = buildBinary(t)
	for i := 1; i <= nodes; i++ {
		f.start(t, fmt.Sprintf("fault-%d", i))
	}
	return f
}

func (f *fixture) start(t *testing.T, name string) *proc {
	t.Helper()
	p := &proc{name: name, http: freeAddr(t), logs: &bytes.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(f.bin)
	p.cmd.Env = append(os.Environ(),
		"BEDS_CONFIG_DIR="+filepath.Join(testenv.Root(t), "deploy", "config"),
		"BEDS_TEMPLATE_DIR="+f.tpl, "BEDS_AMQP_URL="+f.s.amqpURL, "BEDS_MARIADB_DSN="+f.s.mariaDSN,
		"BEDS_MONGO_URI="+f.s.mongoURI, "BEDS_HTTP_ADDR="+p.http, "BEDS_NODE_NAME="+name, "BEDS_LOG_LEVEL=info")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	must(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.logs.String())
		}
	})
	p.waitReady(t, 60*time.Second)
	f.procs = append(f.procs, p)
	return p
}

func (p *proc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s", p.name, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// figures is what a fault test reports.
type figures struct {
	sent, replied, attempts int64
	codes                   map[wire.Code]int64
	applied, duplicates     int64
	lost                    int64
	recovery                time.Duration
}

func (fg figures) String() string {
	codes := make([]string, 0, len(fg.codes))
	for c, n := range fg.codes {
		codes = append(codes, fmt.Sprintf("%s=%d", c, n))
	}
	sort.Strings(codes)
	return fmt.Sprintf("writes sent %d, replied ok %d, attempts %d, error replies [%s], applied %d, duplicates %d, lost %d, recovery %s",
		fg.sent, fg.replied, fg.attempts, strings.Join(codes, " "), fg.applied, fg.duplicates, fg.lost, fg.recovery.Round(time.Millisecond))
}

// load sends ledger writes from clients clients with workers goroutines
// each: at least total of them, and on until the fault is over and a write
// has succeeded after it, so the fault always strikes mid-load. Every
// write has its own event ID and is sent again with it after a system
// error, until it is answered ok. fault runs once a third of total are
// answered; it returns when the fault is over, and the time from then to
// the next ok reply is the recovery time.
func (f *fixture) load(t *testing.T, run string, total, clients, workers int, fault func()) figures {
	t.Helper()
	fg := figures{codes: map[wire.Code]int64{}}
	var mu sync.Mutex
	var next, done atomic.Int64
	var healed atomic.Int64 // unix nanos when the fault ended
	var recovered atomic.Int64
	faultStarted := make(chan struct{})
	faultOver := make(chan struct{})
	go func() {
		<-faultStarted
		fault()
		healed.Store(time.Now().UnixNano())
		close(faultOver)
	}()
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		cl, err := client.Dial(ctx, f.s.amqpURL, client.Options{Name: fmt.Sprintf("%s-client-%d", run, c)})
		must(t, err)
		defer cl.Close()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if next.Load() >= int64(total) && recovered.Load() != 0 {
						return
					}
					i := next.Add(1)
					event := fmt.Sprintf("%s-%d", run, i)
					req := &wire.Request{Template: "ledger", Op: wire.OpCreate,
						Data: []byte(fmt.Sprintf(`{"ref":%q,"amount":%d}`, event, i))}
					for ctx.Err() == nil {
						rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
						_, err := cl.Send(rctx, event, req)
						rcancel()
						mu.Lock()
						fg.attempts++
						mu.Unlock()
						if err == nil {
							if h := healed.Load(); h != 0 {
								recovered.CompareAndSwap(0, time.Now().UnixNano())
							}
							break
						}
						var we *wire.Error
						if !errors.As(err, &we) {
							t.Errorf("write %s: %v", event, err)
							return
						}
						mu.Lock()
						fg.codes[we.Code]++
						mu.Unlock()
						if !we.Code.Retryable() {
							t.Errorf("write %s: %v", event, err)
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
					if ctx.Err() != nil {
						t.Errorf("write %s: no ok reply before the test's deadline", event)
						return
					}
					mu.Lock()
					fg.replied++
					mu.Unlock()
					if done.Add(1) == int64(total/3) {
						once.Do(func() { close(faultStarted) })
					}
				}
			}()
		}
	}
	wg.Wait()
	once.Do(func() { close(faultStarted) })
	<-faultOver
	fg.sent = next.Load()
	if r, h := recovered.Load(), healed.Load(); r > h && h != 0 {
		fg.recovery = time.Duration(r - h)
	}
	var rows, distinct int64
	must(t, f.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT led_ref) FROM tbl_led WHERE led_ref LIKE ?", run+"-%").Scan(&rows, &distinct))
	fg.applied, fg.duplicates, fg.lost = rows, rows-distinct, fg.sent-distinct
	t.Logf("%s: %s", run, fg)
	if fg.duplicates != 0 || fg.lost != 0 || fg.replied != fg.sent {
		t.Errorf("%s: want every write replied and applied exactly once", run)
	}
	return fg
}

func TestFaultKillNode(t *testing.T) {
	f := newFixture(t, 2)
	victim := f.procs[0]
	f.load(t, "kill9", 5000, 4, 16, func() {
		_ = victim.cmd.Process.Signal(syscall.SIGKILL)
		<-victim.exited
	})
}

func TestFaultRabbitMQRestart(t *testing.T) {
	f := newFixture(t, 2)
	t.Cleanup(func() { ctl(t, "rabbitmqctl", "start_app") })
	fg := f.load(t, "mqrestart", 2000, 4, 8, func() {
		ctl(t, "rabbitmqctl", "stop_app")
		time.Sleep(time.Second)
		ctl(t, "rabbitmqctl", "start_app")
	})
	if fg.recovery == 0 || fg.recovery > 10*time.Second {
		t.Errorf("recovery %s, want within 10s", fg.recovery)
	}
	for _, p := range f.procs {
		p.waitReady(t, 10*time.Second)
	}
}

func TestFaultDatabaseRestart(t *testing.T) {
	f := newFixture(t, 1)
	t.Cleanup(func() { startMariaDB(t) })
	fg := f.load(t, "dbrestart", 2000, 2, 8, func() {
		ctl(t, "start-stop-daemon", "--stop", "--quiet", "--retry", "30", "--exec", "/usr/sbin/mariadbd")
		time.Sleep(3 * time.Second)
		startMariaDB(t)
	})
	if fg.codes[wire.CodeUnavailable] == 0 {
		t.Errorf("no unavailable replies during the outage: %s", fg)
	}
	f.procs[0].waitReady(t, 15*time.Second)
}

func TestFaultSigterm(t *testing.T) {
	f := newFixture(t, 2)
	victim := f.procs[0]
	f.load(t, "sigterm", 3000, 4, 8, func() {
		_ = victim.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-victim.exited; err != nil {
			t.Errorf("%s after SIGTERM: %v", victim.name, err)
		}
	})
	if !strings.Contains(victim.logs.String(), "drained") {
		t.Errorf("%s did not report a drain:\n%s", victim.name, victim.logs.String())
	}
}

func ctl(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// startMariaDB starts the machine's MariaDB (as the machine's docs say)
// and waits until it answers.
func startMariaDB(t *testing.T) {
	t.Helper()
	_ = os.MkdirAll("/run/mysqld", 0o755)
	_ = exec.Command("chown", "mysql:mysql", "/run/mysqld").Run()
	_ = exec.Command("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd", "--", "--user=mysql").Run()
	deadline := time.Now().Add(60 * time.Second)
	for exec.Command("mariadb-admin", "-uroot", "-h127.0.0.1", "ping").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("MariaDB did not come back within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFaultMemoryAlarm sets off RabbitMQ's memory alarm, which blocks
// every publishing connection: a client's request must end at its
// deadline instead of hanging, and everything must work again once the
// alarm clears.
func TestFaultMemoryAlarm(t *testing.T) {
	f := newFixture(t, 1)
	out, err := exec.Command("rabbitmqctl", "-q", "eval", "vm_memory_monitor:get_vm_memory_high_watermark().").Output()
	must(t, err)
	watermark := strings.TrimSpace(string(out))
	if _, perr := strconv.ParseFloat(watermark, 64); perr != nil {
		t.Skipf("memory watermark %q is not a plain ratio; not changing it", watermark)
	}
	t.Cleanup(func() { ctl(t, "rabbitmqctl", "set_vm_memory_high_watermark", watermark) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, f.s.amqpURL, client.Options{Name: "alarm"})
	must(t, err)
	defer c.Close()
	write := func(event string, within time.Duration) error {
		rctx, rcancel := context.WithTimeout(ctx, within)
		defer rcancel()
		_, err := c.Send(rctx, event, &wire.Request{Template: "ledger", Op: wire.OpCreate,
			Data: []byte(fmt.Sprintf(`{"ref":%q}`, event))})
		return err
	}
	must(t, write("alarm-0", 10*time.Second))

	ctl(t, "rabbitmqctl", "set_vm_memory_high_watermark", "0.0000001")
	time.Sleep(2 * time.Second) // the alarm is raised on RabbitMQ's next memory check
	start := time.Now()
	err = write("alarm-1", 2*time.Second)
	took := time.Since(start)
	var we *wire.Error
	if err == nil || !errors.As(err, &we) || !we.Code.Retryable() {
		t.Fatalf("write under a memory alarm: %v, want timeout or unavailable", err)
	}
	if took > 4*time.Second {
		t.Fatalf("write under a memory alarm took %s with a 2s deadline", took)
	}
	t.Logf("under the alarm: %s after %s", we.Code, took.Round(time.Millisecond))

	ctl(t, "rabbitmqctl", "set_vm_memory_high_watermark", watermark)
	start = time.Now()
	for {
		if err := write("alarm-1", 5*time.Second); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("no write succeeded within 30s of the alarm clearing")
		}
	}
	t.Logf("recovered %s after the alarm cleared", time.Since(start).Round(time.Millisecond))
	var rows int
	must(t, f.db.QueryRow("SELECT COUNT(*) FROM tbl_led WHERE led_ref LIKE 'alarm-%'").Scan(&rows))
	if rows != 2 {
		t.Fatalf("%d ledger rows, want 2 (alarm-0 and alarm-1 once)", rows)
	}
}
