package testenv

// The Docker path: servers in containers, for a machine with a Docker engine
// and no local servers. This project's CI has no Docker engine, so CI never
// runs this file's containers; only expiry and the base addresses are
// unit-tested. Keep it small.
//
// Each server's container starts once per test binary, on first use, and
// serves every test of the binary (each test still gets its own vhost or
// database). A library has no hook for "the test binary ends", so the
// containers are not removed by the tests: dockertest's Expire stops each
// one -test.timeout plus a minute after it started (an hour without a
// timeout), and AutoRemove then deletes it. Leftovers, if any, carry the
// label beds-testenv: docker rm -f $(docker ps -aq --filter label=beds-testenv)

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// pool is the connection to the Docker engine, or why there is none.
var pool = sync.OnceValues(func() (*dockertest.Pool, error) {
	p, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Client.PingWithContext(ctx); err != nil {
		return nil, err
	}
	p.MaxWait = 3 * time.Minute // a first run pulls the image
	return p, nil
})

func dockerUp() bool {
	_, err := pool()
	return err == nil
}

// image is one server's container: the same images as docker-compose.yml,
// so one pull serves both.
type image struct {
	repo, tag string
	env       []string
	port      string                  // the server's port, "5672/tcp"
	base      string                  // the base address; %s is the published host:port
	ready     func(base string) error // nil once the server answers
}

var (
	rabbitImage = image{repo: "rabbitmq", tag: "3.13-management", port: "5672/tcp",
		base: "amqp://guest:guest@%s/", ready: func(base string) error {
			c, err := amqp.Dial(base)
			if err != nil {
				return err
			}
			return c.Close()
		}}
	mariaImage = image{repo: "mariadb", tag: "10.11", env: []string{"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1"},
		port: "3306/tcp", base: "root@tcp(%s)/", ready: func(base string) error {
			db, err := sql.Open("mysql", base)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return db.PingContext(ctx)
		}}
	mongoImage = image{repo: "mongo", tag: "7.0", port: "27017/tcp",
		base: "mongodb://%s/", ready: func(base string) error {
			c, err := mongo.Connect(options.Client().ApplyURI(base).SetServerSelectionTimeout(5 * time.Second))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			defer c.Disconnect(ctx)
			return c.Ping(ctx, nil)
		}}
)

// started is a running container and its server's base address.
type started struct {
	r    *dockertest.Resource
	base string
}

func (im image) run() (started, error) {
	p, err := pool()
	if err != nil {
		return started{}, err
	}
	r, err := p.RunWithOptions(&dockertest.RunOptions{Repository: im.repo, Tag: im.tag, Env: im.env,
		Labels: map[string]string{"beds-testenv": "1"}}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return started{}, fmt.Errorf("testenv: docker run %s:%s: %w", im.repo, im.tag, err)
	}
	_ = r.Expire(expiry(testTimeout()))
	c := started{r: r, base: fmt.Sprintf(im.base, r.GetHostPort(im.port))}
	if err := p.Retry(func() error { return im.ready(c.base) }); err != nil {
		_ = p.Purge(r)
		return started{}, fmt.Errorf("testenv: %s:%s did not answer at %s: %w", im.repo, im.tag, c.base, err)
	}
	return c, nil
}

var (
	rabbitC = sync.OnceValues(rabbitImage.run)
	mariaC  = sync.OnceValues(mariaImage.run)
	mongoC  = sync.OnceValues(mongoImage.run)
)

func container(t testing.TB, once func() (started, error)) started {
	t.Helper()
	c, err := once()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rabbitMQ(t testing.TB) (*url.URL, started) {
	t.Helper()
	c := container(t, rabbitC)
	u, err := url.Parse(c.base)
	if err != nil {
		t.Fatal(err)
	}
	return u, c
}

func mariaDB(t testing.TB) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(container(t, mariaC).base)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mongoDB(t testing.TB) *url.URL {
	t.Helper()
	u, err := url.Parse(container(t, mongoC).base)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// rabbitmqctl runs rabbitmqctl -q args inside the container.
func (c started) rabbitmqctl(args ...string) error {
	var out bytes.Buffer
	code, err := c.r.Exec(append([]string{"rabbitmqctl", "-q"}, args...), dockertest.ExecOptions{StdOut: &out, StdErr: &out})
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d", code)
	}
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s (in the container): %w: %s", strings.Join(args, " "), err, out.Bytes())
	}
	return nil
}

// expiry is how many seconds a container may live: the test binary's
// timeout plus a minute, or an hour when it has none.
func expiry(timeout time.Duration) uint {
	if timeout <= 0 {
		return 3600
	}
	return uint((timeout + time.Minute + time.Second - 1) / time.Second)
}

// testTimeout is the running test binary's -test.timeout (go test's
// -timeout, 10m by default), or 0.
func testTimeout() time.Duration {
	if f := flag.Lookup("test.timeout"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			d, _ := g.Get().(time.Duration)
			return d
		}
	}
	return 0
}
