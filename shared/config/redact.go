package config

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
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
		if s.Replicas != nil {
			s.Replicas = make([]string, len(c.Stores[n].Replicas))
			for i, dsn := range c.Stores[n].Replicas {
				s.Replicas[i] = RedactDSN(dsn)
			}
		}
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
		slog.Any("amqp_addresses", r.AMQP.Addresses),
		slog.String("queue_type", r.AMQP.QueueType),
		slog.String("http", r.HTTP.Addr),
		slog.String("lineage", r.Lineage.Store),
	}
	for _, n := range r.StoreNames() {
		s := r.Stores[n]
		target := s.DSN
		if s.Kind == KindMongo {
			target = s.URI
		}
		if len(s.Replicas) > 0 {
			target += " replicas " + strings.Join(s.Replicas, ",")
		}
		attrs = append(attrs, slog.String("store."+n, s.Kind+" "+target))
	}
	return slog.GroupValue(attrs...)
}

// RedactURL masks the password of a URL such as amqp://user:pass@host/,
// and the values of query parameters that carry secrets (see
// secretParam), such as MongoDB's tlsCertificateKeyFilePassword or the
// AWS_SESSION_TOKEN of authMechanismProperties.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparseable: mask everything between "://" and "@", if present,
		// and the secrets of what looks like the query.
		out, rest := raw, raw
		if i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@"); i >= 0 && j > i {
			out, rest = raw[:i+3]+mask+raw[j:], raw[j:]
		}
		if k := strings.IndexByte(rest, '?'); k >= 0 {
			cut := len(out) - len(rest) + k + 1
			out = out[:cut] + redactQuery(out[cut:])
		}
		return out
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), mask)
			changed = true
		}
	}
	if q := redactQuery(u.RawQuery); q != u.RawQuery {
		u.RawQuery = q
		changed = true
	}
	if !changed {
		return raw
	}
	return u.String()
}

// secretParam reports whether a query parameter (its name in lower case)
// carries a secret: the MongoDB driver's tlsCertificateKeyFilePassword
// and sslClientCertificateKeyPassword, and anything else named like a
// password, secret or token.
func secretParam(name string) bool {
	for _, w := range []string{"password", "passwd", "pwd", "secret", "token"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// publicAuthProperties are the authMechanismProperties of the MongoDB
// driver that name no secret (Kerberos service names, OIDC environment
// and resource); every other property's value (AWS_SESSION_TOKEN, and
// any the driver may add) is masked.
var publicAuthProperties = map[string]bool{
	"SERVICE_NAME": true, "CANONICALIZE_HOST_NAME": true, "SERVICE_REALM": true, "SERVICE_HOST": true,
	"ENVIRONMENT": true, "TOKEN_RESOURCE": true, "ALLOWED_HOSTS": true,
}

// redactQuery masks secret values in a raw query (pairs separated by & or
// ;, as the MongoDB driver splits them), keeping everything else as
// written.
func redactQuery(q string) string {
	if q == "" {
		return q
	}
	var b strings.Builder
	for q != "" {
		end := strings.IndexAny(q, "&;")
		if end < 0 {
			end = len(q)
		}
		pair := q[:end]
		name, val, hasVal := strings.Cut(pair, "=")
		key := name
		if k, err := url.QueryUnescape(name); err == nil {
			key = k
		}
		key = strings.ToLower(key)
		switch {
		case !hasVal || val == "":
			b.WriteString(pair)
		case secretParam(key):
			b.WriteString(name + "=" + mask)
		case key == "authmechanismproperties":
			b.WriteString(name + "=" + redactAuthProperties(val))
		default:
			b.WriteString(pair)
		}
		if end < len(q) {
			b.WriteByte(q[end])
			end++
		}
		q = q[end:]
	}
	return b.String()
}

// redactAuthProperties masks the values of authMechanismProperties
// (NAME:value,NAME:value) other than publicAuthProperties.
func redactAuthProperties(raw string) string {
	v, err := url.QueryUnescape(raw)
	if err != nil {
		return mask
	}
	props := strings.Split(v, ",")
	for i, p := range props {
		name, _, ok := strings.Cut(p, ":")
		switch {
		case !ok:
			props[i] = mask // not NAME:value; the driver refuses it, maybe a secret
		case publicAuthProperties[strings.ToUpper(name)]:
			props[i] = url.QueryEscape(name) + ":" + url.QueryEscape(p[len(name)+1:])
		default:
			props[i] = url.QueryEscape(name) + ":" + mask
		}
	}
	return strings.Join(props, ",")
}

// URLSecrets returns the secrets a URL carries as they may appear in a
// message that quotes parts of it: the password and the values of secret
// query parameters (see RedactURL), each as written and unescaped, longest
// first so that a secret holding another is masked whole. The URL need
// not parse.
func URLSecrets(raw string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if plain, err := url.QueryUnescape(s); err == nil && plain != s && plain != "" {
			out = append(out, plain)
		}
	}
	add(urlPassword(raw))
	if i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@"); i >= 0 && j > i {
		_, p, _ := strings.Cut(raw[i+3:j], ":")
		add(p) // as written, where net/url returns it unescaped
	}
	// The query starts at the first ? after the user information, which
	// ends at the last @ (net/url) or the first (the MongoDB driver): try
	// both and the first ? overall, so no reading misses a secret.
	starts := map[int]bool{}
	for _, from := range []int{0, strings.IndexByte(raw, '@'), strings.LastIndexByte(raw, '@')} {
		if from < 0 {
			continue
		}
		if k := strings.IndexByte(raw[from:], '?'); k >= 0 {
			starts[from+k+1] = true
		}
	}
	for start := range starts {
		for _, pair := range strings.FieldsFunc(raw[start:], func(r rune) bool { return r == '&' || r == ';' }) {
			name, val, _ := strings.Cut(pair, "=")
			key := name
			if k, err := url.QueryUnescape(name); err == nil {
				key = k
			}
			key = strings.ToLower(key)
			switch {
			case secretParam(key):
				add(val)
			case key == "authmechanismproperties":
				v, err := url.QueryUnescape(val)
				if err != nil {
					add(val)
					continue
				}
				// The driver unescapes the whole value, then splits it;
				// a message may quote either form.
				for _, p := range append(strings.Split(v, ","), strings.Split(val, ",")...) {
					name, pv, ok := strings.Cut(p, ":")
					switch {
					case !ok:
						add(p)
					case !publicAuthProperties[strings.ToUpper(name)]:
						add(pv)
					}
				}
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
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
	for _, s := range URLSecrets(raw) {
		msg = strings.ReplaceAll(msg, s, mask)
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
