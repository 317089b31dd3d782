package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// account is a user name and password made for one test.
type account struct{ user, password string }

func newAccount(prefix string) account {
	return account{user: testenv.Name(prefix), password: testenv.Name("pw-")}
}

// script runs one of the repository's deployment scripts with bash and
// env (added to this process's PATH and HOME only), returning its
// standard output.
func script(t *testing.T, rel string, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(testenv.Root(t), filepath.FromSlash(rel)))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", rel, err, stderr.String())
	}
	return string(out)
}

// rabbitAccounts creates the nodes' and the applications' RabbitMQ users on
// the vhost of vhostURL with deploy/rabbitmq/accounts.sh (the permissions
// the deployment ships), deleted when the test ends, and returns the URLs
// they log in with.
func rabbitAccounts(t *testing.T, vhostURL string) (nodeURL, appURL string, app account) {
	t.Helper()
	u, err := url.Parse(vhostURL)
	must(t, err)
	node, app := newAccount("beds-node-"), newAccount("beds-app-")
	for _, a := range []account{node, app} {
		t.Cleanup(func() {
			if out, err := exec.Command("rabbitmqctl", "-q", "delete_user", a.user).CombinedOutput(); err != nil {
				t.Logf("delete RabbitMQ user %s: %v: %s", a.user, err, out)
			}
		})
	}
	script(t, "deploy/rabbitmq/accounts.sh", map[string]string{
		"AMQP_VHOST":     strings.TrimPrefix(u.Path, "/"),
		"AMQP_NODE_USER": node.user, "AMQP_NODE_PASSWORD": node.password,
		"AMQP_APP_USER": app.user, "AMQP_APP_PASSWORD": app.password,
	})
	as := func(a account) string {
		v := *u
		v.User = url.UserPassword(a.user, a.password)
		return v.String()
	}
	return as(node), as(app), app
}

// mariaAccounts creates the appservers' and tercero's MariaDB accounts on
// the database of rootDSN with deploy/mariadb/accounts/accounts.sh, dropped
// when the test ends, and returns their DSNs.
func mariaAccounts(t *testing.T, rootDSN string) (appDSN, terceroDSN string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(rootDSN)
	must(t, err)
	app, tercero := newAccount("beds_app_"), newAccount("beds_ter_")
	t.Cleanup(func() {
		db, err := sql.Open("mysql", rootDSN)
		if err != nil {
			return
		}
		defer db.Close()
		for _, a := range []account{app, tercero} {
			if _, err := db.Exec("DROP USER IF EXISTS '" + a.user + "'@'%'"); err != nil {
				t.Logf("drop MariaDB user %s: %v", a.user, err)
			}
		}
	})
	grants := script(t, "deploy/mariadb/accounts/accounts.sh", map[string]string{
		"MARIADB_DATABASE": cfg.DBName,
		"MARIADB_APP_USER": app.user, "MARIADB_APP_PASSWORD": app.password,
		"MARIADB_TERCERO_USER": tercero.user, "MARIADB_TERCERO_PASSWORD": tercero.password,
	})
	file := filepath.Join(t.TempDir(), "accounts.sql")
	must(t, os.WriteFile(file, []byte(grants), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, testenv.ApplySQL(ctx, rootDSN, file))
	as := func(a account) string {
		c := *cfg
		c.User, c.Passwd = a.user, a.password
		return c.FormatDSN()
	}
	return as(app), as(tercero)
}

// accessRefused reports whether err is RabbitMQ's ACCESS_REFUSED (403).
func accessRefused(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.AccessRefused
}

// TestLeastPrivilege proves the deployment's accounts on the real servers:
// the RabbitMQ users and permissions of deploy/rabbitmq/accounts.sh and the
// MariaDB accounts of deploy/mariadb/accounts/accounts.sh. An appserver
// boots as the nodes' RabbitMQ user with the appservers' MariaDB account
// (its strict schema check passes, its lineage recorder writes) and serves
// every operation to a client logged in as the applications' user; each
// account is refused what it has no business doing.
func TestLeastPrivilege(t *testing.T) {
	vhostURL := testenv.AMQP(t) // guest, every permission: the operator here
	rootDSN := testenv.MariaDB(t)
	mongoURI := testenv.Mongo(t)
	nodeURL, appURL, app := rabbitAccounts(t, vhostURL)
	appDSN, terceroDSN := mariaAccounts(t, rootDSN)

	environ := map[string]string{
		// The application's RabbitMQ user is trusted as a service with the
		// admin role, so access rules let it do everything: what is shown
		// here is what RabbitMQ and MariaDB allow.
		"BEDS_CONFIG_DIR":   trustingConfigDir(t, app.user),
		"BEDS_TEMPLATE_DIR": filepath.Join(testenv.Root(t), "templates"),
		"BEDS_AMQP_URL":     nodeURL,
		"BEDS_MARIADB_DSN":  appDSN,
		"BEDS_MONGO_URI":    mongoURI,
		"BEDS_HTTP_ADDR":    "127.0.0.1:0",
		"BEDS_NODE_NAME":    "least-privilege",
		"BEDS_LOG_LEVEL":    "warn",
	}
	n := startNode(t, environ)
	if got := n.Runtime().Config.Templates.Check; got != "strict" {
		t.Fatalf("templates.check %q: the schema check must be strict to prove it passes", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, appURL, client.Options{Name: "least-privilege"})
	must(t, err)
	defer c.Close()

	t.Run("app user: every operation on mariadb", func(t *testing.T) { crudSuite(t, c, usersCase) })
	t.Run("app user: every operation on mongo", func(t *testing.T) { crudSuite(t, c, profilesCase) })
	t.Run("lineage recorded and read", func(t *testing.T) {
		r := do(t, c, `{"template":"users","op":"create","data":{"email":"trail@example.com"}}`)
		deadline := time.Now().Add(20 * time.Second)
		for {
			l, err := call(c, fmt.Sprintf(`{"op":"lineage","event":%q}`, r.Event))
			if err == nil && l.Lineage != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lineage of %s not readable within 20s: %v", r.Event, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	operator := testenv.Channel(t, vhostURL)
	t.Run("dead letters", func(t *testing.T) {
		// Unroutable (the alternate exchange) and a request the node
		// dead-letters (it publishes to beds.dlx) both reach beds.dead.
		ch := testenv.Channel(t, appURL)
		for _, key := range []string{"nobody.listens", wire.RouteRead} {
			must(t, ch.PublishWithContext(ctx, wire.Exchange, key, false, false, amqp.Publishing{
				Body: []byte("not a request"), MessageId: key}))
			d := testenv.Next(t, operator, wire.DeadQueue, 20*time.Second)
			if d.MessageId != key {
				t.Errorf("beds.dead got %q, want %q", d.MessageId, key)
			}
		}
	})

	t.Run("app user refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			do   func(ch *amqp.Channel) error
		}{
			{"consume beds.events", func(ch *amqp.Channel) error {
				_, err := ch.Consume(wire.EventsQueue, "", false, false, false, false, nil)
				return err
			}},
			{"consume beds.tercero", func(ch *amqp.Channel) error {
				_, err := ch.Consume(wire.TerceroQueue, "", false, false, false, false, nil)
				return err
			}},
			{"get from beds.dead", func(ch *amqp.Channel) error { _, _, err := ch.Get(wire.DeadQueue, true); return err }},
			{"purge beds.events", func(ch *amqp.Channel) error { _, err := ch.QueuePurge(wire.EventsQueue, false); return err }},
			{"declare a queue", func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare("app-own", false, true, false, false, nil)
				return err
			}},
			{"declare a server-named queue", func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare("", false, true, true, false, nil)
				return err
			}},
			{"declare an exchange", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("app-own", amqp.ExchangeFanout, false, true, false, false, nil)
			}},
			{"delete beds.events", func(ch *amqp.Channel) error {
				_, err := ch.QueueDelete(wire.EventsQueue, false, false, false)
				return err
			}},
			{"publish to the default exchange", func(ch *amqp.Channel) error {
				return publishConfirmed(ctx, ch, "", wire.EventsQueue)
			}},
			{"publish to beds.dlx", func(ch *amqp.Channel) error { return publishConfirmed(ctx, ch, wire.DeadExchange, "") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.do(testenv.Channel(t, appURL)); !accessRefused(err) {
					t.Errorf("%v, want ACCESS_REFUSED", err)
				}
			})
		}
	})

	t.Run("node user refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			do   func(ch *amqp.Channel) error
		}{
			{"declare another queue", func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare("other", true, false, false, false, nil)
				return err
			}},
			{"consume beds.dead", func(ch *amqp.Channel) error {
				_, err := ch.Consume(wire.DeadQueue, "", false, false, false, false, nil)
				return err
			}},
			{"publish to amq.topic", func(ch *amqp.Channel) error { return publishConfirmed(ctx, ch, "amq.topic", "x") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.do(testenv.Channel(t, nodeURL)); !accessRefused(err) {
					t.Errorf("%v, want ACCESS_REFUSED", err)
				}
			})
		}
	})

	t.Run("mariadb accounts refused", func(t *testing.T) {
		appDB := openDB(t, appDSN)
		terceroDB := openDB(t, terceroDSN)
		for _, tc := range []struct {
			name  string
			db    *sql.DB
			query string
		}{
			{"app: a template's table", appDB, "SELECT * FROM tbl_usr LIMIT 1"},
			{"app: write a template's table", appDB, "DELETE FROM tbl_usr"},
			{"app: write through a view", appDB, "DELETE FROM vw_usr"},
			{"app: tercero's accounts", appDB, "SELECT * FROM vw_acc LIMIT 1"},
			{"app: tercero's sessions", appDB, "SELECT * FROM vw_ses LIMIT 1"},
			{"app: tercero's procedure", appDB, "CALL sp_acc_create('x', 'x', '[]', 0, NOW())"},
			{"app: DDL", appDB, "CREATE TABLE app_own (id INT)"},
			{"app: drop a view", appDB, "DROP VIEW vw_usr"},
			{"app: change the event record", appDB, "DELETE FROM beds_events"},
			{"app: purge lineage", appDB, "DELETE FROM beds_lineage"},
			{"tercero: the application's view", terceroDB, "SELECT * FROM vw_usr LIMIT 1"},
			{"tercero: the application's procedure", terceroDB, "CALL sp_usr_delete(1)"},
			{"tercero: a table", terceroDB, "SELECT * FROM tbl_usr LIMIT 1"},
			{"tercero: DDL", terceroDB, "CREATE TABLE tercero_own (id INT)"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := tc.db.ExecContext(ctx, tc.query)
				var me *mysql.MySQLError
				// 1142 table, 1370 routine, 1044 database access denied.
				if !errors.As(err, &me) || (me.Number != 1142 && me.Number != 1370 && me.Number != 1044) {
					t.Errorf("%s: %v, want access denied", tc.query, err)
				}
			})
		}
		// What each may do, as a check that the refusals above are about
		// rights and not a broken account.
		for _, q := range []struct {
			db    *sql.DB
			query string
		}{
			{appDB, "SELECT COUNT(*) FROM vw_usr"},
			{appDB, "SELECT COUNT(*) FROM beds_events"},
			{terceroDB, "SELECT COUNT(*) FROM beds_events"},
			{terceroDB, "SELECT COUNT(*) FROM beds_lineage"},
		} {
			var n int
			if err := q.db.QueryRowContext(ctx, q.query).Scan(&n); err != nil {
				t.Errorf("%s: %v", q.query, err)
			}
		}
		// Tercero's own views, once deploy/mariadb holds them
		// (005_tercero.sql): its account reads them.
		root := openDB(t, rootDSN)
		seen := 0
		for _, v := range []string{"vw_acc", "vw_ses", "vw_flr"} {
			var exists int
			must(t, root.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", v).Scan(&exists))
			if exists == 0 {
				continue
			}
			seen++
			var n int
			if err := terceroDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+v).Scan(&n); err != nil {
				t.Errorf("tercero: SELECT from %s: %v", v, err)
			}
		}
		if seen == 0 {
			t.Log("no tercero objects in deploy/mariadb: its own grants are not exercised here")
		}
	})
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	must(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// publishConfirmed publishes an empty message in confirm mode and returns
// the error RabbitMQ closes the channel with, if it does, before it
// confirms.
func publishConfirmed(ctx context.Context, ch *amqp.Channel, exchange, key string) error {
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Confirm(false); err != nil {
		return err
	}
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{})
	if err != nil {
		return err
	}
	select {
	case e := <-closed:
		if e == nil {
			return errors.New("channel closed without an error")
		}
		return e
	case <-conf.Done():
		select { // a refusal closes the channel, which also ends the wait
		case e := <-closed:
			if e != nil {
				return e
			}
		default:
		}
		return fmt.Errorf("published and confirmed (acked %v)", conf.Acked())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trustingConfigDir is configDir whose development layer also trusts
// RabbitMQ user as an admin service: TOML takes the [access.trusted]
// table once, so the entry goes into the repository's own.
func trustingConfigDir(t *testing.T, user string) string {
	t.Helper()
	dir := configDir(t, "")
	path := filepath.Join(dir, "env_dev.toml")
	dev, err := os.ReadFile(path)
	must(t, err)
	const header = "[access.trusted]\n"
	if !strings.Contains(string(dev), header) {
		t.Fatalf("%s has no %q table to add %s to", path, strings.TrimSpace(header), user)
	}
	entry := fmt.Sprintf("%q = [\"admin\"]\n", user)
	must(t, os.WriteFile(path, []byte(strings.Replace(string(dev), header, header+entry, 1)), 0o644))
	return dir
}
