package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) {
	what := string(r.Op)
	switch {
	case r.Mix != "":
		what += " (" + r.Mix + ")"
	case r.Op == Batch:
		what += " of " + ints(r.Batch) + " point reads per message"
	case r.Op == Include:
		what += fmt.Sprintf(" (a point read with its %d %s)", r.Children, Relation)
	case r.Op == Delete:
		what += fmt.Sprintf(" by key (%d records seeded per target, each deleted once)", r.DeleteSeed)
	}
	length := r.Duration.String()
	if r.Requests > 0 {
		length = fmt.Sprintf("%d requests", r.Requests)
	}
	if r.Rate > 0 {
		length += fmt.Sprintf(" paced at %g req/s", r.Rate)
	}
	fmt.Fprintf(w, "bench %s: %s on template %s, %d clients, %s per run (+%s warmup), %d round(s), payload %d B\n",
		r.RunID, what, r.Template, r.Clients, length, r.Warmup, r.Rounds, r.Payload)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	if r.Baseline != "" {
		fmt.Fprintf(w, "baseline: raw amqp091-go + go-sql-driver server, %s\n", r.Baseline)
	}
	if r.Against != "" {
		fmt.Fprintf(w, "against: the same node reading template %s without a session (ratios are beds / against)\n", r.Against)
	}
	if r.Session {
		fmt.Fprintf(w, "session: every measured beds request carried a session token (the node enforced [access] for its user)\n")
	}
	procNames := r.procNames()
	countsOps := r.Op.countsOps()
	// opsCell is the ops/s column, shown when a message is not one
	// database operation.
	opsCell := func(v float64) string {
		if !countsOps {
			return ""
		}
		return fmt.Sprintf("%.0f\t", v)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := "target\tround\trequests\ttp/s\t"
	if countsOps {
		head += "ops/s\t"
	}
	head += "p50\tp90\tp99\tp99.9\tmax\terrors\tserver µs/req\tclient µs/req\t"
	for _, n := range procNames {
		head += n + " µs/req\t"
	}
	fmt.Fprintln(tw, head)
	for _, run := range r.Runs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.0f\t", runName(run.Target, run.Batch), run.Round, run.Requests, run.TPS,
			opsCell(run.OpsPerSec), ms(run.Latency.P50), ms(run.Latency.P90), ms(run.Latency.P99), ms(run.Latency.P999), ms(run.Latency.Max),
			sum(run.Errors), us(run.ServerCPU), run.ClientCPU)
		for _, n := range procNames {
			fmt.Fprintf(tw, "%s\t", procCell(run.ProcCPU, n))
		}
		fmt.Fprintln(tw)
	}
	summaries := r.summaries()
	for _, s := range summaries {
		fmt.Fprintf(tw, "%s\t%d\t\t%.0f\t%s%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.0f\t", s.name+" (median)", s.s.Runs, s.s.TPS,
			opsCell(s.s.OpsPerSec), ms(s.s.Latency.P50), ms(s.s.Latency.P90), ms(s.s.Latency.P99), ms(s.s.Latency.P999), ms(s.s.Latency.Max),
			sum(s.s.Errors), us(s.s.ServerCPU), s.s.ClientCPU)
		for _, n := range procNames {
			fmt.Fprintf(tw, "%s\t", procCell(s.s.ProcCPU, n))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if r.Rounds > 1 {
		var spread []string
		for _, s := range summaries {
			spread = append(spread, fmt.Sprintf("%s %.0f..%.0f", s.name, s.s.TPSMin, s.s.TPSMax))
		}
		fmt.Fprintf(w, "tp/s spread: %s\n", strings.Join(spread, ", "))
	}
	versus := TargetBaseline
	if r.Against != "" {
		versus = TargetAgainst
	}
	for _, s := range summaries {
		if s.ratio == nil {
			continue
		}
		ops := ""
		if countsOps {
			ops = fmt.Sprintf("  ops/s %.2fx", s.ratio.Ops)
		}
		procs := ""
		for _, n := range procNames {
			v := "n/a"
			if x, ok := s.ratio.ProcCPU[n]; ok {
				v = fmt.Sprintf("%.2fx", x)
			}
			procs += fmt.Sprintf("  %s CPU/req %s", n, v)
		}
		fmt.Fprintf(w, "%s/%s: tp/s %.2fx%s  p50 %.2fx  p99 %.2fx  server CPU/req %s%s\n",
			s.name, versus, s.ratio.TPS, ops, s.ratio.P50, s.ratio.P99, ratioText(s.ratio.CPU), procs)
	}
	if countsOps {
		r.writeOps(w, summaries)
	}
	for _, run := range r.Runs {
		if len(run.Ops) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s %d by op:", run.Target, run.Round)
		for _, op := range Ops {
			if s, ok := run.Ops[op]; ok {
				fmt.Fprintf(w, "  %s %d p50 %s p99 %s;", op, s.Requests, ms(s.Latency.P50), ms(s.Latency.P99))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "errors: %s\n", errorText(r))
	if r.Cleanup != "" {
		fmt.Fprintf(w, "cleanup: %s\n", r.Cleanup)
	}
}

// procNames are the names of the report's further processes (Procs,
// and any a run has), sorted: one column each.
func (r *Report) procNames() []string {
	names := map[string]bool{}
	for n := range r.Procs {
		names[n] = true
	}
	for _, run := range r.Runs {
		for n := range run.ProcCPU {
			names[n] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// procCell is process name's CPU per request in m, or "-" when m has
// none (the process could not be read around the run).
func procCell(m map[string]float64, name string) string {
	v, ok := m[name]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

// summary is one line of a report's medians.
type summary struct {
	name  string // "beds", "beds batch 16", "baseline"
	s     *Summary
	ratio *Ratios // to the baseline; nil for the baseline itself
	// what one message of it is, in the table of operations
	what string
}

// summaries are the report's medians: BEDS's, one per batch size, then
// the baseline's.
func (r *Report) summaries() []summary {
	var out []summary
	switch {
	case len(r.Sizes) > 0:
		for i := range r.Sizes {
			sz := &r.Sizes[i]
			what := fmt.Sprintf("a batch of %d point reads", sz.Batch)
			if sz.Batch == 1 {
				what = "a batch of 1 point read"
			}
			out = append(out, summary{runName(TargetBEDS, sz.Batch), &sz.BEDS, sz.Ratio, what})
		}
	case r.Op == Include:
		out = append(out, summary{TargetBEDS, &r.BEDS, r.Ratio, fmt.Sprintf("a point read with its %d %s", r.Children, Relation)})
	default:
		out = append(out, summary{TargetBEDS, &r.BEDS, r.Ratio, string(r.Op)})
	}
	if r.Base != nil {
		what := string(r.Op)
		if r.Op.countsOps() {
			what = "a point read"
		}
		name := TargetBaseline
		if r.Against != "" {
			name = TargetAgainst
		}
		out = append(out, summary{name, r.Base, nil, what})
	}
	return out
}

// writeOps writes the table of database operations per second, each
// against the baseline's one operation per message.
func (r *Report) writeOps(w io.Writer, summaries []summary) {
	fmt.Fprintf(w, "\ndatabase operations per second (a batch of N reads counts N, a read with include 2: the read and its child query; the baseline's point read 1):\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tone message is\tmsgs/s\tops/s\tops/s vs baseline\tp50\tp99\tserver µs/op\t")
	for _, s := range summaries {
		vs := "-"
		switch {
		case s.ratio != nil && s.ratio.Ops > 0:
			vs = fmt.Sprintf("%.2fx", s.ratio.Ops)
		case s.name == TargetBaseline || s.name == TargetAgainst:
			vs = "1.00x"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t\n", s.name, s.what, s.s.TPS, s.s.OpsPerSec, vs,
			ms(s.s.Latency.P50), ms(s.s.Latency.P99), us(perOp(s.s.ServerCPU, s.s.TPS, s.s.OpsPerSec)))
	}
	tw.Flush()
}

// perOp turns CPU per message into CPU per database operation.
func perOp(perMsg, msgs, ops float64) float64 {
	if ops == 0 {
		return 0
	}
	return perMsg * msgs / ops
}

// runName names a target's run: with its batch size for Op Batch.
func runName(target string, batch int) string {
	if batch == 0 {
		return target
	}
	return fmt.Sprintf("%s batch %d", target, batch)
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func errorText(r *Report) string {
	var parts []string
	for _, s := range r.summaries() {
		if len(s.s.Errors) == 0 {
			parts = append(parts, s.name+" none")
			continue
		}
		var codes []string
		for _, c := range slices.Sorted(maps.Keys(s.s.Errors)) {
			codes = append(codes, fmt.Sprintf("%s=%d", c, s.s.Errors[c]))
		}
		parts = append(parts, s.name+" "+strings.Join(codes, " "))
	}
	return strings.Join(parts, "; ")
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// ms formats a latency in milliseconds with three decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

func us(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func ratioText(v float64) string {
	if v == 0 {
		return "n/a (give --node-metrics and run the baseline as a child)"
	}
	return fmt.Sprintf("%.2fx", v)
}
