// Command soak samples the nodes of a running BEDS cluster over a long run
// and judges whether anything grows: scripts/soak.sh starts the cluster and
// the load and calls it; docs/soak.md says what it samples and how it
// judges.
//
//	soak sample --out samples.csv --duration 35m --interval 5s \
//	    --node appserver-1=1234,http://127.0.0.1:18281/metrics ...
//	soak report --in samples.csv --md report.md --svg soak.svg [bounds]
//
// sample writes one CSV line per node every --interval until --duration
// has passed or it gets SIGINT or SIGTERM. report fits each node's series
// after the warm-up, writes the markdown report and the plot, prints the
// verdict and exits 1 when a slope passes its bound.
//
// It is a module of its own so that the plotting library stays out of
// shared/ and the roles.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/beds-project/beds/tools/soak/sample"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: soak sample|report [flags]; soak <command> -h for its flags`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "sample":
		return cmdSample(ctx, args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "soak: unknown command %q\n%s\n", args[0], usage)
	return 2
}

// nodeFlag is the repeatable --node flag.
type nodeFlag []sample.Target

func (n *nodeFlag) String() string {
	s := make([]string, len(*n))
	for i, t := range *n {
		s[i] = t.Name
	}
	return strings.Join(s, " ")
}

func (n *nodeFlag) Set(v string) error {
	t, err := sample.ParseTarget(v)
	if err != nil {
		return err
	}
	for _, o := range *n {
		if o.Name == t.Name {
			return fmt.Errorf("node %s given twice", t.Name)
		}
	}
	*n = append(*n, t)
	return nil
}

func cmdSample(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak sample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var nodes nodeFlag
	fs.Var(&nodes, "node", "name=pid[,http://host:port/metrics] of a node to sample (repeatable)")
	out := fs.String("out", "samples.csv", "CSV file to write (replaced)")
	interval := fs.Duration("interval", 5*time.Second, "time between samples")
	duration := fs.Duration("duration", 10*time.Minute, "how long to sample")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "soak sample: unexpected argument %q\n", fs.Arg(0))
		return 2
	case len(nodes) == 0:
		fmt.Fprintln(stderr, "soak sample: no --node to sample")
		return 2
	case *interval <= 0 || *duration <= 0:
		fmt.Fprintln(stderr, "soak sample: --interval and --duration must be positive")
		return 2
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(stderr, "soak sample:", err)
		return 1
	}
	w := sample.NewWriter(f)
	var s sample.Sampler
	rounds, err := s.Run(ctx, nodes, *interval, *duration, w, stderr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "soak sample: writing %s: %v\n", *out, err)
		return 1
	}
	fmt.Fprintf(stdout, "soak: %d samples of %d nodes every %s in %s\n", rounds, len(nodes), *interval, *out)
	return 0
}
