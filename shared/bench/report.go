package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) {
	what := string(r.Op)
	if r.Mix != "" {
		what += " (" + r.Mix + ")"
	}
	length := r.Duration.String()
	if r.Requests > 0 {
		length = fmt.Sprintf("%d requests", r.Requests)
	}
	fmt.Fprintf(w, "bench %s: %s on template %s, %d clients, %s per run (+%s warmup), %d round(s), payload %d B\n",
		r.RunID, what, r.Template, r.Clients, length, r.Warmup, r.Rounds, r.Payload)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	if r.Baseline != "" {
		fmt.Fprintf(w, "baseline: raw amqp091-go + go-sql-driver server, %s\n", r.Baseline)
	}
	procNames := slices.Sorted(maps.Keys(r.BEDS.ProcCPU))
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := "target\tround\trequests\ttp/s\tp50\tp90\tp99\tp99.9\tmax\terrors\tserver µs/req\tclient µs/req\t"
	for _, n := range procNames {
		head += n + " µs/req\t"
	}
	fmt.Fprintln(tw, head)
	for _, run := range r.Runs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.0f\t", run.Target, run.Round, run.Requests, run.TPS,
			ms(run.Latency.P50), ms(run.Latency.P90), ms(run.Latency.P99), ms(run.Latency.P999), ms(run.Latency.Max),
			sum(run.Errors), us(run.ServerCPU), run.ClientCPU)
		for _, n := range procNames {
			fmt.Fprintf(tw, "%s\t", us(run.ProcCPU[n]))
		}
		fmt.Fprintln(tw)
	}
	summaries := []struct {
		name string
		s    *Summary
	}{{"beds (median)", &r.BEDS}}
	if r.Base != nil {
		summaries = append(summaries, struct {
			name string
			s    *Summary
		}{"baseline (median)", r.Base})
	}
	for _, s := range summaries {
		fmt.Fprintf(tw, "%s\t%d\t\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.0f\t", s.name, s.s.Runs, s.s.TPS,
			ms(s.s.Latency.P50), ms(s.s.Latency.P90), ms(s.s.Latency.P99), ms(s.s.Latency.P999), ms(s.s.Latency.Max),
			sum(s.s.Errors), us(s.s.ServerCPU), s.s.ClientCPU)
		for _, n := range procNames {
			fmt.Fprintf(tw, "%s\t", us(s.s.ProcCPU[n]))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if r.Rounds > 1 {
		fmt.Fprintf(w, "tp/s spread: beds %.0f..%.0f", r.BEDS.TPSMin, r.BEDS.TPSMax)
		if r.Base != nil {
			fmt.Fprintf(w, ", baseline %.0f..%.0f", r.Base.TPSMin, r.Base.TPSMax)
		}
		fmt.Fprintln(w)
	}
	if r.Ratio != nil {
		fmt.Fprintf(w, "beds/baseline: tp/s %.2fx  p50 %.2fx  p99 %.2fx  server CPU/req %s\n",
			r.Ratio.TPS, r.Ratio.P50, r.Ratio.P99, ratioText(r.Ratio.CPU))
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

func errorText(r *Report) string {
	var parts []string
	for _, s := range []struct {
		name string
		s    *Summary
	}{{"beds", &r.BEDS}, {"baseline", r.Base}} {
		if s.s == nil {
			continue
		}
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
