package check

import (
	"bytes"
	"context"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/go-sql-driver/mysql"

	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/template"
)

var infra = []string{"rabbitmq", "mariadb", "mongo"}

// loadCompose loads docker-compose.yml as `docker compose` does, with env
// as the whole environment (no .env file, no OS variables).
func loadCompose(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(kv), cli.WithInterpolation(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// envExample reads .env.example with compose-go's own .env parser.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	m, err := dotenv.GetEnvFromFile(map[string]string{}, []string{filepath.Join(repoRoot(t), ".env.example")})
	if err != nil {
		t.Fatalf(".env.example: %v", err)
	}
	return m
}

func envOf(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

// interpolations finds ${VAR...} in the raw compose file ($$ escapes one).
var interpolation = regexp.MustCompile(`(^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+]?)([^}]*)\}`)

// TestComposeInterpolation checks the compose file's variables against
// .env.example: every one documented there, with the same default, and
// every one with a default so `docker compose up` needs no .env.
func TestComposeInterpolation(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	example := envExample(t)
	used := map[string]bool{}
	var lines []string
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			lines = append(lines, line)
		}
	}
	for _, m := range interpolation.FindAllStringSubmatch(strings.Join(lines, "\n"), -1) {
		name, op, def := m[2], m[3], m[4]
		used[name] = true
		if op != ":-" {
			t.Errorf("${%s%s%s}: give every variable a default (${%s:-...}) so no .env is needed", name, op, def, name)
			continue
		}
		ex, ok := example[name]
		if !ok {
			t.Errorf("${%s} is not documented in .env.example", name)
		} else if ex != def {
			t.Errorf("${%s}: default %q in docker-compose.yml, %q in .env.example", name, def, ex)
		}
	}
	for name := range example {
		if !used[name] {
			t.Errorf(".env.example documents %s, which docker-compose.yml does not use", name)
		}
	}

	// .env.example read as .env gives the same project as no .env at all.
	withExample := loadCompose(t, example)
	bare := loadCompose(t, nil)
	a, _ := withExample.MarshalYAML()
	b, _ := bare.MarshalYAML()
	if !bytes.Equal(a, b) {
		t.Errorf("the project with .env.example differs from the one without a .env:\n%s\n---\n%s", a, b)
	}
}

// TestCompose checks the loaded project: what must hold for `docker compose
// up` to bring up a cluster that answers.
func TestCompose(t *testing.T) {
	root := repoRoot(t)
	p := loadCompose(t, nil)
	known := knownVars(t)
	roleNames := roles(t)

	for _, name := range append(slices.Clone(infra), roleNames...) {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL") {
				t.Errorf("no usable healthcheck: %+v", hc)
			} else if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
				t.Errorf("healthcheck without interval, timeout and retries")
			}
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					if _, ok := p.Volumes[v.Source]; v.Type == types.VolumeTypeVolume && !ok {
						t.Errorf("volume %s is not declared", v.Source)
					}
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("bind mount %s -> %s: %v", v.Source, v.Target, err)
				}
				if !v.ReadOnly {
					t.Errorf("bind mount %s -> %s: mount the checkout read-only", v.Source, v.Target)
				}
			}
			for k := range s.Environment {
				if strings.HasPrefix(k, "BEDS_") && !known[k] {
					t.Errorf("environment %s: not a variable shared/config knows (%v)", k, slices.Sorted(maps.Keys(known)))
				}
			}
			if slices.Contains(infra, name) {
				img, tag, _ := strings.Cut(s.Image, ":")
				if s.Build != nil || img == "" || tag == "" || tag == "latest" {
					t.Errorf("infrastructure runs an official image with a pinned tag, not %q", s.Image)
				}
				if len(s.DependsOn) > 0 {
					t.Errorf("infrastructure depends on %v", slices.Sorted(maps.Keys(s.DependsOn)))
				}
			}
		})
	}

	// Roles: built from the repository's Dockerfile with ROLE=<role>, the
	// context the repository root, started once the infrastructure is
	// healthy, checked with the image's healthcheck.
	for _, role := range roleNames {
		s, ok := p.Services[role]
		if !ok {
			continue
		}
		t.Run("role-"+role, func(t *testing.T) {
			if s.Build == nil {
				t.Fatalf("not built from the Dockerfile")
			}
			if filepath.Clean(s.Build.Context) != root {
				t.Errorf("build context %s, want the repository root", s.Build.Context)
			}
			if want := filepath.Join(root, "Dockerfile"); composeDockerfile(s) != want {
				t.Errorf("dockerfile %s, want %s", composeDockerfile(s), want)
			}
			if _, err := os.Stat(composeDockerfile(s)); err != nil {
				t.Fatal(err)
			}
			if args := buildArgs(t, s); args["ROLE"] != role {
				t.Errorf("build args %v, want ROLE=%s", args, role)
			}
			// The image the build is tagged as names the role it holds.
			ref := s.Image
			if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
				ref = ref[:i] // the tag
			}
			if path.Base(ref) != role {
				t.Errorf("image %s for role %s", s.Image, role)
			}
			for _, dep := range infra {
				d, ok := s.DependsOn[dep]
				if !ok || d.Condition != types.ServiceConditionHealthy {
					t.Errorf("depends_on %s: %+v, want condition service_healthy", dep, d)
				}
			}
			df := composeBuild(t, s)
			if len(df.Undefined) > 0 {
				t.Errorf("the build args %v leave %v without a value", buildArgs(t, s), df.Undefined)
			}
			final := df.final()
			var entry []string
			for _, in := range final.all("ENTRYPOINT") {
				entry = in.Exec
			}
			if want := []string{"CMD", entry[0], "healthcheck"}; s.HealthCheck == nil || !slices.Equal(s.HealthCheck.Test, want) {
				t.Errorf("healthcheck %v, want %v (the image's binary)", s.HealthCheck.Test, want)
			}
			cfg := checkRoleConfig(t, p, s, role, final.env(), copies(t, df))
			// Compose's defaults are for development: dev unless .env says
			// otherwise, and every one refused by BEDS_ENV=prod.
			if cfg.Env != config.EnvDev {
				t.Errorf("BEDS_ENV %s without a .env, want dev", cfg.Env)
			}
			prod := *cfg
			prod.Env = config.EnvProd
			if err := prod.Validate(); err == nil || !strings.Contains(err.Error(), "config amqp.url") {
				t.Errorf("BEDS_ENV=prod with compose's default RabbitMQ account: %v, want a refusal naming amqp.url", err)
			}
			err := prod.CheckStoreCredentials(roleStores[role])
			for _, store := range roleStores[role] {
				if err == nil || !strings.Contains(err.Error(), "config stores."+store+".") {
					t.Errorf("BEDS_ENV=prod with compose's default %s account: %v, want a refusal naming stores.%s", store, err, store)
				}
			}
		})
	}

	if s := p.Services["appserver"]; s.GetScale() != 2 {
		t.Errorf("appserver runs %d replicas, want 2", s.GetScale())
	}
	published := false
	for _, port := range p.Services["rabbitmq"].Ports {
		if port.Target == 5672 && port.Published == "5672" {
			published = true
		}
	}
	if !published {
		t.Errorf("rabbitmq does not publish 5672: bedsctl on the host cannot reach the cluster")
	}
	for _, name := range []string{"mariadb", "mongo"} {
		for _, v := range p.Services[name].Volumes {
			if v.Target == "/docker-entrypoint-initdb.d" && v.Type != types.VolumeTypeBind {
				t.Errorf("%s: init scripts are not a bind mount of deploy/", name)
			}
		}
	}
	mariaInit := mountSource(p.Services["mariadb"], "/docker-entrypoint-initdb.d")
	if sqls, _ := filepath.Glob(filepath.Join(mariaInit, "*.sql")); mariaInit == "" || len(sqls) == 0 {
		t.Errorf("mariadb: /docker-entrypoint-initdb.d is not a folder of *.sql (%q)", mariaInit)
	}
	mongoInit := mountSource(p.Services["mongo"], "/docker-entrypoint-initdb.d")
	for _, f := range []string{"init.js", "indexes.json"} {
		if _, err := os.Stat(filepath.Join(mongoInit, f)); mongoInit == "" || err != nil {
			t.Errorf("mongo: /docker-entrypoint-initdb.d lacks %s (%q)", f, mongoInit)
		}
	}
	if scripts, _ := filepath.Glob(filepath.Join(mongoInit, "[0-9][0-9][0-9]_*.js")); mongoInit == "" || len(scripts) == 0 {
		t.Errorf("mongo: /docker-entrypoint-initdb.d holds no template script NNN_<template>.js (%q)", mongoInit)
	}

	// The accounts (least privilege): each server's init makes the nodes'
	// accounts from the variables it is given.
	rabbit := p.Services["rabbitmq"]
	rabbitDir := mountSource(rabbit, "/etc/beds/rabbitmq")
	if want := []string{"bash", "/etc/beds/rabbitmq/entrypoint.sh"}; !slices.Equal(rabbit.Entrypoint, want) || rabbitDir != filepath.Join(root, "deploy", "rabbitmq") {
		t.Errorf("rabbitmq: entrypoint %v with %q mounted, want %v with deploy/rabbitmq", rabbit.Entrypoint, rabbitDir, want)
	}
	if want := []string{"rabbitmq-server"}; !slices.Equal(rabbit.Command, want) {
		t.Errorf("rabbitmq: command %v, want %v (an entrypoint drops the image's CMD)", rabbit.Command, want)
	}
	if hc := rabbit.HealthCheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "/tmp/beds-accounts-applied") {
		t.Errorf("rabbitmq: the healthcheck does not wait for the accounts (entrypoint.sh's marker)")
	}
	for svc, vars := range map[string][]string{
		"rabbitmq": {"AMQP_NODE_USER", "AMQP_NODE_PASSWORD", "AMQP_APP_USER", "AMQP_APP_PASSWORD"},
		"mariadb":  {"MARIADB_APP_USER", "MARIADB_APP_PASSWORD", "MARIADB_TERCERO_USER", "MARIADB_TERCERO_PASSWORD"},
		"mongo":    {"MONGO_NODE_USER", "MONGO_NODE_PASSWORD"},
	} {
		env := envOf(p.Services[svc])
		for _, v := range vars {
			if env[v] == "" {
				t.Errorf("%s: %s is not set: its accounts script needs it", svc, v)
			}
		}
	}
	for _, f := range []string{filepath.Join(mariaInit, "900_accounts.sh"), filepath.Join(mariaInit, "accounts", "accounts.sh"), filepath.Join(mongoInit, "accounts.js")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("accounts script: %v", err)
		}
	}
	// The mariadb image sources a .sh that is not executable (it then has
	// docker_process_sql); an executable one runs in a shell of its own.
	if fi, err := os.Stat(filepath.Join(mariaInit, "900_accounts.sh")); err == nil && fi.Mode()&0o111 != 0 {
		t.Errorf("deploy/mariadb/900_accounts.sh is executable: the mariadb image must source it")
	}
}

// composeDockerfile is the service's Dockerfile, an absolute path.
func composeDockerfile(s types.ServiceConfig) string {
	if filepath.IsAbs(s.Build.Dockerfile) {
		return s.Build.Dockerfile
	}
	return filepath.Join(s.Build.Context, s.Build.Dockerfile)
}

// buildArgs are the service's build args; compose-go leaves one written
// without a value nil (it would come from the environment): not used here.
func buildArgs(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	m := map[string]string{}
	for k, v := range s.Build.Args {
		if v == nil {
			t.Fatalf("build arg %s has no value in docker-compose.yml", k)
		}
		m[k] = *v
	}
	return m
}

// composeBuild reads the service's Dockerfile with its build args, as
// `docker compose build` has the builder read it.
func composeBuild(t *testing.T, s types.ServiceConfig) *dockerfile {
	t.Helper()
	if s.Build == nil {
		t.Fatalf("%s is not built", s.Name)
	}
	return parseDockerfile(t, composeDockerfile(s), buildArgs(t, s))
}

func mountSource(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v.Source
		}
	}
	return ""
}

// copies maps the final stage's COPY destinations (from the context) to
// their sources in the repository.
func copies(t *testing.T, df *dockerfile) map[string]string {
	t.Helper()
	root := repoRoot(t)
	m := map[string]string{}
	for _, in := range df.final().all("COPY") {
		if in.Flags["from"] != "" {
			continue
		}
		if f := in.Words; len(f) == 2 {
			m[path.Clean(f[1])] = filepath.Join(root, filepath.FromSlash(path.Clean(f[0])))
		}
	}
	return m
}

// checkRoleConfig resolves the role container's configuration as the node
// would: the image's ENV, then the service's environment; the container's
// paths mapped to the host through the service's mounts (or the image's
// files); then config.LoadEnv and the template registry must accept it, and
// the servers it names must be the compose services with the accounts made
// for the role (checkRoleAccounts).
func checkRoleConfig(t *testing.T, p *types.Project, s types.ServiceConfig, role string, imageEnv map[string]string, baked map[string]string) *config.Config {
	t.Helper()
	env := maps.Clone(imageEnv)
	maps.Copy(env, envOf(s))
	toHost := func(p string) string {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && (p == v.Target || strings.HasPrefix(p, v.Target+"/")) {
				return filepath.Join(v.Source, strings.TrimPrefix(p, v.Target))
			}
		}
		for dst, src := range baked {
			if p == dst || strings.HasPrefix(p, dst+"/") {
				return filepath.Join(src, strings.TrimPrefix(p, dst))
			}
		}
		return p
	}
	for _, k := range []string{"BEDS_CONFIG_DIR", "BEDS_TEMPLATE_DIR"} {
		if v := env[k]; v != "" {
			env[k] = toHost(v)
		}
	}
	cfg, err := config.LoadEnv(role, env)
	if err != nil {
		t.Fatalf("the container's configuration does not load: %v", err)
	}
	if _, err := template.Load(cfg.Templates.Dir, cfg.StoreKinds()); err != nil {
		t.Errorf("the container's templates do not load: %v", err)
	}

	checkRoleAccounts(t, p, s, role, cfg)
	// Docker's default 10s between SIGTERM and SIGKILL would cut a drain short.
	if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= cfg.Shutdown.Timeout.D() {
		t.Errorf("stop_grace_period %v: want more than shutdown.timeout (%s)", s.StopGracePeriod, cfg.Shutdown.Timeout.D())
	}
	if _, port, _ := strings.Cut(cfg.HTTP.Addr, ":"); !strings.HasPrefix(cfg.HTTP.Addr, "0.0.0.0:") || port == "" {
		t.Errorf("ops endpoint %s is not reachable from outside the container", cfg.HTTP.Addr)
	}
	return cfg
}

// TestComposeSecrets checks that every credential comes from an
// interpolation that .env can override: with every variable of
// .env.example set to a marker, every password the file hands out (in an
// environment variable or inside a URL or DSN) is a marker.
func TestComposeSecrets(t *testing.T) {
	example := envExample(t)
	over := map[string]string{}
	for k, v := range example {
		over[k] = v
		if strings.Contains(k, "PASSWORD") || strings.HasSuffix(k, "_USER") {
			over[k] = "marker" + strings.ToLower(strings.ReplaceAll(k, "_", ""))
		}
	}
	over["BEDS_ENV"] = config.EnvProd // and with passwords of one's own, prod starts
	isMarker := func(s string) bool { return strings.HasPrefix(s, "marker") }
	p := loadCompose(t, over)
	secretKey := regexp.MustCompile(`(?i)pass|secret|token|key$`)
	checked := 0
	for name, s := range p.Services {
		for k, v := range envOf(s) {
			if secretKey.MatchString(k) {
				checked++
				if !isMarker(v) {
					t.Errorf("%s: %s is a literal, not overridable from .env", name, k)
				}
			}
			if u, err := url.Parse(v); err == nil && u.User != nil {
				checked++
				if pw, ok := u.User.Password(); !ok || !isMarker(pw) || !isMarker(u.User.Username()) {
					t.Errorf("%s: %s holds an account that .env cannot override", name, k)
				}
			}
			if strings.HasSuffix(k, "_DSN") {
				checked++
				d, err := mysql.ParseDSN(v)
				if err != nil || !isMarker(d.Passwd) || !isMarker(d.User) {
					t.Errorf("%s: %s holds an account that .env cannot override", name, k)
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d credentials found: is the check still looking at the right things?", checked)
	}
	// And the markers reach the servers' accounts consistently.
	for _, role := range roles(t) {
		t.Run(role, func(t *testing.T) {
			df := composeBuild(t, p.Services[role])
			cfg := checkRoleConfig(t, p, p.Services[role], role, df.final().env(), copies(t, df))
			if cfg.Env != config.EnvProd {
				t.Fatalf("BEDS_ENV=prod in .env: the node runs %s", cfg.Env)
			}
			if err := cfg.CheckStoreCredentials(roleStores[role]); err != nil {
				t.Errorf("BEDS_ENV=prod with passwords of one's own: %v", err)
			}
		})
	}
}

// roleStores lists the stores each role opens, so compose hands it the
// accounts of those and no other: admin and segundo open none today;
// tercero only MariaDB, with its own account.
var roleStores = map[string][]string{
	"appserver": {config.KindMariaDB, config.KindMongo},
	"tercero":   {config.KindMariaDB},
	"admin":     nil,
	"segundo":   nil,
}

// roleMariaDB names the mariadb service's variables holding the account a
// role uses.
var roleMariaDB = map[string][2]string{
	"appserver": {"MARIADB_APP_USER", "MARIADB_APP_PASSWORD"},
	"tercero":   {"MARIADB_TERCERO_USER", "MARIADB_TERCERO_PASSWORD"},
}

// checkRoleAccounts checks that the role logs in to RabbitMQ as the nodes'
// user the rabbitmq service creates (never its administrator), to each
// store it opens with the account made for it (never root, the DBA's
// account or MongoDB's root), and is handed no credentials of a store it
// does not open.
func checkRoleAccounts(t *testing.T, p *types.Project, s types.ServiceConfig, role string, cfg *config.Config) {
	t.Helper()
	rabbit, maria, mongo := envOf(p.Services["rabbitmq"]), envOf(p.Services["mariadb"]), envOf(p.Services["mongo"])
	stores, known := roleStores[role]
	if !known {
		t.Fatalf("role %s: add it to roleStores (the stores it opens) and give it its own accounts", role)
	}
	u, err := url.Parse(cfg.AMQP.URL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	if u.Host != "rabbitmq:5672" || u.User.Username() != rabbit["AMQP_NODE_USER"] || pw != rabbit["AMQP_NODE_PASSWORD"] {
		t.Errorf("BEDS_AMQP_URL does not name the rabbitmq service with the nodes' user it creates (AMQP_NODE_USER)")
	}
	if u.User.Username() == rabbit["RABBITMQ_DEFAULT_USER"] || u.User.Username() == rabbit["AMQP_APP_USER"] {
		t.Errorf("BEDS_AMQP_URL logs in as the operators' or the applications' user")
	}
	env := envOf(s)
	for _, kind := range []string{config.KindMariaDB, config.KindMongo} {
		key := map[string]string{config.KindMariaDB: "BEDS_MARIADB_DSN", config.KindMongo: "BEDS_MONGO_URI"}[kind]
		if _, handed := env[key]; handed != slices.Contains(stores, kind) {
			t.Errorf("%s: set %v, but the role opens %v: hand a role the accounts of the stores it opens, no others", key, handed, stores)
		}
	}
	if slices.Contains(stores, config.KindMariaDB) {
		dsn, err := mysql.ParseDSN(cfg.Stores[config.KindMariaDB].DSN)
		if err != nil {
			t.Fatal(err)
		}
		vars := roleMariaDB[role]
		if dsn.Addr != "mariadb:3306" || dsn.DBName != maria["MARIADB_DATABASE"] || dsn.User != maria[vars[0]] || dsn.Passwd != maria[vars[1]] {
			t.Errorf("BEDS_MARIADB_DSN does not name the mariadb service, its database and the account made for %s (%s)", role, vars[0])
		}
		if dsn.User == "root" || dsn.User == maria["MARIADB_USER"] {
			t.Errorf("BEDS_MARIADB_DSN uses root or the DBA's account")
		}
	}
	if slices.Contains(stores, config.KindMongo) {
		mu, err := url.Parse(cfg.Stores[config.KindMongo].URI)
		if err != nil {
			t.Fatal(err)
		}
		mpw, _ := mu.User.Password()
		db := strings.TrimPrefix(mu.Path, "/")
		if mu.Host != "mongo:27017" || mu.User.Username() != mongo["MONGO_NODE_USER"] || mpw != mongo["MONGO_NODE_PASSWORD"] ||
			db != mongo["MONGO_INITDB_DATABASE"] || (mu.Query().Has("authSource") && mu.Query().Get("authSource") != db) {
			t.Errorf("BEDS_MONGO_URI does not name the mongo service, its database and the nodes' account made there (MONGO_NODE_USER, authenticated in that database)")
		}
		if mu.User.Username() == mongo["MONGO_INITDB_ROOT_USERNAME"] {
			t.Errorf("BEDS_MONGO_URI uses MongoDB's root account")
		}
	}
}

// TestShippedPasswords checks that every password .env.example (and so
// docker-compose.yml) ships is one BEDS_ENV=prod refuses, with a note that
// names its variable.
func TestShippedPasswords(t *testing.T) {
	shipped := config.ShippedPasswords()
	n := 0
	for k, v := range envExample(t) {
		if !strings.Contains(k, "PASSWORD") {
			continue
		}
		n++
		where, ok := shipped[v]
		if !ok {
			t.Errorf("%s's default is not in config's list of shipped passwords: BEDS_ENV=prod would accept it", k)
		} else if !strings.Contains(where, k) {
			t.Errorf("%s's default: config says %q, which does not name %s", k, where, k)
		}
	}
	if n < 8 {
		t.Errorf("only %d passwords in .env.example: is the check still looking at the right things?", n)
	}
}
