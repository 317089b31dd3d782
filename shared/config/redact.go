package config

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
)

const mask = "xxxxx"

// Redacted returns a copy of c with every password replaced by xxxxx.
func (c *Config) Redacted() *Config {
	r := *c
	r.AMQP.URL = RedactURL(c.AMQP.URL)
	r.Stores = make(map[string]Store, len(c.Stores))
	for n, s := range c.Stores {
		s.DSN = RedactDSN(s.DSN)
		s.SecondaryDSN = RedactDSN(s.SecondaryDSN)
		s.URI = RedactURL(s.URI)
		r.Stores[n] = s
	}
	return &r
}

// String renders the redacted configuration as JSON.
func (c *Config) String() string {
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		return "config: " + err.Error()
	}
	return string(b)
}

// LogValue implements slog.LogValuer: a logged Config is always redacted.
func (c *Config) LogValue() slog.Value {
	r := c.Redacted()
	attrs := []slog.Attr{
		slog.String("env", r.Env),
		slog.Any("files", r.files),
		slog.String("node", r.Node.Name),
		slog.String("templates", r.Templates.Dir),
		slog.String("amqp", r.AMQP.URL),
		slog.String("queue_type", r.AMQP.QueueType),
		slog.String("http", r.HTTP.Addr),
	}
	for _, n := range r.StoreNames() {
		s := r.Stores[n]
		target := s.DSN
		if s.Kind == KindMongo {
			target = s.URI
		}
		attrs = append(attrs, slog.String("store."+n, s.Kind+" "+target))
	}
	return slog.GroupValue(attrs...)
}

// RedactURL masks the password of a URL such as amqp://user:pass@host/.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparseable: mask everything between "://" and "@", if present.
		if i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@"); i >= 0 && j > i {
			return raw[:i+3] + mask + raw[j:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), mask)
	}
	return u.String()
}

// RedactDSN masks the password of a go-sql-driver DSN.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return dsn
	}
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		if j := strings.LastIndex(dsn, "@"); j >= 0 {
			return mask + dsn[j:]
		}
		return dsn
	}
	if c.Passwd != "" {
		c.Passwd = mask
	}
	return c.FormatDSN()
}

// redactErr rewrites an error mentioning a secret-bearing URL. The URL is
// often unparseable (that is why there is an error, and the parser quotes it
// whole), so the password is also found without net/url.
func redactErr(err error, raw string) string {
	msg := strings.ReplaceAll(err.Error(), raw, RedactURL(raw))
	if p := urlPassword(raw); p != "" {
		msg = strings.ReplaceAll(msg, p, mask)
	}
	return msg
}

// urlPassword returns the password of scheme://user:pass@host..., parsed or
// not, or "".
func urlPassword(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil {
			return ""
		}
		p, _ := u.User.Password()
		return p
	}
	i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@")
	if i < 0 || j <= i {
		return ""
	}
	_, p, _ := strings.Cut(raw[i+3:j], ":")
	return p
}
