package main

// The fault tests (fault_test.go, -tags faults) write what each measured
// to a JSON file; TestGuaranteesTable, run with -faulttable, turns those
// files into the fault-test table of docs/guarantees.md, between its
// markers, so the table is always what the tests measured. It lives here,
// in the appserver's tests, because the fault tests that write the files
// do: one type for both sides, and nothing added to a product package.
// `make faults` runs the fault tests, then this.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/testenv"
)

var writeTable = flag.Bool("faulttable", false,
	"rewrite the fault-test table of docs/guarantees.md from the fault tests' results ($BEDS_RESULTS_DIR, default results/faults)")

// The markers around the generated table in docs/guarantees.md.
const (
	tableBegin = "<!-- faults:begin -->"
	tableEnd   = "<!-- faults:end -->"
)

// faultResult is what one fault test measured, as written to
// <results>/<test>.json.
type faultResult struct {
	Test  string `json:"test"`
	Fault string `json:"fault"` // the table's first column: the fault and the load
	Sent  int64  `json:"writes_sent"`
	// Replied counts writes answered ok; Attempts every send, resends
	// included.
	Replied  int64 `json:"replied_ok"`
	Attempts int64 `json:"attempts"`
	// Resent counts error replies by code that were sent again under the
	// same event ID (system codes); Final those that were not, each a
	// failure.
	Resent     map[string]int64 `json:"error_replies_resent"`
	Final      map[string]int64 `json:"error_replies_final,omitempty"`
	Applied    int64            `json:"applied"`
	Duplicates int64            `json:"duplicates"`
	Lost       int64            `json:"lost"`
	// Recovery is the time from the end of the fault to the next ok
	// reply, in seconds; 0 when not measured.
	Recovery     float64   `json:"recovery_seconds"`
	RecoveryNote string    `json:"recovery_note,omitempty"`
	Passed       bool      `json:"passed"`
	Machine      machine   `json:"machine"`
	At           time.Time `json:"at"`
}

// machine is where a result was measured.
type machine struct {
	Host string `json:"host"`
	CPUs int    `json:"cpus"`
	OS   string `json:"os"`
	Arch string `json:"arch"`
	Go   string `json:"go"`
}

func thisMachine() machine {
	host, _ := os.Hostname()
	return machine{Host: host, CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
}

func (m machine) String() string {
	return fmt.Sprintf("`%s` (%d CPUs, %s/%s, %s)", m.Host, m.CPUs, m.OS, m.Arch, m.Go)
}

// resultsDir is where fault tests write their results: $BEDS_RESULTS_DIR,
// or results/faults at the repository root (ignored by git).
func resultsDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("BEDS_RESULTS_DIR"); d != "" {
		return d
	}
	return filepath.Join(testenv.Root(t), "results", "faults")
}

// writeResult writes r to dir/<r.Test>.json, replacing an earlier run's.
func writeResult(dir string, r faultResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results folder: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result of %s: %w", r.Test, err)
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(r.Test) + ".json"
	if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result of %s: %w", r.Test, err)
	}
	return nil
}

// loadResults reads every *.json in dir, sorted by test name.
func loadResults(dir string) ([]faultResult, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no fault-test results in %s: run make faults", dir)
	}
	out := make([]faultResult, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r faultResult
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if r.Test == "" || r.Fault == "" {
			return nil, fmt.Errorf("%s: test and fault must be set", f)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Test < out[j].Test })
	return out, nil
}

// renderTable renders results as the Markdown table of docs/guarantees.md,
// followed by where and when they were measured.
func renderTable(results []faultResult) string {
	var b strings.Builder
	b.WriteString("| fault test | writes sent | replied ok | error replies seen (then resent) | applied | duplicates | lost | recovery after the fault |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fault := fmt.Sprintf("%s (`%s`)", r.Fault, r.Test)
		if !r.Passed {
			fault += " **failed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", fault, thousands(r.Sent), thousands(r.Replied),
			errorCell(r.Resent, r.Final), thousands(r.Applied), thousands(r.Duplicates), thousands(r.Lost), recoveryCell(r))
	}
	b.WriteString("\n")
	b.WriteString(measuredLine(results))
	return b.String()
}

// measuredLine says, per machine, when its results were measured.
func measuredLine(results []faultResult) string {
	type span struct{ from, to time.Time }
	spans := map[machine]*span{}
	var order []machine
	for _, r := range results {
		s := spans[r.Machine]
		if s == nil {
			s = &span{r.At, r.At}
			spans[r.Machine] = s
			order = append(order, r.Machine)
		}
		if r.At.Before(s.from) {
			s.from = r.At
		}
		if r.At.After(s.to) {
			s.to = r.At
		}
	}
	parts := make([]string, 0, len(order))
	for _, m := range order {
		s := spans[m]
		when := s.from.UTC().Format("2006-01-02")
		if to := s.to.UTC().Format("2006-01-02"); to != when {
			when += " to " + to
		}
		parts = append(parts, fmt.Sprintf("on %s, %s", m, when))
	}
	return "Measured " + strings.Join(parts, "; ") + ".\n"
}

func errorCell(resent, final map[string]int64) string {
	var parts []string
	add := func(m map[string]int64, suffix string) {
		codes := make([]string, 0, len(m))
		for c, n := range m {
			if n > 0 {
				codes = append(codes, c)
			}
		}
		sort.Strings(codes)
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%s `%s`%s", thousands(m[c]), c, suffix))
		}
	}
	add(resent, "")
	add(final, " (final, not resent)")
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

func recoveryCell(r faultResult) string {
	if r.Recovery <= 0 {
		return "—"
	}
	var d string
	if r.Recovery < 1 {
		d = strconv.FormatFloat(r.Recovery*1000, 'f', 0, 64) + " ms"
	} else {
		d = strconv.FormatFloat(r.Recovery, 'f', 2, 64) + " s"
	}
	if r.RecoveryNote != "" {
		d += " " + r.RecoveryNote
	}
	return d
}

// thousands formats n with commas: 5000 -> 5,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// replaceMarked replaces what lies between the begin and end markers of doc
// (the marker lines stay) with body.
func replaceMarked(doc, body string) (string, error) {
	i := strings.Index(doc, tableBegin)
	j := strings.Index(doc, tableEnd)
	switch {
	case i < 0 || j < 0:
		return "", fmt.Errorf("markers %s and %s not found", tableBegin, tableEnd)
	case strings.Count(doc, tableBegin) > 1 || strings.Count(doc, tableEnd) > 1:
		return "", errors.New("the table markers appear more than once")
	case j < i:
		return "", fmt.Errorf("%s comes before %s", tableEnd, tableBegin)
	}
	start := i + len(tableBegin)
	return doc[:start] + "\n" + body + doc[j:], nil
}

// TestGuaranteesTable rewrites docs/guarantees.md's fault-test table from
// the results of the last fault-test run; it runs only with -faulttable
// (make faults passes it).
func TestGuaranteesTable(t *testing.T) {
	if !*writeTable {
		t.Skip("run with -faulttable (make faults does) to rewrite docs/guarantees.md from the fault tests' results")
	}
	path := filepath.Join(testenv.Root(t), "docs", "guarantees.md")
	n, err := regenerate(path, resultsDir(t))
	must(t, err)
	t.Logf("%s: table rewritten from %d results", path, n)
}

// regenerate rewrites the table in the Markdown file doc from the results
// in dir and returns how many there were; doc is left as it was on error.
func regenerate(doc, dir string) (int, error) {
	results, err := loadResults(dir)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		return 0, err
	}
	out, err := replaceMarked(string(b), renderTable(results))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", doc, err)
	}
	if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
		return 0, err
	}
	return len(results), nil
}

func TestRegenerate(t *testing.T) {
	dir := t.TempDir()
	r := faultResult{Test: "TestFaultKillNode", Fault: "`kill -9` one of two appservers", Sent: 5000, Replied: 5000,
		Applied: 5000, Recovery: 0.01, RecoveryNote: "(the other node serves)", Passed: true,
		Machine: machine{Host: "ci", CPUs: 2, OS: "linux", Arch: "amd64", Go: "go1.26.0"}, At: time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)}
	must(t, writeResult(filepath.Join(dir, "results"), r))
	doc := filepath.Join(dir, "guarantees.md")
	must(t, os.WriteFile(doc, []byte("# G\n\n"+tableBegin+"\n| typed by hand |\n"+tableEnd+"\n\nmore\n"), 0o644))
	n, err := regenerate(doc, filepath.Join(dir, "results"))
	must(t, err)
	got, err := os.ReadFile(doc)
	must(t, err)
	want := "# G\n\n" + tableBegin + "\n" + renderTable([]faultResult{r}) + tableEnd + "\n\nmore\n"
	if n != 1 || string(got) != want {
		t.Errorf("regenerated (%d results):\n%s\nwant:\n%s", n, got, want)
	}
	if !strings.Contains(string(got), "| `kill -9` one of two appservers (`TestFaultKillNode`) | 5,000 | 5,000 | 0 | 5,000 | 0 | 0 | 10 ms (the other node serves) |") {
		t.Errorf("row missing:\n%s", got)
	}

	unmarked := []byte("# G\n\n| typed by hand |\n")
	must(t, os.WriteFile(doc, unmarked, 0o644))
	if _, err := regenerate(doc, filepath.Join(dir, "results")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("doc without markers: %v", err)
	}
	if got, _ := os.ReadFile(doc); !bytes.Equal(got, unmarked) {
		t.Errorf("doc without markers was changed:\n%s", got)
	}
}

func TestTableRender(t *testing.T) {
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	m := machine{Host: "ci", CPUs: 2, OS: "linux", Arch: "amd64", Go: "go1.26.0"}
	dir := t.TempDir()
	for _, r := range []faultResult{
		{Test: "TestFaultSigterm", Fault: "SIGTERM one of two appservers", Sent: 3000, Replied: 3000, Attempts: 3000,
			Applied: 3000, Recovery: 0.002, RecoveryNote: "(the node drained and exited 0)", Passed: true, Machine: m, At: at},
		{Test: "TestFaultDatabaseRestart", Fault: "MariaDB stopped 3 s, started", Sent: 2000, Replied: 2000, Attempts: 2224,
			Resent: map[string]int64{"unavailable": 224, "timeout": 0}, Applied: 2000, Recovery: 1.234,
			RecoveryNote: "after MariaDB answers", Passed: true, Machine: m, At: at.Add(26 * time.Hour)},
		{Test: "TestFaultKillMongo", Fault: "`kill -9` one of two appservers, MongoDB", Sent: 12, Replied: 11, Attempts: 14,
			Resent: map[string]int64{"unavailable": 1, "internal": 1}, Final: map[string]int64{"not_found": 1},
			Applied: 13, Duplicates: 2, Lost: 0, Passed: false, Machine: m, At: at},
	} {
		must(t, writeResult(dir, r))
	}
	got, err := loadResults(dir)
	must(t, err)
	want := "| fault test | writes sent | replied ok | error replies seen (then resent) | applied | duplicates | lost | recovery after the fault |\n" +
		"|---|---|---|---|---|---|---|---|\n" +
		"| MariaDB stopped 3 s, started (`TestFaultDatabaseRestart`) | 2,000 | 2,000 | 224 `unavailable` | 2,000 | 0 | 0 | 1.23 s after MariaDB answers |\n" +
		"| `kill -9` one of two appservers, MongoDB (`TestFaultKillMongo`) **failed** | 12 | 11 | 1 `internal`, 1 `unavailable`, 1 `not_found` (final, not resent) | 13 | 2 | 0 | — |\n" +
		"| SIGTERM one of two appservers (`TestFaultSigterm`) | 3,000 | 3,000 | 0 | 3,000 | 0 | 0 | 2 ms (the node drained and exited 0) |\n" +
		"\n" +
		"Measured on `ci` (2 CPUs, linux/amd64, go1.26.0), 2025-03-04 to 2025-03-05.\n"
	if table := renderTable(got); table != want {
		t.Errorf("table:\n%s\nwant:\n%s", table, want)
	}

	other := m
	other.Host = "laptop"
	two := []faultResult{{Test: "A", Fault: "a", Machine: m, At: at}, {Test: "B", Fault: "b", Machine: other, At: at}}
	if line, want := measuredLine(two), "Measured on `ci` (2 CPUs, linux/amd64, go1.26.0), 2025-03-04; on `laptop` (2 CPUs, linux/amd64, go1.26.0), 2025-03-04.\n"; line != want {
		t.Errorf("measured line %q, want %q", line, want)
	}
}

func TestLoadResultsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown key", `{"test":"TestFaultX","fault":"x","writes":1}`, "unknown field"},
		{"no test name", `{"fault":"x"}`, "test and fault must be set"},
		{"not JSON", `writes sent 5`, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, "r.json"), []byte(tc.body), 0o644))
			if _, err := loadResults(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := loadResults(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no fault-test results") {
		t.Errorf("empty folder: %v", err)
	}
}

func TestReplaceMarked(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want, err string
	}{
		{name: "replaces the old table",
			doc:  "intro\n" + tableBegin + "\n| old |\n" + tableEnd + "\nafter\n",
			want: "intro\n" + tableBegin + "\n| new |\n" + tableEnd + "\nafter\n"},
		{name: "empty between markers",
			doc:  tableBegin + tableEnd,
			want: tableBegin + "\n| new |\n" + tableEnd},
		{name: "no markers", doc: "| old |\n", err: "not found"},
		{name: "no end marker", doc: tableBegin + "\n| old |\n", err: "not found"},
		{name: "reversed", doc: tableEnd + "\n" + tableBegin, err: "comes before"},
		{name: "twice", doc: tableBegin + tableEnd + tableBegin + tableEnd, err: "more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := replaceMarked(tc.doc, "| new |\n")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			must(t, err)
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 12: "12", 999: "999", 1000: "1,000", 5000: "5,000", 1234567: "1,234,567", -2039: "-2,039"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
