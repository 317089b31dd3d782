package growth

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beds-project/beds/tools/soak/sample"
)

// Report is what the markdown report shows besides the result.
type Report struct {
	Command string // the command that reproduces the run
	Plot    string // the plot's file name, relative to the report
	Load    string // what the load generator printed at its end
}

// WriteMarkdown writes the result as a markdown report.
func (r *Result) WriteMarkdown(w io.Writer, rep Report) error {
	var b strings.Builder
	b.WriteString("# Soak report\n\n")
	if rep.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n\n", rep.Command)
	}
	span := r.End.Sub(r.Start).Round(time.Second)
	fmt.Fprintf(&b, "Samples from %s to %s (%s), every %s per node; the first %s are the warm-up, plotted but not fitted.\n\n",
		r.Start.UTC().Format("2006-01-02 15:04:05Z"), r.End.UTC().Format("15:04:05Z"), span,
		r.Interval.Round(10*time.Millisecond), r.FitFrom.Sub(r.Start).Round(time.Second))
	if r.Passed() {
		fmt.Fprintf(&b, "**Verdict: pass.** No series of the %d nodes grows faster than its bound.\n\n", len(r.Nodes))
	} else {
		fmt.Fprintf(&b, "**Verdict: fail.**\n\n")
		for _, f := range r.Failures() {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		b.WriteString("\n")
	}
	if rep.Plot != "" {
		fmt.Fprintf(&b, "![every node's series over time, with the fitted lines dashed](%s)\n\n", rep.Plot)
	}
	b.WriteString("Slopes are per hour, from a least-squares line through the samples after the warm-up " +
		"(± its standard error); first, last, min and max are of those samples.\n\n")
	b.WriteString("| node | series | samples | first | last | min | max | slope per hour | bound | verdict |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, n := range r.Nodes {
		for _, v := range n.Verdicts {
			k := v.Series
			slope := "-"
			if v.Fit.N >= MinFitted {
				slope = signed(k, v.Fit.Slope) + " ± " + Format(k, v.Fit.StdErr)
			}
			verdict := "pass"
			if !v.Pass {
				verdict = "**fail**: " + v.Why
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
				n.Name, k, v.Fit.N, Format(k, v.First), Format(k, v.Last), Format(k, v.Min), Format(k, v.Max),
				slope, Format(k, v.Bound), verdict)
		}
	}
	if rep.Load != "" {
		fmt.Fprintf(&b, "\n## Load\n\nWhat the load generator (bedsctl bench) printed at its end:\n\n```text\n%s\n```\n",
			strings.TrimRight(rep.Load, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// signed is a slope with its sign.
func signed(k sample.Series, slope float64) string {
	s := Format(k, slope)
	if slope >= 0 {
		s = "+" + s
	}
	return s
}
