package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/wire"
)

const lineageUsage = `usage: bedsctl lineage <event> [flags]

Prints the lineage tree the nodes recorded for event, one event a line:
event ID, op and template, outcome (ok or the error code), duration, node.

flags:
`

// lineageCmd is what bedsctl lineage was asked.
type lineageCmd struct {
	url     string
	timeout time.Duration
	json    bool
	event   string
}

// parseLineage parses lineage's arguments.
func parseLineage(args []string, stderr io.Writer) (*lineageCmd, error) {
	fs := flag.NewFlagSet("lineage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cmd lineageCmd
	fs.StringVar(&cmd.url, "url", defaultURL(), "AMQP URL of the cluster")
	fs.DurationVar(&cmd.timeout, "timeout", 10*time.Second, "how long to wait for the reply")
	fs.BoolVar(&cmd.json, "json", false, "print the tree as JSON, as the node sent it")
	fs.Usage = func() {
		fmt.Fprint(stderr, lineageUsage)
		fs.PrintDefaults()
	}
	pos, err := positional(fs, args, 1, "one event ID")
	if err != nil {
		return nil, err
	}
	if cmd.event = pos[0]; !lineage.Valid(cmd.event) {
		return nil, fmt.Errorf("%q is not an event ID: printable ASCII without spaces, 1 to %d bytes", cmd.event, lineage.MaxLen)
	}
	return &cmd, nil
}

func cmdLineage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := parseLineage(args, stderr)
	if err != nil {
		refuse(stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.timeout)
	defer cancel()
	c, s, err := dial(ctx, cmd.url, true, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bedsctl:", err)
		return 1
	}
	defer c.Close()
	tree, err := c.Lineage(ctx, cmd.event)
	if err != nil {
		return failed(stderr, err, s)
	}
	if cmd.json {
		out, _ := json.MarshalIndent(tree, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	io.WriteString(stdout, renderLineage(tree))
	return 0
}

// renderLineage draws tree one event a line, children below their parent
// in the order given, joined by box-drawing lines:
//
//	01JDQ3V0Z8K4M6T2X9B7C5N1PA  read users  ok  1.24ms  appserver@h1
//	├─ 01JDQ3V0Z8K4M6T2X9B7C5N1PA.1  read orders  ok  0.81ms  appserver@h1
//	│  └─ 01JDQ3V0Z8K4M6T2X9B7C5N1PA.1.1  read items  ok  0.50ms  appserver@h1
//	└─ 01JDQ3V0Z8K4M6T2X9B7C5N1PA.2  read profiles  timeout  30.00s  appserver@h1
func renderLineage(tree *wire.Lineage) string {
	var b strings.Builder
	if tree != nil {
		b.WriteString(lineageLine(tree))
		b.WriteByte('\n')
		renderChildren(&b, tree.Children, "")
	}
	return b.String()
}

// renderChildren draws children under a line whose own children are
// indented by prefix.
func renderChildren(b *strings.Builder, children []*wire.Lineage, prefix string) {
	var list []*wire.Lineage
	for _, c := range children {
		if c != nil {
			list = append(list, c)
		}
	}
	for i, c := range list {
		branch, below := "├─ ", "│  "
		if i == len(list)-1 {
			branch, below = "└─ ", "   "
		}
		b.WriteString(prefix)
		b.WriteString(branch)
		b.WriteString(lineageLine(c))
		b.WriteByte('\n')
		renderChildren(b, c.Children, prefix+below)
	}
}

// lineageLine is one event's line: ID, op and template, outcome, duration,
// node; empty parts are left out.
func lineageLine(l *wire.Lineage) string {
	what := orDash(string(l.Op))
	if l.Template != "" {
		what += " " + l.Template
	}
	parts := []string{orDash(l.Event), what, orDash(l.Outcome), duration(l.DurationUS)}
	if l.Node != "" {
		parts = append(parts, l.Node)
	}
	for i, p := range parts {
		parts[i] = printable(p)
	}
	return strings.Join(parts, "  ")
}

// duration shows microseconds as milliseconds below a second, else as
// seconds, both with two decimals; a duration that would round to
// "1000.00ms" shows as "1.00s".
func duration(us int64) string {
	if us < 999_995 {
		return strconv.FormatFloat(float64(us)/1e3, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(float64(us)/1e6, 'f', 2, 64) + "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable quotes s when it holds anything but printable characters, so
// a node's text cannot move the terminal's cursor or break a line.
func printable(s string) string {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
