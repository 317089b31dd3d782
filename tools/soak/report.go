package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/beds-project/beds/tools/soak/chart"
	"github.com/beds-project/beds/tools/soak/growth"
	"github.com/beds-project/beds/tools/soak/sample"
)

// cmdReport reads samples, judges them and writes the report and plot; it
// exits 1 when a series fails its bound.
func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "samples.csv", "samples that soak sample wrote")
	md := fs.String("md", "", "markdown report to write (none when empty)")
	plotFile := fs.String("plot", "", "plot to write, a .svg or .png file (none when empty)")
	load := fs.String("load", "", "a file with what the load generator printed, quoted in the report (optional)")
	command := fs.String("command", "", "the command that reproduces the run, shown in the report")
	warmup := fs.Duration("warmup", -1, "samples from the start not fitted (default: 10% of the run, at least 2m, at most half)")
	def := growth.DefaultBounds()
	rss := fs.Float64("max-rss-mib-per-h", def[sample.RSS]/growth.MiB, "bound on RSS growth, MiB per hour")
	heap := fs.Float64("max-heap-mib-per-h", def[sample.HeapInuse]/growth.MiB, "bound on Go heap-in-use growth, MiB per hour")
	gor := fs.Float64("max-goroutines-per-h", def[sample.Goroutines], "bound on goroutine growth per hour")
	fds := fs.Float64("max-fds-per-h", def[sample.FDs], "bound on open-descriptor growth per hour")
	conns := fs.Float64("max-conns-per-h", def[sample.ConnsAMQP], "bound on the growth per hour of each kind of connection")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "soak report: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	bounds := growth.Bounds{
		sample.RSS: *rss * growth.MiB, sample.HeapInuse: *heap * growth.MiB, sample.Goroutines: *gor, sample.FDs: *fds,
		sample.ConnsAMQP: *conns, sample.ConnsMariaDB: *conns, sample.ConnsMongo: *conns, sample.ConnsOther: *conns,
	}
	for k, b := range bounds {
		if math.IsNaN(b) || b < 0 {
			fmt.Fprintf(stderr, "soak report: the bound on %s must be a number ≥ 0\n", sample.Series(k))
			return 2
		}
	}
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(stderr, "soak report:", err)
		return 1
	}
	samples, err := sample.Read(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "soak report: %s: %v\n", *in, err)
		return 1
	}
	res, err := growth.Judge(samples, *warmup, bounds)
	if err != nil {
		fmt.Fprintf(stderr, "soak report: %s: %v\n", *in, err)
		return 1
	}
	if *plotFile != "" {
		if _, err := chart.FormatOf(*plotFile); err != nil {
			fmt.Fprintln(stderr, "soak report:", err)
			return 2
		}
	}
	if *plotFile != "" {
		if err := chart.WriteFile(*plotFile, samples, res); err != nil {
			fmt.Fprintln(stderr, "soak report:", err)
			return 1
		}
	}
	if *md != "" {
		rep := growth.Report{Command: *command}
		if *plotFile != "" {
			rep.Plot = relative(*md, *plotFile)
		}
		if *load != "" {
			b, err := os.ReadFile(*load)
			if err != nil {
				fmt.Fprintln(stderr, "soak report:", err)
				return 1
			}
			rep.Load = string(b)
		}
		var b strings.Builder
		if err := res.WriteMarkdown(&b, rep); err != nil {
			fmt.Fprintln(stderr, "soak report:", err)
			return 1
		}
		if err := os.WriteFile(*md, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(stderr, "soak report:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "soak: %d nodes, %s of samples, fitted after %s\n",
		len(res.Nodes), res.End.Sub(res.Start).Round(time.Second), res.FitFrom.Sub(res.Start).Round(time.Second))
	for _, n := range res.Nodes {
		for _, v := range n.Verdicts {
			verdict := "ok"
			if !v.Pass {
				verdict = "FAIL: " + v.Why
			}
			fmt.Fprintf(stdout, "  %-12s %-16s slope %14s/h  bound %12s/h  %s\n", n.Name, v.Series, growth.Format(v.Series, v.Fit.Slope), growth.Format(v.Series, v.Bound), verdict)
		}
	}
	if !res.Passed() {
		fmt.Fprintf(stdout, "soak: FAIL, %d series grow past their bounds\n", len(res.Failures()))
		return 1
	}
	fmt.Fprintln(stdout, "soak: pass")
	return 0
}

// relative is target's path as seen from the folder of the file at from,
// or target as given when it has none.
func relative(from, target string) string {
	absFrom, err1 := filepath.Abs(filepath.Dir(from))
	absTarget, err2 := filepath.Abs(target)
	if err1 != nil || err2 != nil {
		return target
	}
	rel, err := filepath.Rel(absFrom, absTarget)
	if err != nil {
		return target
	}
	return filepath.ToSlash(rel)
}
