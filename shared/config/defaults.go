package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
	amqp "github.com/rabbitmq/amqp091-go"
)

// GuestUser is RabbitMQ's stock account, guest/guest.
const GuestUser = "guest"

// shippedPasswords are the passwords this repository hands out for local
// development (docker-compose.yml's defaults, documented in .env.example),
// each with where it is shipped. BEDS_ENV=prod refuses every one of them.
// deploy/check keeps this list and the compose file in step.
var shippedPasswords = map[string]string{
	"guest":        "the stock password of RabbitMQ's default account",
	"beds":         "MARIADB_PASSWORD's default (docker-compose.yml), and the default of earlier versions",
	"beds-admin":   "RABBITMQ_ADMIN_PASSWORD's default (docker-compose.yml)",
	"beds-node":    "RABBITMQ_NODE_PASSWORD's and MONGO_NODE_PASSWORD's default (docker-compose.yml)",
	"beds-app":     "RABBITMQ_APP_PASSWORD's and MARIADB_APP_PASSWORD's default (docker-compose.yml)",
	"beds-tercero": "MARIADB_TERCERO_PASSWORD's default (docker-compose.yml)",
	"beds-root":    "MARIADB_ROOT_PASSWORD's and MONGO_ROOT_PASSWORD's default (docker-compose.yml)",
}

// ShippedPasswords returns the passwords this repository ships as
// development defaults, each with a note saying where it is shipped: the
// list BEDS_ENV=prod refuses (see CheckStoreCredentials and Validate).
func ShippedPasswords() map[string]string {
	m := make(map[string]string, len(shippedPasswords))
	for k, v := range shippedPasswords {
		m[k] = v
	}
	return m
}

// shipped reports whether password is a shipped default, and says which
// without quoting it.
func shipped(password string) (string, bool) {
	where, ok := shippedPasswords[password]
	return where, ok
}

// defaultAMQP lists what is wrong with amqp.url and access.trusted in
// production: RabbitMQ's stock user guest, or a shipped password.
func (c *Config) defaultAMQP() []error {
	var errs []error
	if u, err := amqp.ParseURI(c.AMQP.URL); err == nil { // a URL that does not parse is reported by Validate
		switch where, ok := shipped(u.Password); {
		case u.Username == GuestUser:
			errs = append(errs, fmt.Errorf("config amqp.url: BEDS_ENV=prod refuses RabbitMQ's stock user %s; "+
				"use the nodes' own account (see docs/deployment.md, least privilege)", GuestUser))
		case ok:
			errs = append(errs, fmt.Errorf("config amqp.url: BEDS_ENV=prod refuses a known default password (%s); "+
				"set a password of your own (BEDS_AMQP_URL or env_prod.toml)", where))
		}
	}
	var trusted []string
	for user := range c.Access.Trusted {
		if strings.EqualFold(user, GuestUser) {
			trusted = append(trusted, user)
		}
	}
	slices.Sort(trusted)
	for _, user := range trusted {
		errs = append(errs, fmt.Errorf("config access.trusted: BEDS_ENV=prod refuses to trust %q, RabbitMQ's stock account "+
			"(its password is known); trust the RabbitMQ user of each service instead", user))
	}
	return errs
}

// CheckStoreCredentials refuses, when Env is prod, the named stores'
// credentials that are known: a MariaDB DSN (dsn and secondary_dsn) with an
// empty or shipped password, a MongoDB URI without credentials or with a
// shipped password. In dev and qa it returns nil. A node calls it with the
// stores it opens, so a role that opens none needs no store credentials.
// The errors name the key and where the default comes from, never the
// password.
func (c *Config) CheckStoreCredentials(stores []string) error {
	if c.Env != EnvProd {
		return nil
	}
	var errs []error
	for _, name := range stores {
		s, ok := c.Stores[name]
		if !ok {
			continue
		}
		key := "stores." + name
		switch s.Kind {
		case KindMariaDB:
			dsns := []struct{ key, dsn string }{{key + ".dsn", s.DSN}}
			for i, r := range s.Replicas {
				dsns = append(dsns, struct{ key, dsn string }{fmt.Sprintf("%s.replicas[%d]", key, i), r})
			}
			for _, d := range dsns {
				if err := mariaDBCredentials(d.dsn); err != nil {
					errs = append(errs, fmt.Errorf("config %s: %w", d.key, err))
				}
			}
		case KindMongo:
			if err := mongoCredentials(s.URI); err != nil {
				errs = append(errs, fmt.Errorf("config %s.uri: %w", key, err))
			}
		}
	}
	return errors.Join(errs...)
}

func mariaDBCredentials(dsn string) error {
	d, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil // Validate reports it
	}
	if d.Passwd == "" {
		return fmt.Errorf("BEDS_ENV=prod refuses a MariaDB account (%s) without a password; "+
			"give the nodes' account a password (BEDS_MARIADB_DSN or env_prod.toml)", d.User)
	}
	if where, ok := shipped(d.Passwd); ok {
		return fmt.Errorf("BEDS_ENV=prod refuses a known default password (%s); "+
			"set a password of your own (BEDS_MARIADB_DSN or env_prod.toml)", where)
	}
	return nil
}

func mongoCredentials(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return nil // Validate reports it
	}
	if mech := u.Query().Get("authMechanism"); mech == "MONGODB-X509" || mech == "MONGODB-AWS" || mech == "MONGODB-OIDC" {
		return nil // credentials from a certificate or the platform
	}
	pw, ok := u.User.Password()
	if u.User == nil || u.User.Username() == "" || !ok || pw == "" {
		return errors.New("BEDS_ENV=prod refuses a MongoDB URI without credentials (user and password); " +
			"create the nodes' account (deploy/mongo) and name it in BEDS_MONGO_URI or env_prod.toml")
	}
	if where, ok := shipped(pw); ok {
		return fmt.Errorf("BEDS_ENV=prod refuses a known default password (%s); "+
			"set a password of your own (BEDS_MONGO_URI or env_prod.toml)", where)
	}
	return nil
}
