// Package mq owns BEDS's use of RabbitMQ: dialing with a bounded time,
// declaring the contract's topology, and checking reachability before a
// node tries to log in.
//
// Topology (declared idempotently by every node at start and after every
// reconnect):
//
//	exchange beds       topic, durable, alternate-exchange beds.dlx
//	exchange beds.dlx   fanout, durable
//	queue beds.events   durable, dead-letter-exchange beds.dlx, type from config
//	                    (quorum: x-delivery-limit and, when set,
//	                    x-quorum-initial-group-size from config), bound to beds
//	                    with rec.read and rec.write
//	queue beds.tercero  as beds.events, bound to beds with usr.* and ses.*
//	                    (user and session requests, served by tercero)
//	queue beds.dead     durable, bound to beds.dlx, type from config;
//	                    x-max-length (overflow drop-head) and x-message-ttl
//	                    from config when set
//
// The alternate exchange catches messages no queue is bound for, and the
// dead-letter exchange catches rejected and expired requests, so nothing
// published to beds vanishes until beds.dead's own bounds drop it (the
// oldest first, or past its TTL).
//
// RabbitMQ refuses to declare an existing queue with other arguments
// (PRECONDITION_FAILED): changing amqp.queue_type or delivery_limit
// (quorum) for a virtual host that already has the queues needs them
// deleted first (move beds.dead's messages elsewhere if they matter, then
// rabbitmqctl delete_queue beds.dead), or the old values set again;
// Declare says so in its error. Other bounds on beds.dead (dead_max_length,
// dead_ttl; a beds.dead made before they existed has none) do not stop a
// node: Declare keeps the queue as it is and warns with the fix (see
// Declare).
//
// A RabbitMQ cluster is reached through one URL and the host:port of its
// other nodes (DialConfig.Addresses): Dial connects to one of them,
// starting from the next in rotation and moving on to the next when one
// does not answer, so a reconnect after a node went away finds another.
//
// Dial and Addr never print an AMQP URL's password, even for a URL that
// does not parse.
package mq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/beds-project/beds/shared/wire"
)

// Addr returns host:port of an AMQP URL, for messages that must not show
// credentials.
func Addr(rawURL string) string {
	u, err := amqp.ParseURI(rawURL)
	if err != nil {
		// Not url.Parse's host: in a URL whose password holds an
		// unescaped /, that is the user name and part of the password.
		return "(malformed amqp url)"
	}
	return net.JoinHostPort(u.Host, fmt.Sprint(u.Port))
}

// Reachable checks that something accepts TCP connections at addr.
func Reachable(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// ReachableAny checks that something accepts TCP connections at one of
// addrs at least, each tried for at most timeout in the order given. Its
// error names every address with its failure.
func ReachableAny(ctx context.Context, addrs []string, timeout time.Duration) error {
	var errs []error
	for _, a := range addrs {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := Reachable(actx, a)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("no address answered: %w", errors.Join(errs...))
}

// DialConfig says how to connect.
type DialConfig struct {
	URL string
	// Addresses are more nodes of the same RabbitMQ cluster, each
	// host:port, reached with URL's credentials, virtual host and
	// parameters (see URLs).
	Addresses []string
	Name      string        // connection name shown by RabbitMQ's tools
	Timeout   time.Duration // per address tried
	Heartbeat time.Duration
}

// CheckAddress reports whether addr is a host:port that Addresses may
// hold: a host name or IP address (IPv6 in brackets) and a port from 1
// to 65535, no user, scheme or path. Its error never quotes addr, which
// may be a URL holding a password put there by mistake.
func CheckAddress(addr string) error {
	if strings.ContainsAny(addr, "@/?") {
		return errors.New("not host:port but a URL or part of one (credentials, virtual host and parameters come from the URL)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port (an IPv6 address goes in brackets: [::1]:5672)")
	}
	if host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:%") != "" {
		return errors.New("its host is not a host name or IP address (credentials, virtual host and parameters come from the URL)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("its port is not a number from 1 to 65535")
	}
	return nil
}

// URLs returns the URL of every node to try: rawURL itself first, then
// rawURL with its host and port replaced by each of addrs in turn, an
// address equal to rawURL's own or listed before left out. Credentials,
// virtual host and query parameters (TLS files, heartbeat...) are
// rawURL's for all; with amqps each URL keeps its own host, which TLS
// then verifies. Errors never hold the password.
func URLs(rawURL string, addrs []string) ([]string, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil { // amqp.ParseURI took it: not expected
		return nil, fmt.Errorf("%w %q: it does not parse", ErrBadURL, RedactURL(rawURL))
	}
	out := []string{rawURL}
	seen := map[string]bool{Addr(rawURL): true}
	for i, a := range addrs {
		if err := CheckAddress(a); err != nil {
			return nil, fmt.Errorf("amqp address %d of %d: %w", i+1, len(addrs), err)
		}
		host, port, _ := net.SplitHostPort(a)
		key := net.JoinHostPort(strings.ToLower(host), port)
		if seen[key] {
			continue
		}
		seen[key] = true
		v := *u
		v.Host = net.JoinHostPort(host, port)
		out = append(out, v.String())
	}
	return out, nil
}

// Addrs returns host:port of every node of cfg, in URLs' order, for
// messages and reachability checks; the malformed are left out.
func (cfg DialConfig) Addrs() []string {
	urls, err := URLs(cfg.URL, cfg.Addresses)
	if err != nil {
		return []string{Addr(cfg.URL)}
	}
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = Addr(u)
	}
	return out
}

// rotation spreads connections over a cluster's nodes: each Dial starts
// at the next address, from a random one for the first, so that the
// connections of one process and of many processes spread over the
// nodes.
var rotation atomic.Uint32

func init() { rotation.Store(rand.Uint32()) }

// Dial opens a connection to one of cfg's nodes (URLs), giving up on an
// address after cfg.Timeout and on all when ctx ends. It starts at the
// next address in rotation and tries each once, in turn, until one
// connects; if none does, its error names every address with its failure
// (wrapped: errors.Is sees amqp091's errors), never a password.
func Dial(ctx context.Context, cfg DialConfig) (*amqp.Connection, error) {
	urls, err := URLs(cfg.URL, cfg.Addresses)
	if err != nil {
		return nil, err
	}
	first := 0
	if len(urls) > 1 {
		first = int(rotation.Add(1) % uint32(len(urls)))
	}
	var errs []error
	for i := range urls {
		u := urls[(first+i)%len(urls)]
		conn, err := dialOne(ctx, u, cfg)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("amqp %s: %w", Addr(u), err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("no RabbitMQ node of %d took the connection: %w", len(urls), errors.Join(errs...))
}

// dialOne opens a connection to rawURL, a URL CheckURL took.
func dialOne(ctx context.Context, rawURL string, cfg DialConfig) (*amqp.Connection, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(cfg.Name)
	ac := amqp.Config{
		Heartbeat:  cfg.Heartbeat,
		Properties: props,
		Locale:     "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: cfg.Timeout}
			dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			c, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bound the handshake too: a half-open server must not hang us.
			if err := c.SetDeadline(time.Now().Add(cfg.Timeout)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	return amqp.DialConfig(rawURL, ac)
}

// ErrBadURL is the error of an AMQP URL that does not parse.
var ErrBadURL = errors.New("malformed AMQP URL")

// CheckURL reports whether rawURL parses as an AMQP URL. Its error wraps
// ErrBadURL and shows the URL with its password masked. It does not pass
// on the parser's own reason, which quotes the URL or pieces of it (a
// password holding an unescaped / or ? is read as a port, a path or a
// query, and quoted as such).
func CheckURL(rawURL string) error {
	if _, err := amqp.ParseURI(rawURL); err != nil {
		reason := "it does not parse (check the host, port and query; a reserved character such as @ : / ? # % " +
			"in the user name or password must be percent-encoded)"
		switch {
		case strings.ContainsAny(rawURL, " \t\r\n"):
			reason = "it holds whitespace"
		case !strings.HasPrefix(rawURL, "amqp://") && !strings.HasPrefix(rawURL, "amqps://"):
			reason = "its scheme must be amqp:// or amqps://"
		}
		return fmt.Errorf("%w %q: %s", ErrBadURL, RedactURL(rawURL), reason)
	}
	return nil
}

// RedactURL returns rawURL with the password of its user info, if any,
// replaced by xxxxx, whether or not the URL parses. The user info is
// taken to end at the URL's last @, since a password may hold an
// unescaped @ or /.
func RedactURL(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		scheme, rest = "", rawURL
	} else {
		scheme += "://"
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return rawURL
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return rawURL
	}
	return scheme + user + ":xxxxx" + rest[at:]
}

// Topology describes the queues a node declares.
type Topology struct {
	QueueType string // classic or quorum
	// DeliveryLimit, for quorum queues, dead-letters a request after this
	// many failed deliveries (a poison message that kills every node that
	// takes it). 0 leaves RabbitMQ's default.
	DeliveryLimit int
	// QuorumSize, for quorum queues, is how many nodes of the cluster
	// hold a replica of each queue (x-quorum-initial-group-size), chosen
	// by RabbitMQ when the queue is declared. 0 leaves RabbitMQ's default:
	// every node of the cluster at that time.
	QuorumSize int
	// DeadMaxLength and DeadTTL bound beds.dead: at most this many
	// messages (the oldest dropped first), each kept at most this long.
	// 0 leaves it unbounded.
	DeadMaxLength int
	DeadTTL       time.Duration
}

// Declare declares the contract's exchanges and queues, on a channel of
// conn it opens and closes.
//
// A beds.dead that exists with other bounds than t's (an upgrade from a
// version that declared it without them) is kept as it is, not a reason
// to refuse to start: RabbitMQ cannot change a live queue's arguments, and
// a node that does not start helps nobody. Declare then declares it
// passively, logs a warning on log (slog.Default if nil; once per process
// and virtual host, not at every reconnect) that gives the fix, and goes
// on. Any other argument
// that differs fails as declareErr says.
func Declare(conn *amqp.Connection, t Topology, log *slog.Logger) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	// ch is replaced below if RabbitMQ closes it.
	defer func() { _ = ch.Close() }()
	if err := ch.ExchangeDeclare(wire.DeadExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", wire.DeadExchange, err)
	}
	if _, err := ch.QueueDeclare(wire.DeadQueue, true, false, false, false, queueArgs(t, false)); err != nil {
		reason, ok := otherBounds(err)
		if !ok {
			return declareErr(wire.DeadQueue, err, "amqp.queue_type, dead_max_length and dead_ttl")
		}
		// RabbitMQ closed the channel with its refusal.
		if ch, err = conn.Channel(); err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		if _, err := ch.QueueDeclarePassive(wire.DeadQueue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare queue %s passively: %w", wire.DeadQueue, err)
		}
		warnUnbounded(log, conn.Config.Vhost, t, reason)
	}
	if err := ch.QueueBind(wire.DeadQueue, "", wire.DeadExchange, false, nil); err != nil {
		return fmt.Errorf("bind %s: %w", wire.DeadQueue, err)
	}
	if err := ch.ExchangeDeclare(wire.Exchange, amqp.ExchangeTopic, true, false, false, false,
		amqp.Table{"alternate-exchange": wire.DeadExchange}); err != nil {
		return fmt.Errorf("declare exchange %s: %w", wire.Exchange, err)
	}
	if _, err := ch.QueueDeclare(wire.EventsQueue, true, false, false, false, queueArgs(t, true)); err != nil {
		return declareErr(wire.EventsQueue, err, "amqp.queue_type, delivery_limit and quorum_size (quorum)")
	}
	for _, q := range []struct {
		name string
		keys []string
	}{
		{wire.EventsQueue, []string{wire.RouteRead, wire.RouteWrite}},
		{wire.TerceroQueue, []string{wire.RouteUsers, wire.RouteSessions}},
	} {
		if q.name != wire.EventsQueue {
			if _, err := ch.QueueDeclare(q.name, true, false, false, false, queueArgs(t, true)); err != nil {
				return declareErr(q.name, err, "amqp.queue_type, delivery_limit and quorum_size (quorum)")
			}
		}
		for _, key := range q.keys {
			if err := ch.QueueBind(q.name, key, wire.Exchange, false, nil); err != nil {
				return fmt.Errorf("bind %s to %s: %w", q.name, key, err)
			}
		}
	}
	return nil
}

// otherBounds reports whether err is RabbitMQ's refusal to declare
// beds.dead because of its bounds (an argument x-max-length,
// x-message-ttl or x-overflow it holds or lacks), with RabbitMQ's reason.
// A refusal over its type is not: that changes what the queue promises.
func otherBounds(err error) (string, bool) {
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		return "", false
	}
	for _, arg := range []string{"'x-max-length'", "'x-message-ttl'", "'x-overflow'"} {
		if strings.Contains(ae.Reason, arg) {
			return ae.Reason, true
		}
	}
	return "", false
}

// warned holds the virtual hosts whose unbounded beds.dead was warned of.
var warned sync.Map

// warnUnbounded tells the operator, once per virtual host, that beds.dead
// is not bounded as configured, and how to fix it.
func warnUnbounded(log *slog.Logger, vhost string, t Topology, reason string) {
	if _, done := warned.LoadOrStore(vhost, true); done {
		return
	}
	if log == nil {
		log = slog.Default()
	}
	if vhost == "" {
		vhost = "/"
	}
	del := fmt.Sprintf("rabbitmqctl delete_queue -p %s %s", shellQuote(vhost), wire.DeadQueue)
	if t.DeadMaxLength <= 0 && t.DeadTTL <= 0 {
		log.Warn(fmt.Sprintf("queue %s exists with bounds the config does not set (amqp.dead_max_length and dead_ttl are 0); "+
			"RabbitMQ cannot change a live queue's arguments, so it keeps them. To make it as configured, delete it when it is empty (%s): "+
			"the next start declares it anew", wire.DeadQueue, del), "vhost", vhost, "rabbitmq", reason)
		return
	}
	policy := map[string]any{}
	var bounds []string
	if t.DeadMaxLength > 0 {
		policy["max-length"], policy["overflow"] = t.DeadMaxLength, "drop-head"
		bounds = append(bounds, fmt.Sprintf("dead_max_length = %d", t.DeadMaxLength))
	}
	if t.DeadTTL > 0 {
		policy["message-ttl"] = max(t.DeadTTL.Milliseconds(), 1)
		bounds = append(bounds, fmt.Sprintf("dead_ttl = %q", t.DeadTTL))
	}
	def, _ := json.Marshal(policy) // keys sorted: a stable command
	set := fmt.Sprintf(`rabbitmqctl set_policy -p %s beds-dead '^beds\.dead$' '%s' --apply-to queues`, shellQuote(vhost), def)
	state := "it has other bounds than these"
	if strings.Contains(reason, "current is none") { // made before the bounds existed
		state = "it is unbounded: dead letters pile up in it until RabbitMQ runs out of memory or disk"
	}
	log.Warn(fmt.Sprintf("queue %s exists without the bounds the config sets (%s), and RabbitMQ cannot change a live queue's arguments: %s. "+
		"Fix it either way: delete it when it is empty (%s) so that the next start declares it bounded, or bound it now with a policy: %s",
		wire.DeadQueue, strings.Join(bounds, ", "), state, del, set), "vhost", vhost, "rabbitmq", reason)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// declareErr explains RabbitMQ's refusal to declare an existing queue
// with other arguments, which closes the channel: the operator has to
// act, and the node cannot start until then.
func declareErr(queue string, err error, keys string) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
		return fmt.Errorf("declare queue %s: it exists with other arguments than the config's %s; "+
			"RabbitMQ cannot change them on a live queue: delete it (after moving its messages if they matter) "+
			"so the next start declares it anew, or set the config back to the values it was made with: %w", queue, keys, err)
	}
	return fmt.Errorf("declare queue %s: %w", queue, err)
}

// queueArgs returns the arguments of beds.events (events) or beds.dead.
func queueArgs(t Topology, events bool) amqp.Table {
	args := amqp.Table{"x-queue-type": t.QueueType}
	if t.QueueType == "" {
		args["x-queue-type"] = "classic"
	}
	if t.QueueType == "quorum" && t.QuorumSize > 0 {
		args["x-quorum-initial-group-size"] = int64(t.QuorumSize)
	}
	if events {
		args["x-dead-letter-exchange"] = wire.DeadExchange
		if t.QueueType == "quorum" && t.DeliveryLimit > 0 {
			args["x-delivery-limit"] = int64(t.DeliveryLimit)
		}
		return args
	}
	if t.DeadMaxLength > 0 {
		args["x-max-length"] = int64(t.DeadMaxLength)
		args["x-overflow"] = "drop-head"
	}
	if t.DeadTTL > 0 {
		args["x-message-ttl"] = max(t.DeadTTL.Milliseconds(), 1)
	}
	return args
}
