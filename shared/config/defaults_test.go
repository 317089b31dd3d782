package config_test

import (
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/config"
)

// BEDS_ENV=prod refuses RabbitMQ's guest, a shipped password and a trusted
// guest, naming the key and where the default comes from, never the
// password; dev and qa start with the same values.
func TestProdRefusesDefaultAMQP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		env   map[string]string
		want  []string // in the error; none: loads
	}{
		{"stock defaults", nil, nil, []string{"amqp.url", "stock user guest"}},
		{"guest with own password", nil, map[string]string{"BEDS_AMQP_URL": "amqp://guest:Xq7-own@rabbit:5672/"},
			[]string{"amqp.url", "stock user guest"}},
		{"guest password", nil, map[string]string{"BEDS_AMQP_URL": "amqp://node:guest@rabbit:5672/"},
			[]string{"amqp.url", "known default password", "stock password of RabbitMQ"}},
		{"compose node password", nil, map[string]string{"BEDS_AMQP_URL": "amqp://beds-node:beds-node@rabbit:5672/"},
			[]string{"amqp.url", "known default password", "RABBITMQ_NODE_PASSWORD"}},
		{"old compose password", nil, map[string]string{"BEDS_AMQP_URL": "amqp://beds:beds@rabbit:5672/"},
			[]string{"amqp.url", "known default password"}},
		{"own password", nil, map[string]string{"BEDS_AMQP_URL": "amqp://beds-node:Xq7-own@rabbit:5672/"}, nil},
		{"trusted guest", map[string]string{"env_prod.toml": "[access.trusted]\nguest = [\"admin\"]\norders = [\"member\"]\n"},
			map[string]string{"BEDS_AMQP_URL": "amqp://beds-node:Xq7-own@rabbit:5672/"},
			[]string{"access.trusted", `"guest"`, "stock account"}},
		{"trusted others", map[string]string{"env_prod.toml": "[access.trusted]\norders = [\"member\"]\n"},
			map[string]string{"BEDS_AMQP_URL": "amqp://beds-node:Xq7-own@rabbit:5672/"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"beds.toml": "# nothing set\n"}
			for k, v := range tc.files {
				files[k] = v
			}
			d := dir(t, files)
			for _, env := range []string{"dev", "qa", "prod"} {
				vars := map[string]string{"BEDS_ENV": env}
				for k, v := range tc.env {
					vars[k] = v
				}
				if env != "prod" {
					// Same values, with the prod file's contents as the env file.
					if src, ok := tc.files["env_prod.toml"]; ok {
						d := dir(t, map[string]string{"beds.toml": "", "env_" + env + ".toml": src})
						vars["BEDS_CONFIG_DIR"] = d
					}
				}
				c, err := config.LoadEnv("appserver", withDir(d, vars))
				if env != "prod" || tc.want == nil {
					if err != nil {
						t.Errorf("%s: %v", env, err)
					} else if c.Env != env {
						t.Errorf("env %s", c.Env)
					}
					continue
				}
				if err == nil {
					t.Fatalf("prod loads; want an error with %q", tc.want)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				noPassword(t, err.Error(), tc.env["BEDS_AMQP_URL"])
			}
		})
	}
}

// withDir sets BEDS_CONFIG_DIR=d unless vars has one.
func withDir(d string, vars map[string]string) map[string]string {
	if _, ok := vars["BEDS_CONFIG_DIR"]; !ok {
		vars["BEDS_CONFIG_DIR"] = d
	}
	return vars
}

// noPassword fails t if msg quotes the password of the URL or DSN raw
// (unless it is also the user name, which messages may name).
func noPassword(t *testing.T, msg, raw string) {
	t.Helper()
	if raw == "" {
		return
	}
	at := strings.LastIndex(raw, "@")
	userinfo := raw[:max(at, 0)]
	if _, after, ok := strings.Cut(userinfo, "://"); ok {
		userinfo = after
	}
	user, pw, ok := strings.Cut(userinfo, ":")
	if ok && pw != "" && pw != user && strings.Contains(msg, pw) {
		t.Errorf("message shows the password: %s", msg)
	}
}

// CheckStoreCredentials refuses, in prod, an empty or shipped MariaDB
// password and a MongoDB URI without credentials or with a shipped
// password, in the stores named; other stores and other envs pass.
func TestCheckStoreCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stores map[string]config.Store
		check  []string
		want   []string // in the prod error; none: nil
	}{
		{"stock defaults", nil, []string{"mariadb", "mongo"},
			[]string{"stores.mariadb.dsn", "without a password", "(root)", "stores.mongo.uri", "without credentials"}},
		{"stock defaults, no store opened", nil, nil, nil},
		{"stock mariadb, only mongo opened", map[string]config.Store{
			"mongo": {Kind: "mongo", URI: "mongodb://beds-node:Xq7-own@mongo:27017/beds"}}, []string{"mongo"}, nil},
		{"shipped mariadb password", map[string]config.Store{
			"mariadb": {Kind: "mariadb", DSN: "beds-app:beds-app@tcp(db:3306)/beds"}}, []string{"mariadb"},
			[]string{"stores.mariadb.dsn", "known default password", "MARIADB_APP_PASSWORD"}},
		{"shipped replica password", map[string]config.Store{
			"mariadb": {Kind: "mariadb", DSN: "app:Xq7-own@tcp(db:3306)/beds", Replicas: []string{"app:Xq7-own@tcp(r1:3306)/beds", "app:beds@tcp(r2:3306)/beds"}}},
			[]string{"mariadb"}, []string{"stores.mariadb.replicas[1]", "known default password"}},
		{"own mariadb password", map[string]config.Store{
			"mariadb": {Kind: "mariadb", DSN: "app:Xq7-own@tcp(db:3306)/beds"}}, []string{"mariadb"}, nil},
		{"mongo user without password", map[string]config.Store{
			"mongo": {Kind: "mongo", URI: "mongodb://beds-node@mongo:27017/beds"}}, []string{"mongo"},
			[]string{"stores.mongo.uri", "without credentials"}},
		{"mongo shipped password", map[string]config.Store{
			"archive": {Kind: "mongo", URI: "mongodb://beds:beds-root@mongo:27017/beds?authSource=admin"}}, []string{"archive"},
			[]string{"stores.archive.uri", "known default password", "MONGO_ROOT_PASSWORD"}},
		{"mongo x509", map[string]config.Store{
			"mongo": {Kind: "mongo", URI: "mongodb://mongo:27017/beds?authMechanism=MONGODB-X509&tls=true"}}, []string{"mongo"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, env := range []string{"dev", "qa", "prod"} {
				c := config.Default()
				c.Env = env
				for k, v := range tc.stores {
					c.Stores[k] = v
				}
				err := c.CheckStoreCredentials(tc.check)
				if env != "prod" || tc.want == nil {
					if err != nil {
						t.Errorf("%s: %v", env, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("prod: nil; want an error with %q", tc.want)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				for _, s := range tc.stores {
					noPassword(t, err.Error(), s.URI)
					noPassword(t, err.Error(), s.DSN)
					for _, r := range s.Replicas {
						noPassword(t, err.Error(), r)
					}
				}
			}
		})
	}
}

// Every shipped password comes with where it is shipped, and guest is one.
func TestShippedPasswords(t *testing.T) {
	m := config.ShippedPasswords()
	if _, ok := m["guest"]; !ok {
		t.Error("guest is not in the list")
	}
	for pw, where := range m {
		if pw == "" || where == "" {
			t.Errorf("%q: %q", pw, where)
		}
	}
	m["guest"] = "changed"
	if config.ShippedPasswords()["guest"] == "changed" {
		t.Error("ShippedPasswords returns the package's own map")
	}
}
