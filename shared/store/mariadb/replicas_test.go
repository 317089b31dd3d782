package mariadb

// Replica tests against a real primary and replica: scripts/mariadb-replicas.sh
// runs them (make servers starts it). They are found through
//
//	BEDS_TEST_MARIADB_PRIMARY_DSN   root@tcp(127.0.0.1:3310)/
//	BEDS_TEST_MARIADB_REPLICA_DSNS  root@tcp(127.0.0.1:3311)/  (comma-separated)
//
// Tests that stop and start the replica do it with the script, which must
// then describe the same nodes (its BEDS_REPLICAS_* variables).

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

const startReplicas = "scripts/mariadb-replicas.sh start (make servers runs it), " +
	"or set BEDS_TEST_MARIADB_PRIMARY_DSN and BEDS_TEST_MARIADB_REPLICA_DSNS"

// servedTemplate reads vw_srv, one row naming the server that answered.
const servedTemplate = `
name = "served"
tla = "srv"
kind = "rec"
store = "mariadb"

[fields]
id     = { type = "int", key = true }
server = { type = "int" }

[objects]
read = "vw_srv"

[ops]
allow = ["read", "count"]
`

const servedSQL = `
CREATE FUNCTION fn_srv_server() RETURNS INT UNSIGNED NOT DETERMINISTIC NO SQL RETURN @@server_id;
CREATE VIEW vw_srv AS SELECT 1 AS srv_id, fn_srv_server() AS srv_server;
`

// cluster is a test database on the primary, replicated to the replicas.
type cluster struct {
	primary  string   // DSN of the test database on the primary
	replicas []string // DSNs of the same database on the replicas
	ids      []int64  // server_id of the primary, then of each replica
	admin    *sql.DB  // the primary, no database
	radmin   []*sql.DB
}

func replicaEnv(t *testing.T) *cluster {
	t.Helper()
	pbase := os.Getenv("BEDS_TEST_MARIADB_PRIMARY_DSN")
	if pbase == "" {
		pbase = "root@tcp(127.0.0.1:3310)/"
	}
	rbases := os.Getenv("BEDS_TEST_MARIADB_REPLICA_DSNS")
	if rbases == "" {
		rbases = "root@tcp(127.0.0.1:3311)/"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &cluster{}
	open := func(dsn string) *sql.DB {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		t.Cleanup(func() { db.Close() })
		var id int64
		if err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
			if testing.Short() {
				t.Skipf("MariaDB primary and replica not reachable (-short): %v", err)
			}
			t.Fatalf("MariaDB at %s is not reachable: %v\nStart the primary and replica: %s", dsn, err, startReplicas)
		}
		c.ids = append(c.ids, id)
		return db
	}
	c.admin = open(pbase)
	for _, r := range strings.Split(rbases, ",") {
		c.radmin = append(c.radmin, open(r))
	}

	name := testenv.Name("beds_test_")
	if _, err := c.admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := c.admin.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	withDB := func(base string) string {
		cfg, err := mysql.ParseDSN(base)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DBName = name
		return cfg.FormatDSN()
	}
	c.primary = withDB(pbase)
	for _, r := range strings.Split(rbases, ",") {
		c.replicas = append(c.replicas, withDB(r))
	}
	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), "deploy", "mariadb", "*.sql"))
	extra := filepath.Join(t.TempDir(), "served.sql")
	if err := os.WriteFile(extra, []byte(servedSQL), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testenv.ApplySQL(ctx, c.primary, append(files, extra)...); err != nil {
		t.Fatal(err)
	}
	c.caughtUp(t)
	return c
}

// caughtUp waits until every replica has applied all the primary wrote.
func (c *cluster) caughtUp(t *testing.T) {
	t.Helper()
	var pos string
	if err := c.admin.QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	for i, r := range c.radmin {
		var res int
		if err := r.QueryRow("SELECT MASTER_GTID_WAIT(?, 60)", pos).Scan(&res); err != nil || res != 0 {
			t.Fatalf("replica %d did not reach the primary's position %s within 60 s (%d, %v): is it replicating? %s",
				i+1, pos, res, err, "scripts/mariadb-replicas.sh status")
		}
	}
}

// rounds counts the store's rounds of replica checks.
type rounds struct {
	n    atomic.Int64
	tick chan struct{}
}

func newRounds() *rounds { return &rounds{tick: make(chan struct{}, 1)} }

func (r *rounds) done() {
	r.n.Add(1)
	select {
	case r.tick <- struct{}{}:
	default:
	}
}

// await waits until k more rounds than now have ended: with k = 2, one
// round began after the call.
func (r *rounds) await(t *testing.T, k int64) {
	t.Helper()
	target := r.n.Load() + k
	guard := time.After(time.Minute) // a hung checker, not a slow one
	for r.n.Load() < target {
		select {
		case <-r.tick:
		case <-guard:
			t.Fatal("the replica checks stopped")
		}
	}
}

// logBuf collects a store's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openReplicated(t *testing.T, c *cluster, check time.Duration, maxLag time.Duration) (*Store, *rounds, *logBuf) {
	t.Helper()
	rs, logs := newRounds(), &logBuf{}
	s, err := Open(Config{
		DSN: c.primary, Replicas: c.replicas, MaxConns: 8, Check: check, MaxLag: maxLag,
		Log: slog.New(slog.NewTextHandler(logs, nil)), onCheck: rs.done,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, rs, logs
}

func servedTpl(t *testing.T) *template.Template {
	t.Helper()
	tpl, err := template.Parse("served_rec.toml", []byte(servedTemplate), map[string]string{"mariadb": "mariadb"})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// served reads vw_srv through s and returns the server_id that answered.
func served(ctx context.Context, s *Store, tpl *template.Template) (int64, error) {
	req, err := wire.DecodeRequest([]byte(`{"template":"served","op":"read"}`))
	if err != nil {
		return 0, err
	}
	q, err := store.Build(tpl, testenv.Name("ev-"), req, store.DefaultLimits)
	if err != nil {
		return 0, err
	}
	res, err := s.Exec(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(res.Rows) != 1 {
		return 0, fmt.Errorf("%d rows", len(res.Rows))
	}
	id, ok := res.Rows[0]["server"].(int64)
	if !ok {
		return 0, fmt.Errorf("server %T %v", res.Rows[0]["server"], res.Rows[0]["server"])
	}
	return id, nil
}

func mustServe(t *testing.T, s *Store, tpl *template.Template) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := served(ctx, s, tpl)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestReplicaServesReads: reads and counts are answered by the replica,
// writes and the reads of their transactions by the primary.
func TestReplicaServesReads(t *testing.T) {
	c := replicaEnv(t)
	s, rs, _ := openReplicated(t, c, 200*time.Millisecond, 5*time.Second)
	rs.await(t, 1)
	srv := servedTpl(t)
	if got := mustServe(t, s, srv); got != c.ids[1] {
		t.Fatalf("read answered by server %d, want the replica's %d (primary %d)", got, c.ids[1], c.ids[0])
	}

	users := repoUsers(t)
	calls := func(db *sql.DB) int64 {
		var name string
		var n int64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Com_call_procedure'").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pBefore, rBefore := calls(c.admin), calls(c.radmin[0])
	res, err := run(t, s, users, `{"template":"users","op":"create","data":{"email":"w@example.com"}}`)
	if err != nil {
		t.Fatal(err)
	}
	// On the primary as soon as the write answered, replicated or not.
	var email string
	if err := c.admin.QueryRow("SELECT usr_email FROM `"+dbName(t, c.primary)+"`.tbl_usr WHERE usr_id = ?", res.Key).Scan(&email); err != nil {
		t.Fatalf("the create is not on the primary: %v", err)
	}
	if _, err := run(t, s, users, `{"template":"users","op":"update","filter":{"email":"w@example.com"},"data":{"age":7}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, s, users, `{"template":"users","op":"delete","filter":{"email":"w@example.com"}}`); err != nil {
		t.Fatal(err)
	}
	if got := calls(c.admin) - pBefore; got < 3 {
		t.Errorf("the primary ran %d procedure calls, want the 3 writes'", got)
	}
	if got := calls(c.radmin[0]) - rBefore; got != 0 {
		t.Errorf("the replica ran %d procedure calls: writes must stay on the primary", got)
	}
	c.caughtUp(t)
	res, err = run(t, s, users, `{"template":"users","op":"count"}`)
	if err != nil || res.Count != 0 {
		t.Fatalf("count on the replica: %+v %v", res, err)
	}
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.DBName
}

// replicaScript runs scripts/mariadb-replicas.sh with args.
func replicaScript(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(testenv.Root(t), "scripts", "mariadb-replicas.sh")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-replicas.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("mariadb-replicas.sh %s:\n%s", strings.Join(args, " "), out)
}

// load reads from several goroutines until stopped, counting who answered
// and every error.
type load struct {
	byServer sync.Map // server_id -> *atomic.Int64
	errs     atomic.Int64
	firstErr atomic.Value
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

func startLoad(s *Store, tpl *template.Template, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				id, err := served(rctx, s, tpl)
				rcancel()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					l.errs.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				n, _ := l.byServer.LoadOrStore(id, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		}()
	}
	return l
}

func (l *load) count(id int64) int64 {
	if n, ok := l.byServer.Load(id); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// until waits for cond, which the load makes true, guarded against a
// hang.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	guard := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(guard) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaStoppedUnderLoad stops the replica's server, shut down or
// killed, while several goroutines read: no read fails (the primary
// answers them), and reads go back to the replica once it runs again.
func TestReplicaStoppedUnderLoad(t *testing.T) {
	c := replicaEnv(t)
	if len(c.replicas) != 1 {
		t.Skip("stops replica 1 of the script; run with one replica")
	}
	srv := servedTpl(t)
	primary, replica := c.ids[0], c.ids[1]
	for _, stop := range []string{"stop-replica", "kill-replica"} {
		t.Run(stop, func(t *testing.T) {
			s, rs, logs := openReplicated(t, c, 200*time.Millisecond, 5*time.Second)
			rs.await(t, 1)
			l := startLoad(s, srv, 6)
			defer func() { l.stop(); l.wg.Wait() }()

			until(t, "reads answered by the replica", func() bool { return l.count(replica) >= 50 })
			t.Cleanup(func() { replicaScript(t, "start-replica", "1") }) // whatever happens below
			replicaScript(t, stop, "1")
			p0 := l.count(primary)
			until(t, "reads answered by the primary while the replica is down", func() bool { return l.count(primary) >= p0+200 })
			replicaScript(t, "start-replica", "1")
			r0 := l.count(replica)
			until(t, "reads back on the replica", func() bool { return l.count(replica) >= r0+50 })
			l.stop()
			l.wg.Wait()
			if n := l.errs.Load(); n > 0 {
				t.Errorf("%d reads failed, the first: %v", n, l.firstErr.Load())
			}
			out := logs.String()
			t.Logf("answered: primary %d, replica %d; the store's log:\n%s", l.count(primary), l.count(replica), out)
			if !strings.Contains(out, "replica lost") && !strings.Contains(out, "replica skipped") {
				t.Errorf("no log line says the replica went out of use:\n%s", out)
			}
			if strings.Count(out, "replica in use") < 2 {
				t.Errorf("no log line says the replica is back:\n%s", out)
			}
		})
	}
}

// TestReplicaPrivilege: the replica's account needs REPLICA MONITOR to be
// checked, as the docs say; REPLICATION CLIENT is not enough, and the log
// says what to grant.
func TestReplicaPrivilege(t *testing.T) {
	c := replicaEnv(t)
	r := c.radmin[0]
	db := dbName(t, c.replicas[0])
	for _, tc := range []struct {
		grant string
		fit   bool
	}{
		{"REPLICA MONITOR", true},
		{"REPLICATION CLIENT", false},
	} {
		t.Run(tc.grant, func(t *testing.T) {
			user := testenv.Name("beds_rd_")
			conn, err := r.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Accounts of the replica alone: not in its binary log.
			for _, stmt := range []string{
				"SET SESSION sql_log_bin = 0",
				"CREATE USER '" + user + "'@'127.0.0.1' IDENTIFIED BY 'pw-" + user + "'",
				"GRANT SELECT ON `" + db + "`.* TO '" + user + "'@'127.0.0.1'",
				"GRANT " + tc.grant + " ON *.* TO '" + user + "'@'127.0.0.1'",
			} {
				if _, err := conn.ExecContext(context.Background(), stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			t.Cleanup(func() {
				if _, err := r.Exec("DROP USER IF EXISTS '" + user + "'@'127.0.0.1'"); err != nil {
					t.Log(err)
				}
			})
			cfg, err := mysql.ParseDSN(c.replicas[0])
			if err != nil {
				t.Fatal(err)
			}
			cfg.User, cfg.Passwd = user, "pw-"+user
			rs, logs := newRounds(), &logBuf{}
			s, err := Open(Config{DSN: c.primary, Replicas: []string{cfg.FormatDSN()}, Check: time.Hour,
				Log: slog.New(slog.NewTextHandler(logs, nil)), onCheck: rs.done})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rs.await(t, 1)
			want := c.ids[0]
			if tc.fit {
				want = c.ids[1]
			}
			if got := mustServe(t, s, servedTpl(t)); got != want {
				t.Errorf("answered by %d, want %d\n%s", got, want, logs.String())
			}
			if out := logs.String(); !tc.fit && !strings.Contains(out, "GRANT REPLICA MONITOR") {
				t.Errorf("the log does not say what to grant:\n%s", out)
			}
			if strings.Contains(logs.String(), "pw-") {
				t.Errorf("the log shows the password:\n%s", logs.String())
			}
		})
	}
}

// TestReplicationStopped stops replication on the replica, whole or one
// thread: its lag is unknown and it is skipped from the next check; after
// START SLAVE it serves reads again.
func TestReplicationStopped(t *testing.T) {
	c := replicaEnv(t)
	srv := servedTpl(t)
	for _, stop := range []string{"STOP SLAVE", "STOP SLAVE SQL_THREAD", "STOP SLAVE IO_THREAD"} {
		t.Run(stop, func(t *testing.T) {
			s, rs, logs := openReplicated(t, c, 100*time.Millisecond, 5*time.Second)
			rs.await(t, 1)
			if got := mustServe(t, s, srv); got != c.ids[1] {
				t.Fatalf("before: answered by %d, want the replica %d", got, c.ids[1])
			}
			r := c.radmin[0]
			t.Cleanup(func() {
				if _, err := r.Exec("START SLAVE"); err != nil {
					t.Errorf("START SLAVE: %v", err)
				}
			})
			if _, err := r.Exec(stop); err != nil {
				t.Fatal(err)
			}
			rs.await(t, 2) // one whole round after the stop
			if got := mustServe(t, s, srv); got != c.ids[0] {
				t.Fatalf("replication stopped: answered by %d, want the primary %d", got, c.ids[0])
			}
			if out := logs.String(); !strings.Contains(out, "replica skipped") || !strings.Contains(out, "not replicating") {
				t.Errorf("no log line says why the replica is skipped:\n%s", out)
			}
			if _, err := r.Exec("START SLAVE"); err != nil {
				t.Fatal(err)
			}
			waitReplicating(t, r)
			rs.await(t, 2)
			if got := mustServe(t, s, srv); got != c.ids[1] {
				t.Fatalf("replication started again: answered by %d, want the replica %d", got, c.ids[1])
			}
		})
	}
}

// waitReplicating waits until both threads of the replica run.
func waitReplicating(t *testing.T, r *sql.DB) {
	t.Helper()
	until(t, "replication threads running", func() bool {
		rows, err := r.Query("SHOW SLAVE STATUS")
		if err != nil {
			return false
		}
		st, err := scanStatus(rows)
		return err == nil && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes"
	})
}

// TestReplicaLagging holds a row lock on the replica that the primary's
// next change of that row needs, so the replica's SQL thread waits and
// its lag grows past the bound: it is skipped, and used again once the
// lock is gone and it has caught up.
func TestReplicaLagging(t *testing.T) {
	c := replicaEnv(t)
	srv := servedTpl(t)
	db := "`" + dbName(t, c.primary) + "`"
	if _, err := c.admin.Exec("INSERT INTO " + db + ".tbl_usr (usr_email) VALUES ('lag@example.com')"); err != nil {
		t.Fatal(err)
	}
	c.caughtUp(t)
	s, rs, logs := openReplicated(t, c, 100*time.Millisecond, time.Second)
	rs.await(t, 1)
	if got := mustServe(t, s, srv); got != c.ids[1] {
		t.Fatalf("before: answered by %d, want the replica %d", got, c.ids[1])
	}

	ctx := context.Background()
	lock, err := c.radmin[0].Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	rollback := sync.OnceFunc(func() { _, _ = lock.ExecContext(ctx, "ROLLBACK") })
	defer rollback()
	if _, err := lock.ExecContext(ctx, "SELECT usr_id FROM "+db+".tbl_usr WHERE usr_email = 'lag@example.com' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.Exec("UPDATE " + db + ".tbl_usr SET usr_age = 1 WHERE usr_email = 'lag@example.com'"); err != nil {
		t.Fatal(err)
	}
	until(t, "the lagging replica skipped", func() bool { return strings.Contains(logs.String(), "lagging") })
	rs.await(t, 1)
	if got := mustServe(t, s, srv); got != c.ids[0] {
		t.Fatalf("lagging replica: answered by %d, want the primary %d\n%s", got, c.ids[0], logs.String())
	}
	rollback()
	c.caughtUp(t)
	rs.await(t, 2)
	if got := mustServe(t, s, srv); got != c.ids[1] {
		t.Fatalf("caught up: answered by %d, want the replica %d", got, c.ids[1])
	}
}

// TestReplicaChecksStop: Close ends the checking goroutine and the pools'.
func TestReplicaChecksStop(t *testing.T) {
	c := replicaEnv(t)
	srv := servedTpl(t)
	settle := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	for range 3 {
		rs := newRounds()
		s, err := Open(Config{DSN: c.primary, Replicas: c.replicas, Check: 10 * time.Millisecond, onCheck: rs.done,
			Log: slog.New(slog.NewTextHandler(&logBuf{}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		rs.await(t, 3)
		mustServe(t, s, srv)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	until(t, fmt.Sprintf("goroutines back to %d", before), func() bool { return settle() <= before })
}

// TestReplicaUnfit: a replica that is not one (a database of a server
// that replicates from nowhere) or does not answer is skipped from the
// first check: the store starts, and reads go to the primary. These run
// against the machine's MariaDB only.
func TestReplicaUnfit(t *testing.T) {
	users := repoUsers(t)
	for _, tc := range []struct {
		name, replica, why string
	}{
		{"not a replica", testenv.MariaDB(t), "not a replica"},
		{"unreachable", "root@tcp(127.0.0.1:1)/beds?timeout=1s", "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := testenv.MariaDB(t)
			rs, logs := newRounds(), &logBuf{}
			s, err := Open(Config{DSN: primary, Replicas: []string{tc.replica}, MaxConns: 4, Check: 50 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(logs, nil)), onCheck: rs.done})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping with an unfit replica: %v", err)
			}
			if _, err := run(t, s, users, `{"template":"users","op":"create","data":{"email":"p@example.com"}}`); err != nil {
				t.Fatal(err)
			}
			rs.await(t, 1)
			res, err := run(t, s, users, `{"template":"users","op":"read"}`)
			if err != nil || len(res.Rows) != 1 || res.Rows[0]["email"] != "p@example.com" {
				t.Fatalf("read did not go to the primary: %+v %v", res, err)
			}
			if out := logs.String(); !strings.Contains(out, "replica skipped") || !strings.Contains(out, tc.why) {
				t.Errorf("log does not say the replica is skipped (%s):\n%s", tc.why, out)
			}
		})
	}
}

// TestReplicaLostRetried: a read on a replica that went away is answered by
// the primary, and the replica is out of use until the next check.
func TestReplicaLostRetried(t *testing.T) {
	primary := testenv.MariaDB(t)
	replica := testenv.MariaDB(t)
	cfg, err := mysql.ParseDSN(replica)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, cfg.Addr)
	cfg.Addr = proxy.Addr()
	rs, logs := newRounds(), &logBuf{}
	s, err := Open(Config{DSN: primary, Replicas: []string{cfg.FormatDSN()}, MaxConns: 4, Check: time.Hour,
		Log: slog.New(slog.NewTextHandler(logs, nil)), onCheck: rs.done})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs.await(t, 1) // the first check, which finds no replica; no other for an hour
	r := s.replicas[0]
	r.fit.Store(true) // as if checked: the server is no replica, but its database has the objects
	users := repoUsers(t)
	if _, err := run(t, s, users, `{"template":"users","op":"count"}`); err != nil {
		t.Fatal(err)
	}
	proxy.Close()
	if _, err := run(t, s, users, `{"template":"users","op":"create","data":{"email":"p@example.com"}}`); err != nil {
		t.Fatal(err)
	}
	res, err := run(t, s, users, `{"template":"users","op":"read"}`)
	if err != nil || len(res.Rows) != 1 || res.Rows[0]["email"] != "p@example.com" {
		t.Fatalf("read after the replica was lost: %+v %v", res, err)
	}
	if r.fit.Load() {
		t.Error("the lost replica is still in use")
	}
	if !strings.Contains(logs.String(), "replica lost") {
		t.Errorf("no log line says the replica was lost:\n%s", logs.String())
	}
}
