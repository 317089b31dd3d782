// Package config loads a node's configuration in three layers, each
// overriding the one before:
//
//  1. beds.toml in the config folder (checked in, no secrets);
//  2. env_<BEDS_ENV>.toml in the same folder, if present (never committed);
//  3. BEDS_* environment variables (the contract's table, for containers).
//
// Tables merge deeply: an env file that sets stores.mariadb.dsn keeps every
// other key of stores.mariadb from beds.toml. A key that no layer knows is an
// error naming its file, so a typo never silently falls back to a default.
// Secrets (passwords in URLs and DSNs) are redacted by String and LogValue.
// BEDS_ENV=prod refuses the credentials this repository ships for
// development (RabbitMQ's guest, compose's default passwords, accounts
// without a password), naming the key and never the password.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/mq"
	"github.com/beds-project/beds/shared/schema"
)

// Environments BEDS_ENV may name.
const (
	EnvDev  = "dev"
	EnvQA   = "qa"
	EnvProd = "prod"
)

// Store kinds.
const (
	KindMariaDB = "mariadb"
	KindMongo   = "mongo"
)

// Config is a node's whole configuration.
type Config struct {
	Env       string            `toml:"-"`
	Dir       string            `toml:"-"`
	Node      Node              `toml:"node"`
	Templates Templates         `toml:"templates"`
	HTTP      HTTP              `toml:"http"`
	AMQP      AMQP              `toml:"amqp"`
	Stores    map[string]Store  `toml:"stores"`
	Brokers   map[string]Broker `toml:"brokers"`
	Limits    Limits            `toml:"limits"`
	Fanout    Fanout            `toml:"fanout"`
	Retry     Retry             `toml:"retry"`
	Log       Log               `toml:"log"`
	Shutdown  Shutdown          `toml:"shutdown"`
	Lineage   Lineage           `toml:"lineage"`
	Access    Access            `toml:"access"`
	Tercero   Tercero           `toml:"tercero"`
	files     []string          // layers read, for the start-up log
}

// Node names this process.
type Node struct {
	Name string `toml:"name"` // default: role@hostname
}

// Templates says where template files are, and what a node does when a
// database disagrees with them.
type Templates struct {
	Dir string `toml:"dir"`
	// Check is what a node does at start-up when a store's database
	// disagrees with the templates it serves (package schema): "strict"
	// refuses to start, naming every difference; "warn" logs each and
	// starts, for a migration window.
	Check string `toml:"check"`
}

// HTTP configures the ops endpoint.
type HTTP struct {
	Addr string `toml:"addr"` // empty disables it
	// Pprof serves Go's profiles under /debug/pprof/ on the ops endpoint:
	// for measuring, never on an address others reach.
	Pprof bool `toml:"pprof"`
}

// AMQP configures the connection to RabbitMQ and the topology.
type AMQP struct {
	URL       string `toml:"url"`
	QueueType string `toml:"queue_type"` // classic or quorum
	// Addresses are the other nodes of URL's RabbitMQ cluster, each
	// host:port, reached with URL's credentials, virtual host and
	// parameters: every connection goes to one of URL's node and these,
	// and moves on to another when that one does not answer (package mq).
	Addresses []string `toml:"addresses"`
	// DeliveryLimit dead-letters a request delivered more often than this
	// (a poison message), on classic and quorum queues alike.
	DeliveryLimit int `toml:"delivery_limit"`
	// QuorumSize is how many nodes hold a replica of each quorum queue
	// (x-quorum-initial-group-size), fixed when the queue is declared;
	// 0 is RabbitMQ's default, every node of the cluster then.
	QuorumSize int `toml:"quorum_size"`
	// ReplyPrefix, when set, also admits reply_to queues whose names start
	// with it; direct reply-to (amq.rabbitmq.reply-to...) is always admitted.
	ReplyPrefix    string   `toml:"reply_prefix"`
	DeadMaxLength  int      `toml:"dead_max_length"` // messages beds.dead keeps; the oldest are dropped
	DeadTTL        Duration `toml:"dead_ttl"`        // how long beds.dead keeps a message
	ConnectTimeout Duration `toml:"connect_timeout"`
	Heartbeat      Duration `toml:"heartbeat"`
}

// Store configures one named store.
type Store struct {
	Kind string `toml:"kind"` // mariadb or mongo
	DSN  string `toml:"dsn"`  // mariadb: the primary
	// Replicas (mariadb, optional) are DSNs of servers replicating from
	// the primary. Reads and counts go to them in turn, skipping one that
	// does not answer or lags; writes, their transactions and lineage
	// stay on the primary, which also serves the reads no replica can.
	Replicas []string `toml:"replicas"`
	// ReplicaMaxLag is how far (Seconds_Behind_Master) a replica may be
	// behind and still serve reads; one that is not replicating at all is
	// skipped too. 0 means DefaultReplicaMaxLag.
	ReplicaMaxLag Duration `toml:"replica_max_lag"`
	// ReplicaCheck is how often each replica's health and lag are
	// checked; 0 means DefaultReplicaCheck.
	ReplicaCheck Duration `toml:"replica_check"`
	// SecondaryDSN is the key replicas replaced; Validate refuses it and
	// says what to write instead.
	SecondaryDSN string `toml:"secondary_dsn"`
	URI          string `toml:"uri"` // mongo
	MaxConns     int    `toml:"max_conns"`
}

// Replica defaults of a mariadb store that sets none.
const (
	DefaultReplicaMaxLag = 5 * time.Second
	DefaultReplicaCheck  = time.Second
)

// Broker configures one broker type: how many worker goroutines and how
// many unacknowledged deliveries it may hold.
type Broker struct {
	Instances int `toml:"instances"`
	Prefetch  int `toml:"prefetch"`
}

// Limits bound requests.
type Limits struct {
	MaxBody          int      `toml:"max_body"`
	MaxReply         int      `toml:"max_reply"` // bytes of one encoded reply
	DefaultLimit     int      `toml:"default_limit"`
	MaxLimit         int      `toml:"max_limit"`
	MaxOffset        int      `toml:"max_offset"`
	MaxInList        int      `toml:"max_in_list"`
	MaxAffected      int      `toml:"max_affected"`       // records one update or delete may change
	MaxLikeLength    int      `toml:"max_like_length"`    // characters of one like pattern
	MaxLikeWildcards int      `toml:"max_like_wildcards"` // % and _ in one like pattern
	MaxBatch         int      `toml:"max_batch"`          // requests in one batch
	MaxInclude       int      `toml:"max_include"`        // include paths of one read
	MaxIncludeDepth  int      `toml:"max_include_depth"`  // relations in one include path
	MaxIncludeRows   int      `toml:"max_include_rows"`   // rows one relation of an include may fetch
	MaxOperations    int      `toml:"max_operations"`     // database operations one request may fan out to
	MaxRows          int      `toml:"max_rows"`           // rows one request may read in all
	RequestTimeout   Duration `toml:"request_timeout"`    // when the caller sets no expiration
	MaxTimeout       Duration `toml:"max_timeout"`        // a longer expiration is cut to this
}

// Fanout bounds how many database operations run at once for the
// requests that fan out (a read with include, a batch).
type Fanout struct {
	Request int `toml:"request"` // at once for one request
	Node    int `toml:"node"`    // at once for all the requests of the node
}

// Retry bounds how a node retries a store that is unavailable before it
// answers unavailable.
type Retry struct {
	Attempts int      `toml:"attempts"` // tries in all, at least 1
	Backoff  Duration `toml:"backoff"`  // first pause; doubles each time
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json; default text in dev, json otherwise
}

// Shutdown bounds the graceful drain.
type Shutdown struct {
	Timeout Duration `toml:"timeout"`
}

// Lineage configures the recording of event lineage: which node handled
// which event, how it ended, and which event it was part of.
type Lineage struct {
	// Store names the store, from [stores], that lineage records are
	// written to and read from; "" records nothing.
	Store string `toml:"store"`
	// ReadSample is the fraction (0 to 1) of plain reads recorded even
	// when the request does not ask for it; writes are always recorded.
	ReadSample float64 `toml:"read_sample"`
	// Queue is how many records wait to be written at most; more are
	// dropped and counted.
	Queue int `toml:"queue"`
	// Batch is how many records one write stores at most.
	Batch int `toml:"batch"`
	// Interval is the longest a record waits for its batch to fill.
	Interval Duration `toml:"interval"`
	// MaxEvents is how many records one lineage request answers at most.
	MaxEvents int `toml:"max_events"`
}

// Access says who may run which op on which template (each template's
// [access] table, package access), and how an appserver learns who a
// caller is.
type Access struct {
	// Unlisted is what a template without an [access] table allows:
	// "deny" (only callers with the admin role), "authenticated" (any
	// caller with a session or trusted as a service) or "open" (anyone,
	// even without a session).
	Unlisted string `toml:"unlisted"`
	// Trusted maps RabbitMQ users to the roles they act with: a request
	// whose AMQP user_id property (checked by RabbitMQ against the
	// connection's user) names one needs no session.
	Trusted map[string][]string `toml:"trusted"`
	// Cache is how long an appserver keeps a session it resolved with
	// tercero: a revoked or expired session is refused at most this long
	// after it ended.
	Cache Duration `toml:"cache"`
	// CacheSize bounds the sessions an appserver keeps resolved.
	CacheSize int `toml:"cache_size"`
	// ResolveTimeout bounds the wait for tercero; past it the request is
	// answered unavailable.
	ResolveTimeout Duration `toml:"resolve_timeout"`
}

// Access.Unlisted values.
const (
	UnlistedDeny          = "deny"
	UnlistedAuthenticated = "authenticated"
	UnlistedOpen          = "open"
)

// Tercero configures the tercero role: sessions, password hashing and the
// limits on failed logins.
type Tercero struct {
	SessionTTL  Duration `toml:"session_ttl"`  // a session's absolute expiry, from login
	IdleTimeout Duration `toml:"idle_timeout"` // a session unused this long ends
	// Touch is how often at most a resolved session's idle timer is
	// restarted in the database (each restart is a write).
	Touch         Duration `toml:"touch"`
	PurgeInterval Duration `toml:"purge_interval"` // how often ended sessions and old failures are deleted
	PurgeBatch    int      `toml:"purge_batch"`    // rows one purge statement deletes at most
	Argon2        Argon2   `toml:"argon2"`
	Attempts      Attempts `toml:"attempts"`
	MinPassword   int      `toml:"min_password"` // characters a new password needs at least
}

// Argon2 are the argon2id parameters new password hashes use (RFC 9106).
// A login whose stored hash used others rehashes the password.
type Argon2 struct {
	Time      uint32 `toml:"time"`       // passes
	MemoryKiB uint32 `toml:"memory_kib"` // memory per hash
	Threads   uint8  `toml:"threads"`
	// Concurrent bounds the hashes computed at once by one node (each
	// holds memory_kib); the rest wait.
	Concurrent int `toml:"concurrent"`
}

// Attempts limits failed logins within Window: per account and per caller
// (the client a login names, else the RabbitMQ user that sent it).
type Attempts struct {
	Account int      `toml:"account"`
	Caller  int      `toml:"caller"`
	Window  Duration `toml:"window"`
}

// Enabled reports whether lineage is recorded.
func (l Lineage) Enabled() bool { return l.Store != "" }

// Duration is a time.Duration written as "30s" in TOML.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the configuration used for any key no layer sets: every
// server on localhost with the machine's stock credentials.
func Default() *Config {
	return &Config{
		Env:       EnvDev,
		Dir:       "deploy/config",
		Templates: Templates{Dir: "templates", Check: string(schema.Strict)},
		HTTP:      HTTP{Addr: "127.0.0.1:8080"},
		AMQP: AMQP{
			URL: "amqp://guest:guest@127.0.0.1:5672/", QueueType: "classic", DeliveryLimit: 5,
			DeadMaxLength: 100000, DeadTTL: Duration(7 * 24 * time.Hour),
			ConnectTimeout: Duration(5 * time.Second), Heartbeat: Duration(10 * time.Second),
		},
		Stores: map[string]Store{
			KindMariaDB: {
				Kind: KindMariaDB, DSN: "root@tcp(127.0.0.1:3306)/beds", MaxConns: 16,
				ReplicaMaxLag: Duration(DefaultReplicaMaxLag), ReplicaCheck: Duration(DefaultReplicaCheck),
			},
			KindMongo: {Kind: KindMongo, URI: "mongodb://127.0.0.1:27017/beds", MaxConns: 16},
		},
		Brokers: map[string]Broker{"dispatcher": {Instances: 16, Prefetch: 64}, "tercero": {Instances: 4, Prefetch: 16}},
		Limits: Limits{
			MaxBody: 1 << 20, MaxReply: 4 << 20, DefaultLimit: 100, MaxLimit: 1000, MaxOffset: 100000,
			MaxInList: 1000, MaxAffected: 1000, MaxLikeLength: 200, MaxLikeWildcards: 10,
			MaxBatch: 100, MaxInclude: 8, MaxIncludeDepth: 3, MaxIncludeRows: 1000,
			MaxOperations: 256, MaxRows: 10000,
			RequestTimeout: Duration(30 * time.Second), MaxTimeout: Duration(2 * time.Minute),
		},
		Fanout:   Fanout{Request: 8, Node: 64},
		Retry:    Retry{Attempts: 3, Backoff: Duration(50 * time.Millisecond)},
		Log:      Log{Level: "info"},
		Shutdown: Shutdown{Timeout: Duration(30 * time.Second)},
		Lineage: Lineage{
			Store: KindMariaDB, Queue: 10000, Batch: 256, Interval: Duration(100 * time.Millisecond), MaxEvents: 1000,
		},
		Access: Access{
			Unlisted: UnlistedDeny, Trusted: map[string][]string{},
			Cache: Duration(10 * time.Second), CacheSize: 10000, ResolveTimeout: Duration(2 * time.Second),
		},
		Tercero: Tercero{
			SessionTTL: Duration(12 * time.Hour), IdleTimeout: Duration(30 * time.Minute), Touch: Duration(time.Minute),
			PurgeInterval: Duration(time.Minute), PurgeBatch: 500, MinPassword: 12,
			Argon2:   Argon2{Time: 3, MemoryKiB: 64 * 1024, Threads: 2, Concurrent: 2},
			Attempts: Attempts{Account: 5, Caller: 20, Window: Duration(15 * time.Minute)},
		},
	}
}

// Overrides are the environment variables of the contract. Empty means
// unset.
type Overrides struct {
	Env         string `env:"BEDS_ENV"`
	ConfigDir   string `env:"BEDS_CONFIG_DIR"`
	TemplateDir string `env:"BEDS_TEMPLATE_DIR"`
	AMQPURL     string `env:"BEDS_AMQP_URL"`
	MariaDBDSN  string `env:"BEDS_MARIADB_DSN"`
	MongoURI    string `env:"BEDS_MONGO_URI"`
	NodeName    string `env:"BEDS_NODE_NAME"`
	HTTPAddr    string `env:"BEDS_HTTP_ADDR"`
	LogLevel    string `env:"BEDS_LOG_LEVEL"`
	// AMQPAddresses is amqp.addresses, comma-separated host:port.
	AMQPAddresses []string `env:"BEDS_AMQP_ADDRESSES" envSeparator:","`
}

// Load reads the configuration for role from the process environment.
func Load(role string) (*Config, error) {
	return LoadEnv(role, envMap(os.Environ()))
}

func envMap(kv []string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, e := range kv {
		if k, v, ok := strings.Cut(e, "="); ok {
			m[k] = v
		}
	}
	return m
}

// LoadEnv reads the configuration for role with environ as the environment
// (tests pass their own).
func LoadEnv(role string, environ map[string]string) (*Config, error) {
	var ov Overrides
	if err := env.ParseWithOptions(&ov, env.Options{Environment: environ}); err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	c := Default()
	if ov.Env != "" {
		c.Env = ov.Env
	}
	if !slices.Contains([]string{EnvDev, EnvQA, EnvProd}, c.Env) {
		return nil, fmt.Errorf("config: BEDS_ENV=%q: must be dev, qa or prod", c.Env)
	}
	if ov.ConfigDir != "" {
		c.Dir = ov.ConfigDir
	}
	if err := c.readFiles(); err != nil {
		return nil, err
	}
	apply(&c.Templates.Dir, ov.TemplateDir)
	apply(&c.AMQP.URL, ov.AMQPURL)
	if len(ov.AMQPAddresses) > 0 {
		c.AMQP.Addresses = nil
		for _, a := range ov.AMQPAddresses {
			if a = strings.TrimSpace(a); a != "" {
				c.AMQP.Addresses = append(c.AMQP.Addresses, a)
			}
		}
	}
	apply(&c.Node.Name, ov.NodeName)
	apply(&c.HTTP.Addr, ov.HTTPAddr)
	apply(&c.Log.Level, ov.LogLevel)
	if ov.MariaDBDSN != "" {
		s := c.Stores[KindMariaDB]
		s.DSN = ov.MariaDBDSN
		c.Stores[KindMariaDB] = s
	}
	if ov.MongoURI != "" {
		s := c.Stores[KindMongo]
		s.URI = ov.MongoURI
		c.Stores[KindMongo] = s
	}
	if c.Node.Name == "" {
		host, _ := os.Hostname()
		c.Node.Name = role + "@" + host
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
		if c.Env == EnvDev {
			c.Log.Format = "text"
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func apply(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// Files returns the config files that were read, in layer order.
func (c *Config) Files() []string { return slices.Clone(c.files) }

// Validate checks values a node cannot start with. With Env prod it also
// refuses RabbitMQ's stock user guest and the passwords this repository
// ships for development (ShippedPasswords) in amqp.url, and guest in
// access.trusted; CheckStoreCredentials does the same for the stores a
// node opens.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, err := schema.ParseMode(c.Templates.Check); err != nil {
		bad("templates.check", "%v", err)
	}
	if _, err := amqp.ParseURI(c.AMQP.URL); err != nil {
		bad("amqp.url", "%v", redactErr(err, c.AMQP.URL))
	}
	for i, a := range c.AMQP.Addresses {
		// The error never quotes a: a URL put there by mistake may
		// hold a password.
		if err := mq.CheckAddress(a); err != nil {
			bad(fmt.Sprintf("amqp.addresses[%d]", i), "%v", err)
		}
	}
	if c.AMQP.QueueType != "classic" && c.AMQP.QueueType != "quorum" {
		bad("amqp.queue_type", "%q: classic or quorum", c.AMQP.QueueType)
	}
	if c.AMQP.QuorumSize < 0 {
		bad("amqp.quorum_size", "must not be negative (0 is RabbitMQ's default: every node of the cluster)")
	}
	if c.AMQP.DeliveryLimit < 1 {
		bad("amqp.delivery_limit", "must be at least 1")
	}
	if c.AMQP.DeadMaxLength < 1 || c.AMQP.DeadTTL <= 0 {
		bad("amqp", "dead_max_length and dead_ttl must be positive")
	}
	if p := c.AMQP.ReplyPrefix; p != "" {
		for _, own := range []string{"amq.", "beds"} {
			if strings.HasPrefix(p, own) || strings.HasPrefix(own, p) {
				bad("amqp.reply_prefix", "%q would admit RabbitMQ's or BEDS's own queues (%s...)", p, own)
			}
		}
	}
	for _, name := range c.StoreNames() {
		s := c.Stores[name]
		key := "stores." + name
		switch s.Kind {
		case KindMariaDB:
			if _, err := mysql.ParseDSN(s.DSN); err != nil {
				bad(key+".dsn", "%v", err)
			}
			if s.SecondaryDSN != "" {
				bad(key+".secondary_dsn", "replaced by replicas, a list: write replicas = [\"%s\"] instead "+
					"(reads then skip the replica when it lags more than replica_max_lag or is down)", RedactDSN(s.SecondaryDSN))
			}
			for i, r := range s.Replicas {
				if _, err := mysql.ParseDSN(r); err != nil {
					bad(fmt.Sprintf("%s.replicas[%d]", key, i), "%v", err)
				}
			}
			if s.ReplicaMaxLag < 0 || s.ReplicaCheck < 0 {
				bad(key, "replica_max_lag and replica_check must not be negative (0 means their defaults, %v and %v)",
					DefaultReplicaMaxLag, DefaultReplicaCheck)
			}
		case KindMongo:
			if len(s.Replicas) > 0 || s.SecondaryDSN != "" {
				bad(key+".replicas", "mariadb stores only: a MongoDB replica set is named in the uri (replicaSet=, readPreference=)")
			}
			if u, err := url.Parse(s.URI); err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
				bad(key+".uri", "not a mongodb:// URI")
			}
		default:
			bad(key+".kind", "%q: mariadb or mongo", s.Kind)
		}
	}
	for name, b := range c.Brokers {
		if b.Instances < 1 {
			bad("brokers."+name+".instances", "must be at least 1")
		}
		if b.Prefetch < 0 {
			bad("brokers."+name+".prefetch", "must not be negative")
		}
	}
	l := c.Limits
	if l.MaxBody < 1 || l.MaxReply < 1 || l.DefaultLimit < 1 || l.MaxLimit < l.DefaultLimit || l.MaxInList < 1 ||
		l.MaxOffset < 0 || l.MaxAffected < 1 || l.MaxLikeLength < 1 || l.MaxLikeWildcards < 0 {
		bad("limits", "max_body, max_reply, default_limit, max_in_list, max_affected, max_like_length must be positive, max_offset and max_like_wildcards not negative, and max_limit >= default_limit")
	}
	if l.MaxBatch < 1 || l.MaxInclude < 0 || l.MaxIncludeDepth < 1 || l.MaxIncludeRows < 1 || l.MaxOperations < 1 || l.MaxRows < 1 {
		bad("limits", "max_batch, max_include_depth, max_include_rows, max_operations and max_rows must be at least 1, max_include not negative (0 turns include off)")
	}
	if c.Fanout.Request < 1 || c.Fanout.Node < c.Fanout.Request {
		bad("fanout", "request must be at least 1 and node >= request")
	}
	if l.RequestTimeout <= 0 || l.MaxTimeout < l.RequestTimeout {
		bad("limits", "request_timeout must be positive and max_timeout >= request_timeout")
	}
	if c.Retry.Attempts < 1 || c.Retry.Backoff < 0 {
		bad("retry", "attempts must be at least 1 and backoff not negative")
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q: text or json", c.Log.Format)
	}
	lin := c.Lineage
	if _, ok := c.Stores[lin.Store]; lin.Store != "" && !ok {
		bad("lineage.store", "%q is not in [stores] (%s); \"\" records no lineage", lin.Store, strings.Join(c.StoreNames(), ", "))
	}
	if !(lin.ReadSample >= 0 && lin.ReadSample <= 1) { // NaN too
		bad("lineage.read_sample", "%v: must be from 0 to 1", lin.ReadSample)
	}
	if lin.Queue < 1 {
		bad("lineage.queue", "must be at least 1")
	}
	if lin.Batch < 1 {
		bad("lineage.batch", "must be at least 1")
	}
	if lin.Interval <= 0 {
		bad("lineage.interval", "must be positive")
	}
	if lin.MaxEvents < 1 {
		bad("lineage.max_events", "must be at least 1")
	}
	a := c.Access
	if !slices.Contains([]string{UnlistedDeny, UnlistedAuthenticated, UnlistedOpen}, a.Unlisted) {
		bad("access.unlisted", "%q: deny, authenticated or open", a.Unlisted)
	}
	if a.Cache < 0 || a.CacheSize < 1 || a.ResolveTimeout <= 0 {
		bad("access", "cache must not be negative, cache_size must be at least 1 and resolve_timeout positive")
	}
	for user, roles := range a.Trusted {
		if user == "" || len(roles) == 0 {
			bad("access.trusted", "%q: a trusted RabbitMQ user needs a name and at least one role", user)
		}
	}
	tc := c.Tercero
	if tc.SessionTTL <= 0 || tc.IdleTimeout <= 0 || tc.Touch < 0 || tc.PurgeInterval <= 0 || tc.PurgeBatch < 1 || tc.MinPassword < 1 {
		bad("tercero", "session_ttl, idle_timeout and purge_interval must be positive, touch not negative, purge_batch and min_password at least 1")
	}
	if g := tc.Argon2; g.Time < 1 || g.MemoryKiB < 8*uint32(g.Threads) || g.Threads < 1 || g.Concurrent < 1 {
		bad("tercero.argon2", "time, threads and concurrent must be at least 1 and memory_kib at least 8 x threads")
	}
	if at := tc.Attempts; at.Account < 1 || at.Caller < 1 || at.Window <= 0 {
		bad("tercero.attempts", "account and caller must be at least 1 and window positive")
	}
	if c.Env == EnvProd {
		// The stores' credentials are checked by CheckStoreCredentials,
		// for the stores a node opens.
		errs = append(errs, c.defaultAMQP()...)
	}
	return errors.Join(errs...)
}

// StoreNames returns the configured store names in order.
func (c *Config) StoreNames() []string {
	names := make([]string, 0, len(c.Stores))
	for n := range c.Stores {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// StoreKinds maps each store name to its kind, as template validation wants.
func (c *Config) StoreKinds() map[string]string {
	m := make(map[string]string, len(c.Stores))
	for n, s := range c.Stores {
		m[n] = s.Kind
	}
	return m
}

// ParseLevel reads a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: debug, info, warn or error", s)
	}
	return l, nil
}
