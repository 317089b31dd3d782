// Command bedsctl is the command-line client of BEDS.
//
//	bedsctl call <template> <op> [--filter JSON] [--data JSON] [--fields a,b] [--sort -a,b] [--limit N] [--offset N]
//	             [--include rel,rel.sub] [--record] [--parent EVENT] [--traceparent TP]
//	bedsctl batch <file|-> [--record] [--parent EVENT] [--traceparent TP]
//	bedsctl lineage <event> [--json]
//	bedsctl templates [--dir DIR]
//	bedsctl schema gen [--dir DIR] [--out DEPLOY] [--force] [TEMPLATE...]
//	bedsctl schema check [--dir DIR] [--config-dir DIR] [TEMPLATE...]
//	bedsctl schema apply [--dir DIR] [--config-dir DIR] [--deploy DEPLOY] [TEMPLATE...]
//	bedsctl ping [--count N]
//	bedsctl bench [flags]
//	bedsctl login USER [--password-stdin]
//	bedsctl logout | whoami [--json] | sessions [USER] [--json] | revoke [USER]
//	bedsctl user add NAME [--roles a,b] [--password-stdin]
//	bedsctl user passwd [NAME] [--password-stdin]
//	bedsctl user disable NAME | enable NAME | roles NAME a,b | show [NAME] [--json]
//
// call and batch print the reply as JSON and exit 1 when the reply is an
// error; batch sends the JSON array of requests in a file (- for stdin) as
// one op batch request. lineage prints an event's recorded tree, one event
// a line. templates validates a template folder offline and lists its
// templates and relations, and the lint's warnings. schema gen writes the
// database objects of templates (schema.go), schema check compares the
// databases of the node's config with them, and schema apply puts the
// checked-in MongoDB scripts into their databases without mongosh. ping measures round trips to
// the cluster. login, logout, whoami, sessions, revoke and user send
// tercero's session and user ops (users.go).
//
// RabbitMQ is found at BEDS_AMQP_URL, or --url, and the other nodes of
// its cluster at BEDS_AMQP_ADDRESSES (host:port, comma-separated), which
// every command but bench tries in turn. call, batch, lineage and
// the session and user commands send the stored session (login keeps it
// in the session file, $BEDS_SESSION_FILE or <config dir>/beds/session;
// $BEDS_SESSION overrides it) in header x-beds-session; without one they
// act as the URL's RabbitMQ user (credentials.go). ping and bench send
// none.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/config"
	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

const usage = `bedsctl: the BEDS command-line client

  bedsctl call <template> <op> [flags]   send one request, print the reply
  bedsctl batch <file|-> [flags]         send a JSON array of requests as one batch
  bedsctl lineage <event> [--json]       print the recorded lineage tree of an event
  bedsctl templates [--dir DIR]          list and validate a template folder offline
  bedsctl schema gen [TEMPLATE...]       write the database objects of templates
  bedsctl schema check [TEMPLATE...]     compare the databases with their templates
  bedsctl schema apply [TEMPLATE...]     apply the checked-in MongoDB scripts without mongosh
  bedsctl ping [--count N]               round trip to the cluster
  bedsctl bench [--op OP] [--baseline]   load the cluster: tp/s, latency, CPU per request

  bedsctl login USER                     log in; the session is kept in the session file
  bedsctl logout                         end the stored session and remove the file
  bedsctl whoami                         who tercero takes you for
  bedsctl sessions [USER]                list open sessions (yours without USER)
  bedsctl revoke [USER]                  end every session (yours without USER)
  bedsctl user add NAME --roles a,b      register a user (asks the password twice)
  bedsctl user passwd [NAME]             change a password (yours without NAME)
  bedsctl user disable|enable NAME       stop or let NAME log in
  bedsctl user roles NAME a,b            replace NAME's roles
  bedsctl user show [NAME]               show a user (yourself without NAME)

call, batch, lineage and the commands above send the stored session:
$BEDS_SESSION, else the session file ($BEDS_SESSION_FILE, default
<config dir>/beds/session, mode 0600). Without one, requests act as the
URL's RabbitMQ user (the development config trusts guest as admin).
Passwords are read without echo from the terminal, or one a line from
stdin with --password-stdin; tokens and passwords are never printed.

Run "bedsctl <command> -h" for a command's flags.
Exit codes: 0 ok, 1 error reply or failure, 2 bad usage.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "call":
		return cmdCall(ctx, args[1:], stdout, stderr)
	case "batch":
		return cmdBatch(ctx, args[1:], stdin, stdout, stderr)
	case "lineage":
		return cmdLineage(ctx, args[1:], stdout, stderr)
	case "templates":
		return cmdTemplates(args[1:], stdout, stderr)
	case "schema":
		return cmdSchema(ctx, args[1:], stdout, stderr)
	case "ping":
		return cmdPing(ctx, args[1:], stdout, stderr)
	case "bench":
		return cmdBench(ctx, args[1:], stdout, stderr)
	case "login":
		return cmdLogin(ctx, args[1:], stdin, stdout, stderr)
	case "logout":
		return cmdLogout(ctx, args[1:], stdout, stderr)
	case "whoami":
		return cmdWhoami(ctx, args[1:], stdout, stderr)
	case "sessions":
		return cmdSessions(ctx, args[1:], stdout, stderr)
	case "revoke":
		return cmdRevoke(ctx, args[1:], stdout, stderr)
	case "user":
		return cmdUser(ctx, args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "bedsctl: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parse parses flags that may stand before, between or after positional
// arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// positional parses args with fs and wants exactly n positional
// arguments, which what names for the error ("one event ID"); a flag
// error has been shown by fs already (errShown).
func positional(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errShown, err)
	}
	if len(pos) != n {
		fs.Usage()
		return nil, fmt.Errorf("%s takes %s, got %d arguments", fs.Name(), what, len(pos))
	}
	return pos, nil
}

func defaultURL() string {
	if u := os.Getenv("BEDS_AMQP_URL"); u != "" {
		return u
	}
	return config.Default().AMQP.URL
}

// defaultAddresses returns the other nodes of the URL's RabbitMQ cluster
// named by BEDS_AMQP_ADDRESSES, as the nodes read it.
func defaultAddresses() []string {
	return splitList(os.Getenv("BEDS_AMQP_ADDRESSES"))
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// csvFlag is a repeatable flag of comma-separated values: "-f a,b -f c"
// is a, b, c.
type csvFlag []string

func (l *csvFlag) String() string     { return strings.Join(*l, ",") }
func (l *csvFlag) Set(s string) error { *l = append(*l, splitList(s)...); return nil }

// sendFlags are the flags of the commands that send one request and print
// its reply.
type sendFlags struct {
	connFlags
	parent string
	trace  string
	record bool
}

func (f *sendFlags) register(fs *flag.FlagSet) {
	f.connFlags.register(fs)
	fs.StringVar(&f.parent, "parent", "", "event ID whose lineage tree the request joins (header x-beds-parent)")
	fs.StringVar(&f.trace, "traceparent", "", "W3C traceparent to send, 00-<32 hex>-<16 hex>-<2 hex>")
	fs.BoolVar(&f.record, "record", false, "ask the node to record the request's lineage even when it only reads")
}

// options checks --parent and --traceparent and returns them as call
// options.
func (f *sendFlags) options() ([]client.CallOption, error) {
	var opts []client.CallOption
	if f.parent != "" {
		if !lineage.Valid(f.parent) {
			return nil, fmt.Errorf("--parent %q is not an event ID: printable ASCII without spaces, 1 to %d bytes", f.parent, lineage.MaxLen)
		}
		opts = append(opts, client.WithParent(f.parent))
	}
	if f.trace != "" {
		if err := wire.CheckTraceparent(f.trace); err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				err = errors.New(we.Message)
			}
			return nil, fmt.Errorf("--traceparent: %w", err)
		}
		opts = append(opts, client.WithTraceparent(f.trace))
	}
	return opts, nil
}

// callCmd is what bedsctl call was asked.
type callCmd struct {
	sendFlags
	req *wire.Request
}

// parseCall parses call's arguments into the request to send.
func parseCall(args []string, stderr io.Writer) (*callCmd, error) {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cmd callCmd
	cmd.register(fs)
	filter := fs.String("filter", "", `filter as JSON, e.g. '{"email":{"eq":"ann@example.com"}}'`)
	data := fs.String("data", "", `data as JSON, e.g. '{"name":"Ann"}'`)
	fields := fs.String("fields", "", "fields to return, comma-separated")
	sortKeys := fs.String("sort", "", "sort keys, comma-separated; -name sorts descending")
	limit := fs.Int("limit", 0, "rows to return (0: the node's default)")
	offset := fs.Int("offset", 0, "rows to skip")
	var include csvFlag
	fs.Var(&include, "include", "relations a read fetches with its rows, comma-separated or repeated, e.g. orders,orders.items")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bedsctl call <template> <op> [flags]\n\nops: create read update delete count")
		fs.PrintDefaults()
	}
	pos, err := positional(fs, args, 2, "a template and an op")
	if err != nil {
		return nil, err
	}
	cmd.req = &wire.Request{Template: pos[0], Op: wire.Op(pos[1]), Fields: splitList(*fields),
		Sort: splitList(*sortKeys), Limit: *limit, Offset: *offset, Include: include, Record: cmd.record}
	for _, j := range []struct {
		name string
		src  string
		dst  *json.RawMessage
	}{{"filter", *filter, &cmd.req.Filter}, {"data", *data, &cmd.req.Data}} {
		if j.src == "" {
			continue
		}
		if !json.Valid([]byte(j.src)) {
			return nil, fmt.Errorf("--%s is not valid JSON", j.name)
		}
		*j.dst = json.RawMessage(j.src)
	}
	if _, err := cmd.options(); err != nil {
		return nil, err
	}
	return &cmd, nil
}

func cmdCall(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := parseCall(args, stderr)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	return sendAndPrint(ctx, &cmd.sendFlags, cmd.req, stdout, stderr)
}

// errShown marks a usage error the flag package has printed already.
var errShown = errors.New("bad flags")

// refuse reports bad usage, unless the flag package did.
func refuse(stderr io.Writer, err error) {
	if !errors.Is(err, errShown) {
		fmt.Fprintln(stderr, "bedsctl:", err)
	}
}

// sendAndPrint sends req, prints the reply as indented JSON and returns
// the exit code: 0 for an ok reply, 1 otherwise.
func sendAndPrint(ctx context.Context, f *sendFlags, req *wire.Request, stdout, stderr io.Writer) int {
	opts, err := f.options()
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, s, err := dial(ctx, f.url, true, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 1
	}
	defer c.Close()
	reply, err := c.Do(ctx, req, opts...)
	if reply != nil {
		out, _ := json.MarshalIndent(reply, "", "  ")
		fmt.Fprintln(stdout, string(out))
		if reply.Trace != "" {
			fmt.Fprintln(stderr, "traceparent:", reply.Trace)
		}
	}
	if err != nil {
		if reply == nil {
			return failed(stderr, err, s)
		}
		if reply.Error != nil && reply.Error.Code == wire.CodeUnauthenticated {
			failedHint(stderr, s)
		}
		return 1
	}
	return 0
}

func cmdTemplates(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("templates", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dirDefault, stores := offlineConfig()
	dir := fs.String("dir", dirDefault, "template folder")
	if _, err := parse(fs, args); err != nil {
		return 2
	}
	reg, err := template.Load(*dir, stores)
	if err != nil {
		fmt.Fprintf(stderr, "bedsctl: templates in %s are not valid:\n", *dir)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  "+line)
		}
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTLA\tSTORE\tOBJECTS\tOPS\tFIELDS\tFILE")
	for _, name := range reg.Names() {
		t := reg.Get(name)
		var fields []string
		for _, f := range t.Fields {
			s := f.Name + ":" + string(f.Type)
			if f.Key {
				s += "*"
			}
			fields = append(fields, s)
		}
		var ops []string
		for _, op := range t.AllowedOps() {
			ops = append(ops, string(op))
		}
		objs := t.Objects.Collection
		if objs == "" {
			objs = strings.Join(nonEmpty(t.Objects.Read, t.Objects.Create, t.Objects.Update, t.Objects.Delete), ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.TLA, t.Store+" ("+t.StoreKind+")",
			objs, strings.Join(ops, ","), strings.Join(fields, " "), t.File)
	}
	tw.Flush()
	if ws := reg.Warnings(); len(ws) > 0 {
		fmt.Fprintln(stdout)
		for _, w := range ws {
			fmt.Fprintln(stdout, "warning:", w)
		}
	}
	if names := reg.RelationNames(); len(names) > 0 {
		fmt.Fprintln(stdout)
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RELATION\tINCLUDES\tCARDINALITY\tJOIN\tFILE")
		for _, rel := range relations(reg) {
			card := "many"
			if !rel.Many {
				card = "one"
			}
			fmt.Fprintf(tw, "%s\t%s -> %s as %s\t%s\t%s.%s = %s.%s\t%s\n", rel.Name, rel.Parent.Name, rel.Child.Name, rel.As,
				card, rel.Child.Name, rel.ChildField.Name, rel.Parent.Name, rel.ParentField.Name, rel.File)
		}
		tw.Flush()
	}
	fmt.Fprintf(stdout, "\n%d templates and %d relations valid\n", reg.Len(), len(reg.RelationNames()))
	return 0
}

// relations returns the registry's relations ordered by parent, then as.
func relations(reg *template.Registry) []*template.Relation {
	var out []*template.Relation
	for _, name := range reg.Names() {
		out = append(out, reg.Relations(reg.Get(name))...)
	}
	return out
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func cmdPing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", defaultURL(), "AMQP URL of the cluster")
	count := fs.Int("count", 3, "round trips")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for each reply")
	if _, err := parse(fs, args); err != nil {
		return 2
	}
	dctx, cancel := context.WithTimeout(ctx, *timeout)
	c, err := client.Dial(dctx, *url, client.Options{Name: "bedsctl", Channels: 1, Addresses: defaultAddresses()})
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 1
	}
	defer c.Close()
	failed := 0
	for i := 0; i < *count; i++ {
		rctx, cancel := context.WithTimeout(ctx, *timeout)
		start := time.Now()
		reply, err := c.Do(rctx, &wire.Request{Op: wire.OpPing})
		cancel()
		if err != nil {
			failed++
			var we *wire.Error
			if errors.As(err, &we) && we.Code == wire.CodeTimeout {
				fmt.Fprintf(stdout, "no reply within %s: is an appserver running?\n", *timeout)
			} else {
				fmt.Fprintln(stdout, "error:", err)
			}
			continue
		}
		fmt.Fprintf(stdout, "reply from %s: event %s in %s\n", reply.Node, reply.Event, time.Since(start).Round(time.Microsecond))
	}
	if failed > 0 {
		return 1
	}
	return 0
}
