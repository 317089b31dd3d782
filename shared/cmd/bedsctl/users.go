package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/wire"
)

// The commands of tercero's user and session ops. Each dials the cluster,
// sends one op (user passwd two) with the stored session, unless it is
// login, and exits 0 when it was done, 1 when it was refused or failed,
// 2 for bad usage before anything is sent.

const loginUsage = `usage: bedsctl login USER [flags]

Logs USER in at tercero: reads the password without echo from the
terminal (or one line of stdin with --password-stdin), and keeps the
session token in the session file ($BEDS_SESSION_FILE, default
<config dir>/beds/session, mode 0600), which the other commands then send
with their requests. Prints who logged in and when the session expires;
the token is never printed.

flags:
`

const userUsage = `usage: bedsctl user <command> [flags]

  bedsctl user add NAME [--roles a,b]   register a user; the password is asked twice
  bedsctl user passwd [NAME]            change a password (your own without NAME)
  bedsctl user disable NAME             stop NAME logging in and end their sessions
  bedsctl user enable NAME              let NAME log in again
  bedsctl user roles NAME a,b           replace NAME's roles
  bedsctl user show [NAME]              show a user (yourself without NAME)

add, disable, enable and roles need the admin role; passwd and show of
another user too. Passwords are read without echo from the terminal, or
one a line from stdin with --password-stdin (passwd without the admin
role: the current password, then the new one).

flags:
`

// connFlags are the flags of every command that talks to the cluster.
type connFlags struct {
	url     string
	timeout time.Duration
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", defaultURL(), "AMQP URL of the cluster")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the reply")
}

// command is a parsed user or session command: its positional arguments
// and flags.
type command struct {
	connFlags
	args      []string
	fromStdin bool
	roles     string
	json      bool
}

// parseCommand parses args of the command name with usage text usage,
// wanting between least and most positional arguments (what names them
// for the error). password adds --password-stdin, roles --roles, asJSON
// --json.
func parseCommand(name, usage string, args []string, least, most int, what string, stderr io.Writer, password, roles, asJSON bool) (*command, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cmd command
	cmd.register(fs)
	if password {
		fs.BoolVar(&cmd.fromStdin, "password-stdin", false, "read the password from stdin, one a line, instead of the terminal")
	}
	if roles {
		fs.StringVar(&cmd.roles, "roles", "", "the user's roles, comma-separated, e.g. member,clerk")
	}
	if asJSON {
		fs.BoolVar(&cmd.json, "json", false, "print the answer as JSON")
	}
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errShown, err)
	}
	if len(pos) < least || len(pos) > most {
		fs.Usage()
		return nil, fmt.Errorf("%s takes %s, got %d arguments", name, what, len(pos))
	}
	for _, p := range pos {
		if p == "" {
			return nil, fmt.Errorf("%s: an argument is empty", name)
		}
	}
	cmd.args = pos
	return &cmd, nil
}

// arg returns the i-th positional argument, or "".
func (c *command) arg(i int) string {
	if i < len(c.args) {
		return c.args[i]
	}
	return ""
}

// failed prints err and returns exit code 1. An unauthenticated answer
// says how to get a session.
func failed(stderr io.Writer, err error, s storedSession) int {
	fmt.Fprintln(stderr, "bedsctl:", err)
	if we, ok := wire.AsError(err); ok && we.Code == wire.CodeUnauthenticated {
		failedHint(stderr, s)
	}
	return 1
}

// failedHint says how to get a session when the request went with a
// stored one tercero refused, or with none.
func failedHint(stderr io.Writer, s storedSession) {
	if s.token == "" {
		fmt.Fprintln(stderr, "bedsctl: no session: log in with bedsctl login USER (or connect as a RabbitMQ user [access.trusted] names)")
		return
	}
	fmt.Fprintf(stderr, "bedsctl: the session in %s has ended or is unknown: log in again with bedsctl login USER\n", s.from())
}

// expiry says when t is, and how long until then.
func expiry(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%s (in %s)", t.Local().Format("2006-01-02 15:04:05 MST"), time.Until(t).Round(time.Minute))
}

func cmdLogin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, err := parseCommand("login", loginUsage, args, 1, 1, "one user name", stderr, true, false, false)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	path, err := sessionPath()
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	pw := passwords{ctx: ctx, stdin: stdin, stderr: stderr, fromStdin: cmd.fromStdin}
	if err := pw.check(); err != nil {
		refuse(stderr, err)
		return 2
	}
	user := cmd.arg(0)
	password, err := pw.read("Password for " + user + ": ")
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.timeout)
	defer cancel()
	// Login never sends a stored session: a stale one must not stand in
	// the way of a new one.
	c, _, err := dial(ctx, cmd.url, false, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 1
	}
	defer c.Close()
	id, err := c.Login(ctx, user, password)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 1
	}
	if err := saveSession(path, id.Token); err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		// A session nobody can use is ended rather than left open.
		if lerr := c.Logout(ctx, "", client.WithSession(id.Token)); lerr != nil {
			fmt.Fprintln(stderr, "bedsctl: and the session could not be ended:", lerr)
		}
		return 1
	}
	fmt.Fprintf(stdout, "logged in as %s (user %d, roles %s)\n", id.Name, id.User, roleList(id.Roles))
	fmt.Fprintf(stdout, "session expires %s at the latest; kept in %s\n", expiry(id.Expires), path)
	return 0
}

func cmdLogout(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := parseCommand("logout", "usage: bedsctl logout [flags]\n\nEnds the stored session at tercero and removes the session file.\n\nflags:\n",
		args, 0, 0, "no arguments", stderr, false, false, false)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	s, err := loadSession(stderr)
	if err != nil {
		return failed(stderr, err, s)
	}
	if s.token == "" {
		path, _ := sessionPath()
		fmt.Fprintf(stderr, "bedsctl: not logged in: no session file at %s and %s is not set\n", path, envSession)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.timeout)
	defer cancel()
	c, s, err := dial(ctx, cmd.url, true, stderr)
	if err != nil {
		return failed(stderr, err, s)
	}
	defer c.Close()
	err = c.Logout(ctx, "")
	we, ok := wire.AsError(err)
	gone := err != nil && ok && we.Code == wire.CodeUnauthenticated
	if err != nil && !gone {
		return failed(stderr, err, storedSession{}) // the file stays: try again
	}
	what := "logged out"
	if gone {
		what = "the session had ended already"
	}
	if s.path == "" {
		fmt.Fprintf(stdout, "%s; unset %s\n", what, envSession)
		return 0
	}
	if err := removeSession(s.path); err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s; removed %s\n", what, s.path)
	return 0
}

func cmdWhoami(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := parseCommand("whoami", "usage: bedsctl whoami [flags]\n\nPrints who tercero takes bedsctl for: the stored session's user, or the\nservice the URL's RabbitMQ user is trusted as.\n\nflags:\n",
		args, 0, 0, "no arguments", stderr, false, false, true)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.timeout)
	defer cancel()
	c, s, err := dial(ctx, cmd.url, true, stderr)
	if err != nil {
		return failed(stderr, err, s)
	}
	defer c.Close()
	id, err := c.Whoami(ctx)
	if err != nil {
		return failed(stderr, err, s)
	}
	id.Token = "" // never printed, should one come
	if cmd.json {
		out, _ := json.MarshalIndent(id, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", id.Name)
	if id.Service {
		fmt.Fprintf(tw, "service:\ttrusted by its RabbitMQ user (no session)\n")
	} else {
		fmt.Fprintf(tw, "user:\t%d\n", id.User)
	}
	fmt.Fprintf(tw, "roles:\t%s\n", roleList(id.Roles))
	if id.Session != "" {
		fmt.Fprintf(tw, "session:\t%s\n", id.Session)
		fmt.Fprintf(tw, "expires:\t%s\n", expiry(id.Expires))
	}
	tw.Flush()
	return 0
}

func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := parseCommand("sessions", "usage: bedsctl sessions [USER] [flags]\n\nLists the open sessions of USER (your own without it; another user's needs\nthe admin role). * marks the stored session.\n\nflags:\n",
		args, 0, 1, "at most one user name", stderr, false, false, true)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.timeout)
	defer cancel()
	c, s, err := dial(ctx, cmd.url, true, stderr)
	if err != nil {
		return failed(stderr, err, s)
	}
	defer c.Close()
	rows, err := c.Sessions(ctx, cmd.arg(0))
	if err != nil {
		return failed(stderr, err, s)
	}
	if cmd.json {
		out, _ := json.MarshalIndent(rows, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "no open sessions")
		return 0
	}
	// A session's ID is the hex SHA-256 of its token.
	current := ""
	if s.token != "" {
		sum := sha256.Sum256([]byte(s.token))
		current = hex.EncodeToString(sum[:])
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tID\tCREATED\tSEEN\tEXPIRES")
	for _, r := range rows {
		mark := ""
		if id, _ := r["id"].(string); id != "" && id == current {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, cell(r["id"]), cell(r["created"]), cell(r["seen"]), cell(r["expires"]))
	}
	tw.Flush()
	return 0
}

func cmdRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := parseCommand("revoke", "usage: bedsctl revoke [USER] [flags]\n\nEnds every session of USER (your own without it, the stored one too;\nanother user's needs the admin role).\n\nflags:\n",
		args, 0, 1, "at most one user name", stderr, false, false, false)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.timeout)
	defer cancel()
	c, s, err := dial(ctx, cmd.url, true, stderr)
	if err != nil {
		return failed(stderr, err, s)
	}
	defer c.Close()
	user := cmd.arg(0)
	n, err := c.Revoke(ctx, user)
	if err != nil {
		return failed(stderr, err, s)
	}
	if user != "" {
		fmt.Fprintf(stdout, "ended %d sessions of %s\n", n, user)
		return 0
	}
	fmt.Fprintf(stdout, "ended %d of your sessions\n", n)
	if s.path != "" {
		if err := removeSession(s.path); err != nil {
			fmt.Fprintln(stderr, "bedsctl:", err)
			return 1
		}
		fmt.Fprintf(stdout, "removed %s\n", s.path)
	}
	return 0
}

func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	type spec struct {
		least, most int
		what        string
		password    bool
		roles       bool
		json        bool
	}
	specs := map[string]spec{
		"add":     {1, 1, "one user name", true, true, false},
		"passwd":  {0, 1, "at most one user name", true, false, false},
		"disable": {1, 1, "one user name", false, false, false},
		"enable":  {1, 1, "one user name", false, false, false},
		"roles":   {2, 2, "a user name and a comma-separated list of roles", false, false, false},
		"show":    {0, 1, "at most one user name", false, false, true},
	}
	sp, ok := specs[sub]
	switch {
	case sub == "-h" || sub == "-help" || sub == "--help" || sub == "help":
		fmt.Fprint(stdout, userUsage)
		return 0
	case !ok:
		fmt.Fprintf(stderr, "bedsctl: unknown user command %q\n\n%s", sub, userUsage)
		return 2
	}
	cmd, err := parseCommand("user "+sub, userUsage, args, sp.least, sp.most, sp.what, stderr, sp.password, sp.roles, sp.json)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	pw := passwords{ctx: ctx, stdin: stdin, stderr: stderr, fromStdin: cmd.fromStdin}
	var roles []string
	switch sub {
	case "add":
		roles = splitList(cmd.roles)
	case "roles":
		if roles = splitList(cmd.arg(1)); len(roles) == 0 {
			refuse(stderr, fmt.Errorf("user roles %s: give at least one role (user disable stops a user instead)", cmd.arg(0)))
			return 2
		}
	}
	if sp.password {
		if err := pw.check(); err != nil {
			refuse(stderr, err)
			return 2
		}
	}
	// add reads its password before dialing; passwd asks after whoami
	// says whether the current one is needed.
	var password string
	if sub == "add" {
		if password, err = pw.readNew("Password for " + cmd.arg(0) + ": "); err != nil {
			refuse(stderr, err)
			return 2
		}
	}

	ctx, cancel := context.WithTimeout(ctx, cmd.timeout)
	defer cancel()
	c, s, err := dial(ctx, cmd.url, true, stderr)
	if err != nil {
		return failed(stderr, err, s)
	}
	defer c.Close()
	name := cmd.arg(0)
	switch sub {
	case "add":
		if err := c.Register(ctx, name, password, roles); err != nil {
			return failed(stderr, err, s)
		}
		fmt.Fprintf(stdout, "added user %s (roles %s)\n", name, roleList(roles))
	case "passwd":
		return userPasswd(ctx, c, s, name, &pw, stdout, stderr)
	case "disable":
		if err := c.Disable(ctx, name); err != nil {
			return failed(stderr, err, s)
		}
		fmt.Fprintf(stdout, "disabled %s; their sessions have ended\n", name)
	case "enable":
		if err := c.Enable(ctx, name); err != nil {
			return failed(stderr, err, s)
		}
		fmt.Fprintf(stdout, "enabled %s\n", name)
	case "roles":
		if err := c.SetRoles(ctx, name, roles); err != nil {
			return failed(stderr, err, s)
		}
		fmt.Fprintf(stdout, "%s now has roles %s\n", name, roleList(roles))
	case "show":
		row, err := c.User(ctx, name)
		if err != nil {
			return failed(stderr, err, s)
		}
		printRow(stdout, row, cmd.json)
	}
	return 0
}

// userPasswd changes name's password ("" for the caller's own). Whoami
// says who the caller is: an admin gives no current password.
func userPasswd(ctx context.Context, c *client.Client, s storedSession, name string, pw *passwords, stdout, stderr io.Writer) int {
	id, err := c.Whoami(ctx)
	if err != nil {
		return failed(stderr, err, s)
	}
	if name == "" {
		if id.Service {
			refuse(stderr, fmt.Errorf("you act as the service %s, which has no password: name the user (user passwd NAME)", id.Name))
			return 2
		}
		name = id.Name
	}
	var current string
	if !id.Has(wire.RoleAdmin) {
		if current, err = pw.read("Current password for " + name + ": "); err != nil {
			refuse(stderr, err)
			return 2
		}
	}
	next, err := pw.readNew("New password for " + name + ": ")
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	if err := c.Passwd(ctx, name, current, next); err != nil {
		return failed(stderr, err, s)
	}
	fmt.Fprintf(stdout, "changed the password of %s; their other sessions have ended\n", name)
	return 0
}

// printRow prints a user row: its known members first, in their order,
// then the rest by name; or the row as JSON.
func printRow(w io.Writer, row wire.Row, asJSON bool) {
	if asJSON {
		out, _ := json.MarshalIndent(row, "", "  ")
		fmt.Fprintln(w, string(out))
		return
	}
	known := []string{"id", "name", "roles", "disabled", "created", "changed"}
	var rest []string
	for k := range row {
		if !slices.Contains(known, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range append(known, rest...) {
		if v, ok := row[k]; ok {
			fmt.Fprintf(tw, "%s:\t%s\n", k, cell(v))
		}
	}
	tw.Flush()
}

// cell renders a reply value for a table: lists comma-separated, nothing
// as -, text quoted when it holds control characters (printable).
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		return printable(v)
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = cell(p)
		}
		return strings.Join(parts, ",")
	}
	return printable(fmt.Sprint(v))
}

func roleList(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, ",")
}
