package config_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/config"
)

// dir writes files (name -> contents) into a fresh folder and returns it.
func dir(t *testing.T, files map[string]string) string {
	t.Helper()
	d := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// load runs LoadEnv with BEDS_CONFIG_DIR=d plus env; it never reads the
// process environment.
func load(t *testing.T, d string, env map[string]string) (*config.Config, error) {
	t.Helper()
	m := map[string]string{"BEDS_CONFIG_DIR": d}
	for k, v := range env {
		m[k] = v
	}
	return config.LoadEnv("appserver", m)
}

// prodEnv is BEDS_ENV=prod with a RabbitMQ account that is not a shipped
// default (prod refuses guest), plus env.
func prodEnv(env map[string]string) map[string]string {
	m := map[string]string{"BEDS_ENV": "prod", "BEDS_AMQP_URL": "amqp://node:n0t-shipped@rabbit.example:5672/"}
	for k, v := range env {
		m[k] = v
	}
	return m
}

func mustLoad(t *testing.T, d string, env map[string]string) *config.Config {
	t.Helper()
	c, err := load(t, d, env)
	if err != nil {
		t.Fatalf("LoadEnv: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, dir(t, map[string]string{"beds.toml": "# nothing set\n"}), nil)
	host, _ := os.Hostname()
	def := config.Default()
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"env", c.Env, config.EnvDev},
		{"node", c.Node.Name, "appserver@" + host},
		{"templates", c.Templates.Dir, "templates"},
		{"templates check", c.Templates.Check, "strict"},
		{"http", c.HTTP.Addr, "127.0.0.1:8080"},
		{"amqp", c.AMQP.URL, "amqp://guest:guest@127.0.0.1:5672/"},
		{"queue type", c.AMQP.QueueType, "classic"},
		{"connect timeout", c.AMQP.ConnectTimeout.D(), 5 * time.Second},
		{"heartbeat", c.AMQP.Heartbeat.D(), 10 * time.Second},
		{"stores", c.StoreNames(), []string{"mariadb", "mongo"}},
		{"mariadb", c.Stores["mariadb"], def.Stores["mariadb"]},
		{"mongo", c.Stores["mongo"], def.Stores["mongo"]},
		{"brokers", c.Brokers, def.Brokers},
		{"limits", c.Limits, def.Limits},
		{"log level", c.Log.Level, "info"},
		{"log format", c.Log.Format, "text"},
		{"shutdown", c.Shutdown.Timeout.D(), 30 * time.Second},
		{"lineage", c.Lineage, config.Lineage{Store: "mariadb", Queue: 10000, Batch: 256, Interval: config.Duration(100 * time.Millisecond), MaxEvents: 1000}},
		{"lineage enabled", c.Lineage.Enabled(), true},
		{"files", c.Files(), []string{filepath.Join(c.Dir, "beds.toml")}},
		{"kinds", c.StoreKinds(), map[string]string{"mariadb": "mariadb", "mongo": "mongo"}},
	} {
		if !equal(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.what, tc.got, tc.want)
		}
	}
}

func equal(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

const base = `
[node]
name = "base-node"

[amqp]
url = "amqp://guest:guest@rabbit:5672/"
queue_type = "quorum"
heartbeat = "3s"

[stores.mariadb]
kind = "mariadb"
dsn = "root@tcp(db:3306)/beds"
replicas = ["reader@tcp(replica1:3306)/beds", "reader@tcp(replica2:3306)/beds"]
replica_max_lag = "2s"
max_conns = 8

[brokers.dispatcher]
instances = 4
prefetch = 32

[limits]
max_limit = 500
`

func TestLayers(t *testing.T) {
	d := dir(t, map[string]string{
		"beds.toml": base,
		// A partial table: only dsn. kind, replicas, replica_max_lag and
		// max_conns stay from beds.toml, replica_check from the defaults.
		"env_dev.toml": `
[stores.mariadb]
dsn = "app:devpass@tcp(devdb:3306)/beds"

[stores.mongo]
uri = "mongodb://devmongo:27017/beds"

[brokers.dispatcher]
instances = 2

[brokers.warehouse]
instances = 1

[stores.archive]
kind = "mongo"
uri = "mongodb://archive:27017/old"
`,
		"env_qa.toml":   "[amqp]\nqueue_type = \"classic\"\n",
		"env_prod.toml": "[log]\nlevel = \"warn\"\n",
	})
	c := mustLoad(t, d, nil)
	want := map[string]config.Store{
		"mariadb": {Kind: "mariadb", DSN: "app:devpass@tcp(devdb:3306)/beds",
			Replicas:      []string{"reader@tcp(replica1:3306)/beds", "reader@tcp(replica2:3306)/beds"},
			ReplicaMaxLag: config.Duration(2 * time.Second), ReplicaCheck: config.Duration(config.DefaultReplicaCheck), MaxConns: 8},
		// beds.toml has no stores.mongo: the env file's uri over the default.
		"mongo":   {Kind: "mongo", URI: "mongodb://devmongo:27017/beds", MaxConns: 16},
		"archive": {Kind: "mongo", URI: "mongodb://archive:27017/old"},
	}
	if !equal(c.Stores, want) {
		t.Errorf("stores\n got  %+v\n want %+v", c.Stores, want)
	}
	// tercero keeps its default: no layer names it.
	wantB := map[string]config.Broker{"dispatcher": {Instances: 2, Prefetch: 32}, "warehouse": {Instances: 1}, "tercero": {Instances: 4, Prefetch: 16}}
	if !equal(c.Brokers, wantB) {
		t.Errorf("brokers %+v, want %+v", c.Brokers, wantB)
	}
	// Tables the env file does not touch keep beds.toml, then the defaults.
	if c.AMQP.QueueType != "quorum" || c.AMQP.Heartbeat.D() != 3*time.Second || c.AMQP.ConnectTimeout.D() != 5*time.Second {
		t.Errorf("amqp %+v", c.AMQP)
	}
	if c.Limits.MaxLimit != 500 || c.Limits.DefaultLimit != 100 || c.Limits.MaxInList != 1000 {
		t.Errorf("limits %+v", c.Limits)
	}
	if c.Node.Name != "base-node" {
		t.Errorf("node %q", c.Node.Name)
	}
	if got := c.Files(); !slices.Equal(got, []string{filepath.Join(d, "beds.toml"), filepath.Join(d, "env_dev.toml")}) {
		t.Errorf("files %v", got)
	}

	// BEDS_ENV picks the env file; the others are not read.
	c = mustLoad(t, d, map[string]string{"BEDS_ENV": "qa"})
	if c.Env != "qa" || c.AMQP.QueueType != "classic" || c.Stores["mariadb"].DSN != "root@tcp(db:3306)/beds" || c.Brokers["dispatcher"].Instances != 4 {
		t.Errorf("qa: env %s queue %s mariadb %+v brokers %+v", c.Env, c.AMQP.QueueType, c.Stores["mariadb"], c.Brokers)
	}
	if _, ok := c.Stores["archive"]; ok {
		t.Error("qa read env_dev.toml")
	}
	if c.Log.Format != "json" {
		t.Errorf("qa log format %q, want json", c.Log.Format)
	}
	c = mustLoad(t, d, prodEnv(nil))
	if c.Log.Level != "warn" || c.Log.Format != "json" {
		t.Errorf("prod log %+v", c.Log)
	}

	// No env file: beds.toml alone.
	d2 := dir(t, map[string]string{"beds.toml": base})
	c = mustLoad(t, d2, prodEnv(nil))
	if len(c.Files()) != 1 || c.Stores["mariadb"].MaxConns != 8 {
		t.Errorf("files %v mariadb %+v", c.Files(), c.Stores["mariadb"])
	}
}

// A beds.toml that sets only part of a default store keeps the rest of it.
func TestPartialStoreOverDefaults(t *testing.T) {
	d := dir(t, map[string]string{"beds.toml": "[stores.mariadb]\nmax_conns = 4\n\n[brokers.dispatcher]\nprefetch = 8\n"})
	c := mustLoad(t, d, nil)
	if got := c.Stores["mariadb"]; got.Kind != "mariadb" || got.DSN != "root@tcp(127.0.0.1:3306)/beds" || got.MaxConns != 4 {
		t.Errorf("mariadb %+v", got)
	}
	if got := c.Brokers["dispatcher"]; got.Instances != 16 || got.Prefetch != 8 {
		t.Errorf("dispatcher %+v", got)
	}
	if got := c.Stores["mongo"]; !equal(got, config.Default().Stores["mongo"]) {
		t.Errorf("mongo %+v", got)
	}
}

func TestEnvironmentVariables(t *testing.T) {
	d := dir(t, map[string]string{"beds.toml": base, "env_dev.toml": "[stores.mariadb]\ndsn = \"app:devpass@tcp(devdb:3306)/beds\"\n"})
	c := mustLoad(t, d, map[string]string{
		"BEDS_TEMPLATE_DIR": "/srv/templates",
		"BEDS_AMQP_URL":     "amqp://u:p@mq:5672/vh",
		"BEDS_MARIADB_DSN":  "beds:pw@tcp(maria:3306)/prod",
		"BEDS_MONGO_URI":    "mongodb://mongo:27017/prod",
		"BEDS_NODE_NAME":    "app-7",
		"BEDS_HTTP_ADDR":    ":9090",
		"BEDS_LOG_LEVEL":    "debug",
		"UNRELATED":         "x",
	})
	for _, tc := range []struct{ what, got, want string }{
		{"templates", c.Templates.Dir, "/srv/templates"},
		{"amqp", c.AMQP.URL, "amqp://u:p@mq:5672/vh"},
		{"mariadb", c.Stores["mariadb"].DSN, "beds:pw@tcp(maria:3306)/prod"},
		{"mongo", c.Stores["mongo"].URI, "mongodb://mongo:27017/prod"},
		{"node", c.Node.Name, "app-7"},
		{"http", c.HTTP.Addr, ":9090"},
		{"log", c.Log.Level, "debug"},
		{"dir", c.Dir, d},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	// Variables replace one key; the rest of the store stays.
	if m := c.Stores["mariadb"]; m.MaxConns != 8 || len(m.Replicas) != 2 || m.Kind != "mariadb" {
		t.Errorf("mariadb %+v", m)
	}
	// Empty variables count as unset.
	c = mustLoad(t, d, map[string]string{"BEDS_AMQP_URL": "", "BEDS_NODE_NAME": "", "BEDS_ENV": ""})
	if c.AMQP.URL != "amqp://guest:guest@rabbit:5672/" || c.Node.Name != "base-node" || c.Env != "dev" {
		t.Errorf("empty variables applied: %s %s %s", c.AMQP.URL, c.Node.Name, c.Env)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // nil: no folder contents at all
		env   map[string]string
		want  []string // substrings of the error
	}{
		{"missing beds.toml", map[string]string{"env_dev.toml": ""}, nil, []string{"beds.toml not found", "BEDS_CONFIG_DIR"}},
		{"missing folder", nil, map[string]string{"BEDS_CONFIG_DIR": "/nonexistent/beds-config"}, []string{"/nonexistent/beds-config/beds.toml not found"}},
		{"bad BEDS_ENV", map[string]string{"beds.toml": ""}, map[string]string{"BEDS_ENV": "staging"}, []string{`BEDS_ENV="staging"`, "dev, qa or prod"}},
		{"BEDS_ENV case", map[string]string{"beds.toml": ""}, map[string]string{"BEDS_ENV": "Prod"}, []string{`BEDS_ENV="Prod"`}},
		{"unknown key in beds.toml", map[string]string{"beds.toml": "[amqp]\nurll = \"x\"\n"}, nil, []string{"beds.toml", `unknown key "amqp.urll"`}},
		{"unknown nested key in beds.toml", map[string]string{"beds.toml": "[stores.mariadb]\ndsnn = \"x\"\n"}, nil, []string{"beds.toml", `"stores.mariadb.dsnn"`}},
		{"unknown top-level key", map[string]string{"beds.toml": "colour = \"blue\"\n"}, nil, []string{"beds.toml", `"colour"`}},
		{"unknown table", map[string]string{"beds.toml": "[databases]\nx = 1\n"}, nil, []string{"beds.toml", `unknown key "databases`}},
		{"unknown key in env file", map[string]string{"beds.toml": base, "env_qa.toml": "[brokers.dispatcher]\ninstance = 3\n"}, map[string]string{"BEDS_ENV": "qa"},
			[]string{"env_qa.toml", `"brokers.dispatcher.instance"`}},
		{"toml syntax", map[string]string{"beds.toml": "[amqp]\nurl = \"x\n"}, nil, []string{"beds.toml:2"}},
		{"toml syntax in env file", map[string]string{"beds.toml": "", "env_dev.toml": "\n\n[log]\nlevel = \"a\" \"b\"\n"}, nil, []string{"env_dev.toml:4"}},
		{"wrong type", map[string]string{"beds.toml": "[brokers.dispatcher]\ninstances = \"many\"\n"}, nil, []string{"beds.toml"}},
		{"bad duration", map[string]string{"beds.toml": "[shutdown]\ntimeout = \"30 seconds\"\n"}, nil, []string{"beds.toml"}},
		{"bad dsn", map[string]string{"beds.toml": "[stores.mariadb]\ndsn = \"root@tcp(db:3306\"\n"}, nil, []string{"config stores.mariadb.dsn", "invalid DSN"}},
		{"bad dsn from env", map[string]string{"beds.toml": ""}, map[string]string{"BEDS_MARIADB_DSN": "root@db:3306/beds"}, []string{"config stores.mariadb.dsn"}},
		{"secondary_dsn replaced", map[string]string{"beds.toml": "[stores.mariadb]\nsecondary_dsn = \"r:pw@tcp(replica:3306)/beds\"\n"}, nil,
			[]string{"stores.mariadb.secondary_dsn", `replicas = ["r:xxxxx@tcp(replica:3306)/beds"]`}},
		{"bad replica dsn", map[string]string{"beds.toml": "[stores.mariadb]\nreplicas = [\"root@tcp(r1:3306)/b\", \"nope(\"]\n"}, nil, []string{"stores.mariadb.replicas[1]", "invalid DSN"}},
		{"negative replica lag", map[string]string{"beds.toml": "[stores.mariadb]\nreplica_max_lag = \"-1s\"\n"}, nil, []string{"stores.mariadb", "replica_max_lag"}},
		{"replicas on mongo", map[string]string{"beds.toml": "[stores.mongo]\nreplicas = [\"root@tcp(r1:3306)/b\"]\n"}, nil, []string{"stores.mongo.replicas", "mariadb stores only"}},
		{"bad mongo uri", map[string]string{"beds.toml": "[stores.mongo]\nuri = \"http://mongo/\"\n"}, nil, []string{"stores.mongo.uri", "mongodb://"}},
		{"bad mongo uri from env", map[string]string{"beds.toml": ""}, map[string]string{"BEDS_MONGO_URI": "mongo:27017"}, []string{"stores.mongo.uri"}},
		{"unknown store kind", map[string]string{"beds.toml": "[stores.pg]\nkind = \"postgres\"\n"}, nil, []string{"stores.pg.kind", `"postgres"`}},
		{"store without kind", map[string]string{"beds.toml": "[stores.extra]\ndsn = \"root@tcp(x:3306)/y\"\n"}, nil, []string{"stores.extra.kind"}},
		{"bad amqp url", map[string]string{"beds.toml": ""}, map[string]string{"BEDS_AMQP_URL": "http://mq/"}, []string{"amqp.url"}},
		{"bad queue_type", map[string]string{"beds.toml": "[amqp]\nqueue_type = \"stream\"\n"}, nil, []string{"amqp.queue_type", `"stream"`, "classic or quorum"}},
		{"instances zero", map[string]string{"beds.toml": "[brokers.dispatcher]\ninstances = 0\n"}, nil, []string{"brokers.dispatcher.instances", "at least 1"}},
		{"instances negative new broker", map[string]string{"beds.toml": "[brokers.users]\ninstances = -2\nprefetch = 1\n"}, nil, []string{"brokers.users.instances"}},
		{"broker without instances", map[string]string{"beds.toml": "[brokers.users]\nprefetch = 1\n"}, nil, []string{"brokers.users.instances"}},
		{"negative prefetch", map[string]string{"beds.toml": "[brokers.dispatcher]\nprefetch = -1\n"}, nil, []string{"brokers.dispatcher.prefetch"}},
		{"max_limit below default_limit", map[string]string{"beds.toml": "[limits]\nmax_limit = 10\ndefault_limit = 20\n"}, nil, []string{"config limits"}},
		{"zero max_body", map[string]string{"beds.toml": "[limits]\nmax_body = 0\n"}, nil, []string{"config limits"}},
		{"zero max_in_list", map[string]string{"beds.toml": "[limits]\nmax_in_list = 0\n"}, nil, []string{"config limits"}},
		{"bad log level", map[string]string{"beds.toml": "[log]\nlevel = \"loud\"\n"}, nil, []string{"log.level", `"loud"`}},
		{"bad templates.check", map[string]string{"beds.toml": "[templates]\ncheck = \"off\"\n"}, nil, []string{"config templates.check", `"off": strict`, "or warn"}},
		{"templates.check case", map[string]string{"beds.toml": "[templates]\ncheck = \"Strict\"\n"}, nil, []string{"templates.check", `"Strict"`}},
		{"bad log level from env", map[string]string{"beds.toml": ""}, map[string]string{"BEDS_LOG_LEVEL": "verbose"}, []string{"log.level"}},
		{"bad log format", map[string]string{"beds.toml": "[log]\nformat = \"xml\"\n"}, nil, []string{"log.format", `"xml"`}},
		{"lineage store unknown", map[string]string{"beds.toml": "[lineage]\nstore = \"archive\"\n"}, nil, []string{"lineage.store", `"archive"`, "mariadb, mongo"}},
		{"lineage store unknown in env file", map[string]string{"beds.toml": "", "env_dev.toml": "[lineage]\nstore = \"maria\"\n"}, nil, []string{"lineage.store", `"maria"`}},
		{"lineage read_sample above 1", map[string]string{"beds.toml": "[lineage]\nread_sample = 1.5\n"}, nil, []string{"lineage.read_sample", "1.5", "from 0 to 1"}},
		{"lineage read_sample negative", map[string]string{"beds.toml": "[lineage]\nread_sample = -0.1\n"}, nil, []string{"lineage.read_sample"}},
		{"lineage read_sample nan", map[string]string{"beds.toml": "[lineage]\nread_sample = nan\n"}, nil, []string{"lineage.read_sample"}},
		{"lineage queue zero", map[string]string{"beds.toml": "[lineage]\nqueue = 0\n"}, nil, []string{"lineage.queue", "at least 1"}},
		{"lineage batch negative", map[string]string{"beds.toml": "[lineage]\nbatch = -1\n"}, nil, []string{"lineage.batch", "at least 1"}},
		{"lineage interval zero", map[string]string{"beds.toml": "[lineage]\ninterval = \"0s\"\n"}, nil, []string{"lineage.interval", "positive"}},
		{"lineage interval not a duration", map[string]string{"beds.toml": "[lineage]\ninterval = \"soon\"\n"}, nil, []string{"beds.toml"}},
		{"lineage max_events zero", map[string]string{"beds.toml": "[lineage]\nmax_events = 0\n"}, nil, []string{"lineage.max_events", "at least 1"}},
		{"lineage unknown key", map[string]string{"beds.toml": "[lineage]\nsample = 0.5\n"}, nil, []string{"beds.toml", `"lineage.sample"`}},
		{"several problems at once", map[string]string{"beds.toml": "[amqp]\nqueue_type = \"x\"\n[log]\nformat = \"xml\"\n"}, nil, []string{"amqp.queue_type", "log.format"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if tc.files != nil {
				d = dir(t, tc.files)
			}
			c, err := load(t, d, tc.env)
			if err == nil {
				t.Fatalf("LoadEnv succeeded: %v", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The checked-in base configuration loads as it is, in every environment.
func TestCheckedInConfig(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "deploy", "config", "beds.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// A copy, so an uncommitted env file beside the original cannot
	// change the result.
	d := dir(t, map[string]string{"beds.toml": string(src)})
	for _, env := range []string{"dev", "qa", "prod"} {
		vars := map[string]string{"BEDS_ENV": env}
		if env == "prod" {
			vars = prodEnv(nil)
		}
		c, err := load(t, d, vars)
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		if c.Stores["mariadb"].Kind != "mariadb" || c.Stores["mongo"].Kind != "mongo" || c.Brokers["dispatcher"].Instances < 1 {
			t.Errorf("%s: stores %+v brokers %+v", env, c.Stores, c.Brokers)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", env, err)
		}
		if c.Templates.Check != "strict" {
			t.Errorf("%s: templates.check %q, want strict", env, c.Templates.Check)
		}
	}
	// warn, from an env file, for a migration window.
	d = dir(t, map[string]string{"beds.toml": string(src), "env_qa.toml": "[templates]\ncheck = \"warn\"\n"})
	if c, err := load(t, d, map[string]string{"BEDS_ENV": "qa"}); err != nil || c.Templates.Check != "warn" || c.Templates.Dir != "templates" {
		t.Errorf("check = warn in env_qa.toml: %+v %v", c.Templates, err)
	}
	// And from its own folder, as a node started in the repository would.
	if _, err := load(t, filepath.Join("..", "..", "deploy", "config"), nil); err != nil {
		t.Errorf("deploy/config: %v", err)
	}
}

const secret = "s3cr3tPW"

func secretConfig(t *testing.T) *config.Config {
	t.Helper()
	d := dir(t, map[string]string{
		"beds.toml": `
[stores.mariadb]
dsn = "app:` + secret + `@tcp(db:3306)/beds?parseTime=true"
replicas = ["reader:` + secret + `@tcp(replica:3306)/beds"]

[stores.logs]
kind = "mongo"
uri = "mongodb://admin:` + secret + `@m1:27017,m2:27017/logs?replicaSet=rs0"
`,
	})
	return mustLoad(t, d, map[string]string{
		"BEDS_AMQP_URL":  "amqps://beds:" + secret + "@mq.example.com:5671/prod",
		"BEDS_MONGO_URI": "mongodb://root:" + secret + "@mongo:27017/beds",
	})
}

func TestRedactedOutput(t *testing.T) {
	c := secretConfig(t)
	// The loaded config itself keeps the secrets; only its renderings hide them.
	if !strings.Contains(c.AMQP.URL, secret) {
		t.Fatal("the config lost its password")
	}

	s := c.String()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config loaded", "config", c)
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config loaded", "config", c)
	r := c.Redacted()
	rj, _ := json.Marshal(r)

	for name, out := range map[string]string{"String": s, "LogValue json": buf.String(), "LogValue text": text.String(), "Redacted": string(rj)} {
		if strings.Contains(out, secret) {
			t.Errorf("%s leaks the password: %s", name, out)
		}
		if !strings.Contains(out, "xxxxx") {
			t.Errorf("%s shows no mask: %s", name, out)
		}
	}
	// The original is untouched by Redacted.
	if !strings.Contains(c.Stores["mariadb"].DSN, secret) || !strings.Contains(c.AMQP.URL, secret) {
		t.Error("Redacted changed the original")
	}

	// String is JSON holding the useful parts.
	var back map[string]any
	if err := json.Unmarshal([]byte(s), &back); err != nil {
		t.Fatalf("String is not JSON: %v\n%s", err, s)
	}
	for _, want := range []string{"mq.example.com", "replica:3306", "m1:27017", "beds:xxxxx@"} {
		if !strings.Contains(s, want) {
			t.Errorf("String lacks %q: %s", want, s)
		}
	}

	// LogValue as a JSON group.
	var rec struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line is not JSON: %v\n%s", err, buf.String())
	}
	for key, want := range map[string]string{
		"amqp":          "amqps://beds:xxxxx@mq.example.com:5671/prod",
		"store.mariadb": "mariadb app:xxxxx@tcp(db:3306)/beds?parseTime=true replicas reader:xxxxx@tcp(replica:3306)/beds",
		"store.mongo":   "mongo mongodb://root:xxxxx@mongo:27017/beds",
		"env":           "dev",
		"queue_type":    "classic",
	} {
		if got, _ := rec.Config[key].(string); got != want {
			t.Errorf("log %s = %q, want %q", key, got, want)
		}
	}
	if got, _ := rec.Config["store.logs"].(string); !strings.HasPrefix(got, "mongo mongodb://admin:xxxxx@") {
		t.Errorf("log store.logs = %q", got)
	}
}

// Validation errors about a secret-bearing value never quote the secret.
func TestValidationErrorsRedacted(t *testing.T) {
	for _, env := range []map[string]string{
		{"BEDS_AMQP_URL": "amqp://u:" + secret + "@host:notaport/"},
		{"BEDS_AMQP_URL": "amqp://u:" + secret + "@[::1/"},
		{"BEDS_AMQP_URL": "http://u:" + secret + "@host/"},
		{"BEDS_AMQP_URL": "amqp://u:" + secret + "@host/%zz"},
		{"BEDS_MARIADB_DSN": "u:" + secret + "@tcp(db:3306"},
		{"BEDS_MARIADB_DSN": "u:" + secret + "@tcp(db:3306)/x?timeout=forever"},
		{"BEDS_MONGO_URI": "mongo://u:" + secret + "@h/"},
	} {
		_, err := load(t, dir(t, map[string]string{"beds.toml": ""}), env)
		if err == nil {
			t.Errorf("%v: no error", env)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%v: error leaks the password: %v", env, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:xxxxx@127.0.0.1:5672/"},
		{"amqps://beds:" + secret + "@mq:5671/vhost", "amqps://beds:xxxxx@mq:5671/vhost"},
		{"amqp://user@host/", "amqp://user@host/"},
		{"amqp://host/", "amqp://host/"},
		{"mongodb://127.0.0.1:27017/beds", "mongodb://127.0.0.1:27017/beds"},
		{"mongodb://a:" + secret + "@h1:27017,h2:27017/db?replicaSet=rs", "mongodb://a:xxxxx@h1:27017,h2:27017/db?replicaSet=rs"},
		{"amqp://u:p%40ss@h/", "amqp://u:xxxxx@h/"},
		{"amqp://u:p@ss@h/", "amqp://u:xxxxx@h/"},
		{"amqp://u:" + secret + "@host:notaport/", "amqp://xxxxx@host:notaport/"},
		{"", ""},
		{"not a url", "not a url"},
	} {
		got := config.RedactURL(tc.in)
		if got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, secret) {
			t.Errorf("RedactURL(%q) leaks", tc.in)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"root@tcp(127.0.0.1:3306)/beds", "root@tcp(127.0.0.1:3306)/beds"},
		{"app:" + secret + "@tcp(db:3306)/beds", "app:xxxxx@tcp(db:3306)/beds"},
		{"app:" + secret + "@tcp(db:3306)/beds?parseTime=true", "app:xxxxx@tcp(db:3306)/beds?parseTime=true"},
		{"u:p@ss@tcp(h:3306)/db", "u:xxxxx@tcp(h:3306)/db"},
		{"app:" + secret + "@tcp(db:3306", "xxxxx@tcp(db:3306"},
		{"", ""},
		{"garbage", "garbage"},
	} {
		got := config.RedactDSN(tc.in)
		if got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, secret) {
			t.Errorf("RedactDSN(%q) leaks", tc.in)
		}
	}
}

func TestDuration(t *testing.T) {
	var d config.Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.D() != 90*time.Second {
		t.Errorf("UnmarshalText: %v %v", d, err)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Error("UnmarshalText accepted soon")
	}
	b, err := config.Duration(1500 * time.Millisecond).MarshalText()
	if err != nil || string(b) != "1.5s" {
		t.Errorf("MarshalText = %s %v", b, err)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "INFO": slog.LevelInfo} {
		if got, err := config.ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "loud", "trace"} {
		if _, err := config.ParseLevel(in); err == nil {
			t.Errorf("ParseLevel(%q) succeeded", in)
		}
	}
}

func TestValidateDefault(t *testing.T) {
	c := config.Default()
	c.Log.Format = "text"
	if err := c.Validate(); err != nil {
		t.Errorf("Default does not validate: %v", err)
	}
}

// Secrets in URL query parameters (the MongoDB driver's key file password
// and AWS session token) are masked like passwords, and the rest of the
// URL stays as written.
func TestRedactURLQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://h/db?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:" + secret,
			"mongodb://h/db?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:xxxxx"},
		{"mongodb://h/db?authMechanismProperties=AWS_SESSION_TOKEN%3A" + secret + "%2CSERVICE_NAME%3Amongodb",
			"mongodb://h/db?authMechanismProperties=AWS_SESSION_TOKEN:xxxxx,SERVICE_NAME:mongodb"},
		{"mongodb://h/db?authMechanismProperties=SERVICE_NAME:other,CANONICALIZE_HOST_NAME:true",
			"mongodb://h/db?authMechanismProperties=SERVICE_NAME:other,CANONICALIZE_HOST_NAME:true"},
		{"mongodb://h/db?authMechanismProperties=SOME_FUTURE_KEY:" + secret, "mongodb://h/db?authMechanismProperties=SOME_FUTURE_KEY:xxxxx"},
		{"mongodb://h/db?authMechanismProperties=" + secret, "mongodb://h/db?authMechanismProperties=xxxxx"},
		{"mongodb://h/db?authMechanismProperties=AWS_SESSION_TOKEN:%zz" + secret, "mongodb://h/db?authMechanismProperties=xxxxx"},
		{"mongodb://u:" + secret + "@h/db?tls=true&tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=" + secret + "&w=1",
			"mongodb://u:xxxxx@h/db?tls=true&tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=xxxxx&w=1"},
		{"mongodb://h/db?sslClientCertificateKeyPassword=" + secret + ";appName=a", "mongodb://h/db?sslClientCertificateKeyPassword=xxxxx;appName=a"},
		{"mongodb://h/db?TLSCERTIFICATEKEYFILEPASSWORD=" + secret, "mongodb://h/db?TLSCERTIFICATEKEYFILEPASSWORD=xxxxx"},
		{"mongodb://h/db?tlsCertificateKeyFilePassword=xyz%zz" + secret, "mongodb://h/db?tlsCertificateKeyFilePassword=xxxxx"},
		{"mongodb://h/db?password=" + secret + "&token=" + secret + "&client_secret=" + secret,
			"mongodb://h/db?password=xxxxx&token=xxxxx&client_secret=xxxxx"},
		{"mongodb://a:" + secret + "@h1:27017,h2:27017/db?replicaSet=rs&tlsCertificateKeyFilePassword=" + secret,
			"mongodb://a:xxxxx@h1:27017,h2:27017/db?replicaSet=rs&tlsCertificateKeyFilePassword=xxxxx"},
		// Unparseable (a bad port): user information and query both masked.
		{"mongodb://u:" + secret + "@host:notaport/db?tlsCertificateKeyFilePassword=" + secret,
			"mongodb://xxxxx@host:notaport/db?tlsCertificateKeyFilePassword=xxxxx"},
		{"mongodb://host:notaport/db?authMechanismProperties=AWS_SESSION_TOKEN:" + secret,
			"mongodb://host:notaport/db?authMechanismProperties=AWS_SESSION_TOKEN:xxxxx"},
		// Nothing secret: unchanged.
		{"mongodb://h/db?replicaSet=rs&tlsCertificateKeyFile=/k.pem&w=majority", "mongodb://h/db?replicaSet=rs&tlsCertificateKeyFile=/k.pem&w=majority"},
		{"mongodb://h/db?flag&x=", "mongodb://h/db?flag&x="},
	} {
		got := config.RedactURL(tc.in)
		if got != tc.want {
			t.Errorf("RedactURL(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, secret) {
			t.Errorf("RedactURL(%q) leaks", tc.in)
		}
	}
}

func TestURLSecrets(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"mongodb://h/db", nil},
		{"amqp://u:p%40ss@h/", []string{"p%40ss", "p@ss"}},
		{"mongodb://h/db?tlsCertificateKeyFilePassword=a%2Bb&w=1", []string{"a%2Bb", "a+b"}},
		{"mongodb://h/db?authMechanismProperties=AWS_SESSION_TOKEN:tok,SERVICE_NAME:svc", []string{"tok"}},
		{"mongodb://h/db?tlsCertificateKeyFilePassword=xyz%zzsecret", []string{"xyz%zzsecret"}},
		// An @ in the query does not hide the query from the reading.
		{"mongodb://h/db?tlsCertificateKeyFilePassword=kp&appName=a@b", []string{"kp"}},
		{"mongodb://u:pw@h/db?token=longertoken", []string{"longertoken", "pw"}},
	} {
		if got := config.URLSecrets(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("URLSecrets(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A logged config masks query secrets of a MongoDB URI too.
func TestRedactedQuerySecrets(t *testing.T) {
	d := dir(t, map[string]string{"beds.toml": `
[stores.aws]
kind = "mongo"
uri = "mongodb://m1:27017/beds?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:` + secret + `&tlsCertificateKeyFilePassword=` + secret + `"
`})
	c := mustLoad(t, d, nil)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config loaded", "config", c)
	for name, out := range map[string]string{"String": c.String(), "LogValue": buf.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("%s leaks a query secret: %s", name, out)
		}
		if !strings.Contains(out, "AWS_SESSION_TOKEN:xxxxx") || !strings.Contains(out, "tlsCertificateKeyFilePassword=xxxxx") {
			t.Errorf("%s does not show the masked parameters: %s", name, out)
		}
	}
}

// [lineage] merges key by key like every table; an env file turns
// recording off with store = "", and a store of its own may be named.
func TestLineage(t *testing.T) {
	d := dir(t, map[string]string{
		"beds.toml":   "[lineage]\nread_sample = 0.25\nbatch = 64\n",
		"env_qa.toml": "[lineage]\nstore = \"\"\n",
		"env_prod.toml": "[stores.trail]\nkind = \"mongo\"\nuri = \"mongodb://trail:27017/lineage\"\n\n" +
			"[lineage]\nstore = \"trail\"\nread_sample = 1\ninterval = \"250ms\"\n",
	})
	for _, tc := range []struct {
		env  string
		want config.Lineage
	}{
		{"dev", config.Lineage{Store: "mariadb", ReadSample: 0.25, Queue: 10000, Batch: 64, Interval: config.Duration(100 * time.Millisecond), MaxEvents: 1000}},
		{"qa", config.Lineage{Store: "", ReadSample: 0.25, Queue: 10000, Batch: 64, Interval: config.Duration(100 * time.Millisecond), MaxEvents: 1000}},
		{"prod", config.Lineage{Store: "trail", ReadSample: 1, Queue: 10000, Batch: 64, Interval: config.Duration(250 * time.Millisecond), MaxEvents: 1000}},
	} {
		vars := map[string]string{"BEDS_ENV": tc.env}
		if tc.env == "prod" {
			vars = prodEnv(nil)
		}
		c := mustLoad(t, d, vars)
		if c.Lineage != tc.want {
			t.Errorf("%s: lineage %+v, want %+v", tc.env, c.Lineage, tc.want)
		}
		if c.Lineage.Enabled() != (tc.want.Store != "") {
			t.Errorf("%s: Enabled %v", tc.env, c.Lineage.Enabled())
		}
	}
}
