// Package testenv gives integration tests real servers with names of their
// own, so runs never collide and leave nothing behind.
//
// Servers are found through environment variables with the local defaults
// of a development machine:
//
//	BEDS_TEST_AMQP_URL     amqp://guest:guest@127.0.0.1:5672/
//	BEDS_TEST_MARIADB_DSN  root@tcp(127.0.0.1:3306)/
//	BEDS_TEST_MONGO_URI    mongodb://127.0.0.1:27017/
//
// A server named by its variable is the one used, with no fallback.
// Otherwise the local default is used if it answers; if it does not and a
// Docker engine answers, the server runs in a container started through
// dockertest (docker.go); the rule is [choose]. A server found nowhere fails
// the test with a message saying how to start it; under -short the test is
// skipped instead, and -short never starts containers. This project's CI
// has no Docker engine: it exercises the local path only.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/beds-project/beds/shared/store/mongo/script"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Name returns a fresh name with prefix, safe as a database or vhost name.
func Name(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Root returns the repository root (the folder holding go.work).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.work above the test's folder")
		}
		dir = parent
	}
}

func need(t testing.TB, what, addr, howto string) {
	t.Helper()
	if err := dial(addr); err != nil {
		unreachable(t, what, addr, err, howto)
	}
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func unreachable(t testing.TB, what, addr string, err error, howto string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s at %s is not reachable (-short): %v", what, addr, err)
	}
	t.Fatalf("%s at %s is not reachable: %v\nStart it: %s", what, addr, err, howto)
}

// source is where a test's server comes from.
type source int

const (
	fromEnv    source = iota // its environment variable names it
	fromLocal                // the local default answers
	fromDocker               // a container started through dockertest
	missing                  // nowhere: fail, or skip under -short
)

// choose picks where a server comes from: the environment variable if it
// is set, else the local default if it answers, else a container if a
// Docker engine answers and the run is not -short, else nowhere.
func choose(configured, localReachable, short, dockerAvailable bool) source {
	switch {
	case configured:
		return fromEnv
	case localReachable:
		return fromLocal
	case !short && dockerAvailable:
		return fromDocker
	default:
		return missing
	}
}

// locate applies choose to the server at addr, probing only what the choice
// needs. It fails or skips t as need does when the server is nowhere.
func locate(t testing.TB, key, what, addr, howto string) source {
	t.Helper()
	configured := os.Getenv(key) != ""
	var err error
	if !configured {
		err = dial(addr)
	}
	short := testing.Short()
	docker := !configured && err != nil && !short && dockerUp()
	from := choose(configured, !configured && err == nil, short, docker)
	switch from {
	case fromEnv:
		need(t, what, addr, howto)
	case missing:
		unreachable(t, what, addr, err, howto+"\nOr start a Docker engine: testenv then runs it in a container.")
	}
	return from
}

// AMQP returns the URL of a new RabbitMQ virtual host for this test, made
// with rabbitmqctl (inside the container on the Docker path) and deleted
// when the test ends.
func AMQP(t testing.TB) string {
	t.Helper()
	base := env("BEDS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("BEDS_TEST_AMQP_URL: %v", err)
	}
	var ctl func(args ...string) error
	if locate(t, "BEDS_TEST_AMQP_URL", "RabbitMQ", u.Host, "rabbitmq-server -detached (or set BEDS_TEST_AMQP_URL)") == fromDocker {
		var c started
		u, c = rabbitMQ(t)
		ctl = c.rabbitmqctl
	} else {
		if _, err := exec.LookPath("rabbitmqctl"); err != nil {
			t.Fatalf("testenv: rabbitmqctl is needed to make a vhost per test: %v", err)
		}
		ctl = func(args ...string) error {
			out, err := exec.Command("rabbitmqctl", append([]string{"-q"}, args...)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, out)
			}
			return nil
		}
	}
	vhost := Name("beds-test-")
	user := u.User.Username()
	if err := ctl("add_vhost", vhost); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ctl("delete_vhost", vhost); err != nil {
			t.Log(err)
		}
	})
	if err := ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"); err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + vhost
	return u.String()
}

// MariaDB creates a database for this test, applies every
// deploy/mariadb/*.sql file to it in name order, and returns its DSN. The
// database is dropped when the test ends.
func MariaDB(t testing.TB) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(Root(t), "deploy", "mariadb", "*.sql"))
	return MariaDBWith(t, files...)
}

// MariaDBWith is MariaDB with the given script files applied instead of
// deploy/mariadb/*.sql (none: an empty database), in the order given.
func MariaDBWith(t testing.TB, files ...string) string {
	t.Helper()
	base := env("BEDS_TEST_MARIADB_DSN", "root@tcp(127.0.0.1:3306)/")
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("BEDS_TEST_MARIADB_DSN: %v", err)
	}
	if locate(t, "BEDS_TEST_MARIADB_DSN", "MariaDB", cfg.Addr, "make servers (or set BEDS_TEST_MARIADB_DSN)") == fromDocker {
		cfg = mariaDB(t)
	}
	name := Name("beds_test_")
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	dsn := cfg.FormatDSN()
	if err := ApplySQL(ctx, dsn, files...); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// ApplySQL runs SQL script files as the mariadb command-line client would,
// honouring DELIMITER lines so procedure bodies stay whole.
func ApplySQL(ctx context.Context, dsn string, files ...string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		for _, stmt := range SplitSQL(string(src)) {
			if _, err := db.ExecContext(ctx, stmt.Text); err != nil {
				return fmt.Errorf("%s:%d: %w", file, stmt.Line, err)
			}
		}
	}
	return nil
}

// Statement is one statement of a script and the line it starts on.
type Statement struct {
	Text string
	Line int
}

// SplitSQL splits a script into statements at its current delimiter (";"
// until a DELIMITER line changes it). Comment-only lines are dropped. It
// does not parse quotes: delimiters inside string literals are not
// supported, which the project's scripts respect.
func SplitSQL(src string) []Statement {
	var out []Statement
	delim := ";"
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, Statement{Text: s, Line: start})
		}
		cur.Reset()
		start = 0
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(strings.ToUpper(trim), "DELIMITER ") {
			flush()
			delim = strings.TrimSpace(trim[len("DELIMITER "):])
			continue
		}
		if cur.Len() == 0 && (trim == "" || strings.HasPrefix(trim, "--")) {
			continue
		}
		if start == 0 {
			start = n
		}
		if strings.HasSuffix(trim, delim) {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t"), delim))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

// Mongo returns the URI of a new database on the MongoDB-wire server,
// holding what deploy/mongo declares: the indexes of BEDS's own
// collections (indexes.json) and the collections, validators and indexes
// of the templates' scripts (NNN_<template>.js, in name order; init.js
// is the image's runner of indexes.json). The database is dropped
// when the test ends.
func Mongo(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Root(t), "deploy", "mongo")
	scripts, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9][0-9]_*.js"))
	return MongoWith(t, append([]string{filepath.Join(dir, "indexes.json")}, scripts...)...)
}

// MongoWith is Mongo with the given files applied instead of deploy/mongo's
// (none: an empty database), in the order given: a .json file is an index
// list in indexes.json's format (ApplyIndexes), any other a script of
// bedsctl schema gen's format (script.Apply).
func MongoWith(t testing.TB, files ...string) string {
	t.Helper()
	base := env("BEDS_TEST_MONGO_URI", "mongodb://127.0.0.1:27017/")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("BEDS_TEST_MONGO_URI: %v", err)
	}
	if locate(t, "BEDS_TEST_MONGO_URI", "MongoDB (FerretDB here)", strings.Split(u.Host, ",")[0], "bash deploy/ferretdb/run.sh start (or set BEDS_TEST_MONGO_URI)") == fromDocker {
		u = mongoDB(t)
	}
	name := Name("beds_test_")
	u.Path = "/" + name
	uri := u.String()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.Database(name).Drop(ctx); err != nil {
			t.Logf("drop mongo database %s: %v", name, err)
		}
		_ = client.Disconnect(ctx)
	})
	for _, f := range files {
		var err error
		if filepath.Ext(f) == ".json" {
			err = ApplyIndexes(ctx, client.Database(name), f)
		} else {
			err = script.Apply(ctx, client.Database(name), f)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return uri
}

// ApplyIndexes creates the indexes that file (deploy/mongo/indexes.json's
// format) declares.
func ApplyIndexes(ctx context.Context, db *mongo.Database, file string) error {
	src, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var spec map[string][]struct {
		Name   string  `json:"name"`
		Keys   [][]any `json:"keys"`
		Unique bool    `json:"unique"`
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for coll, ixs := range spec {
		for _, ix := range ixs {
			keys := bson.D{}
			for _, k := range ix.Keys {
				if len(k) != 2 {
					return fmt.Errorf("%s: index %s: a key is [field, 1 or -1]", file, ix.Name)
				}
				field, _ := k[0].(string)
				dir, _ := k[1].(json.Number).Int64()
				keys = append(keys, bson.E{Key: field, Value: dir})
			}
			model := mongo.IndexModel{Keys: keys, Options: options.Index().SetName(ix.Name).SetUnique(ix.Unique)}
			if _, err := db.Collection(coll).Indexes().CreateOne(ctx, model); err != nil {
				return fmt.Errorf("%s: index %s on %s: %w", file, ix.Name, coll, err)
			}
		}
	}
	return nil
}

// Channel opens a connection to url and a channel on it, both closed when
// the test ends: what a test needs to publish, get or declare by hand.
func Channel(t testing.TB, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("testenv: amqp %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("testenv: open channel: %v", err)
	}
	return ch
}

// TemplateFile returns the text of templates/<file> in the repository, so
// tests use the shipped templates instead of copies of them.
func TemplateFile(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), "templates", file))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return string(b)
}

// Next waits up to within for the next message of queue, taking it (auto
// ack), and fails the test if none comes.
func Next(t testing.TB, ch *amqp.Channel, queue string, within time.Duration) amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("testenv: get from %s: %v", queue, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: nothing reached %s within %s", queue, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Messages returns how many messages queue holds ready.
func Messages(t testing.TB, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("testenv: %s: %v", queue, err)
	}
	return q.Messages
}
