// Package sample takes the soak's samples of running node processes and
// stores them as CSV.
//
// A sample is one node at one instant: its resident memory and open file
// descriptors from /proc/<pid>, its established TCP connections (its own
// sockets, matched by inode in /proc/<pid>/net/tcp and tcp6, counted by the
// server port they reach), and its Go heap in use and goroutines from its
// Prometheus /metrics. A value that could not be read is NaN (an empty CSV
// cell): a sample is never made up. Reading /proc needs Linux and the
// right to read the node's /proc entries (the same user, or root).
package sample

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Series is one quantity sampled from every node.
type Series int

// The series, in CSV column order.
const (
	RSS          Series = iota // resident set size, bytes (/proc/<pid>/status VmRSS)
	HeapInuse                  // go_memstats_heap_inuse_bytes
	Goroutines                 // go_goroutines
	FDs                        // entries of /proc/<pid>/fd
	ConnsAMQP                  // established TCP connections to port 5672
	ConnsMariaDB               // ... to port 3306
	ConnsMongo                 // ... to port 27017
	ConnsOther                 // ... to any other port, or accepted by the node
	NumSeries
)

var seriesNames = [NumSeries]string{"rss_bytes", "heap_inuse_bytes", "goroutines", "fds", "conns_amqp", "conns_mariadb", "conns_mongo", "conns_other"}

// String is the series' CSV column name.
func (s Series) String() string {
	if s < 0 || s >= NumSeries {
		return "series(" + strconv.Itoa(int(s)) + ")"
	}
	return seriesNames[s]
}

// ParseSeries returns the series named name (its CSV column name).
func ParseSeries(name string) (Series, error) {
	for i, n := range seriesNames {
		if n == name {
			return Series(i), nil
		}
	}
	return 0, fmt.Errorf("no series %q (want one of %s)", name, strings.Join(seriesNames[:], ", "))
}

// Server ports whose connections are counted apart.
const (
	PortAMQP    = 5672
	PortMariaDB = 3306
	PortMongo   = 27017
)

// Sample is one node's values at one instant; a value not read is NaN.
type Sample struct {
	Time   time.Time
	Node   string
	Values [NumSeries]float64
}

// Target is a node process to sample.
type Target struct {
	Name    string // the node's name, e.g. appserver-1
	PID     int
	Metrics string // its /metrics URL; "" for none (heap and goroutines stay NaN)
}

// ParseTarget parses name=pid or name=pid,metricsURL.
func ParseTarget(s string) (Target, error) {
	name, rest, ok := strings.Cut(s, "=")
	pid, url, _ := strings.Cut(rest, ",")
	n, err := strconv.Atoi(pid)
	if !ok || name == "" || strings.ContainsAny(name, ",\n\"") || err != nil || n <= 0 {
		return Target{}, fmt.Errorf("node %q: want name=pid or name=pid,http://host:port/metrics", s)
	}
	return Target{Name: name, PID: n, Metrics: url}, nil
}

// Sampler reads samples from /proc and the nodes' /metrics. One goroutine
// uses it at a time.
type Sampler struct {
	// Proc is the proc file system's mount point (default /proc).
	Proc string
	// HTTP fetches /metrics; it should not keep connections alive, or the
	// scrape counts among the node's connections (default: a client that
	// does not, with a 2s timeout).
	HTTP *http.Client
}

func (s *Sampler) proc() string {
	if s.Proc == "" {
		return "/proc"
	}
	return s.Proc
}

func (s *Sampler) client() *http.Client {
	if s.HTTP == nil {
		s.HTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	}
	return s.HTTP
}

// Sample takes t's sample now. The error says which values could not be
// read (they are NaN in the sample); the others are still good.
func (s *Sampler) Sample(ctx context.Context, t Target) (Sample, error) {
	sm := Sample{Time: time.Now().UTC(), Node: t.Name}
	for i := range sm.Values {
		sm.Values[i] = math.NaN()
	}
	var errs []error
	dir := filepath.Join(s.proc(), strconv.Itoa(t.PID))
	if rss, err := readRSS(filepath.Join(dir, "status")); err != nil {
		errs = append(errs, err)
	} else {
		sm.Values[RSS] = rss
	}
	// The connections are read before /metrics is, so the scrape's own
	// connection is not among them.
	if inodes, n, err := socketInodes(filepath.Join(dir, "fd")); err != nil {
		errs = append(errs, err)
	} else {
		sm.Values[FDs] = float64(n)
		c, err := countConns(dir, inodes)
		if err != nil {
			errs = append(errs, err)
		} else {
			sm.Values[ConnsAMQP], sm.Values[ConnsMariaDB], sm.Values[ConnsMongo], sm.Values[ConnsOther] =
				float64(c.amqp), float64(c.mariadb), float64(c.mongo), float64(c.other)
		}
	}
	if t.Metrics != "" {
		m, err := s.scrape(ctx, t.Metrics)
		if err != nil {
			errs = append(errs, err)
		}
		if v, ok := m["go_memstats_heap_inuse_bytes"]; ok {
			sm.Values[HeapInuse] = v
		}
		if v, ok := m["go_goroutines"]; ok {
			sm.Values[Goroutines] = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return sm, fmt.Errorf("node %s (pid %d): %w", t.Name, t.PID, err)
	}
	return sm, nil
}

// readRSS returns VmRSS of a /proc/<pid>/status file, in bytes.
func readRSS(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				break
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS line in kB", path)
}

// socketInodes lists a /proc/<pid>/fd folder: the inodes of its sockets,
// and how many descriptors are open.
func socketInodes(fdDir string) (map[uint64]bool, int, error) {
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, 0, err
	}
	inodes := map[uint64]bool{}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // closed since the listing
		}
		if v, ok := strings.CutPrefix(link, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64); err == nil {
				inodes[n] = true
			}
		}
	}
	return inodes, len(entries), nil
}

type conns struct{ amqp, mariadb, mongo, other int }

// countConns counts the established TCP connections among inodes, by the
// port at their far end, from <dir>/net/tcp and tcp6 (the process's
// network namespace's tables).
func countConns(dir string, inodes map[uint64]bool) (conns, error) {
	var c conns
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(dir, "net", name))
		if errors.Is(err, os.ErrNotExist) && name == "tcp6" {
			continue // no IPv6
		}
		if err != nil {
			return c, err
		}
		if err := tallyConns(b, inodes, &c); err != nil {
			return c, fmt.Errorf("%s: %w", filepath.Join(dir, "net", name), err)
		}
	}
	return c, nil
}

// tallyConns adds a /proc net/tcp table's established connections whose
// inode is among inodes to c.
func tallyConns(table []byte, inodes map[uint64]bool, c *conns) error {
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			return fmt.Errorf("line %q: want at least 10 fields", sc.Text())
		}
		if f[3] != "01" { // TCP_ESTABLISHED
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || !inodes[inode] {
			continue
		}
		_, port, ok := strings.Cut(f[2], ":")
		p, err := strconv.ParseUint(port, 16, 16)
		if !ok || err != nil {
			return fmt.Errorf("remote address %q", f[2])
		}
		switch p {
		case PortAMQP:
			c.amqp++
		case PortMariaDB:
			c.mariadb++
		case PortMongo:
			c.mongo++
		default:
			c.other++
		}
	}
	return sc.Err()
}

// scrape fetches a Prometheus text exposition and returns its samples
// without labels (name value lines).
func (s *Sampler) scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 16<<20))
}

// parseMetrics reads the unlabelled samples of a Prometheus text
// exposition.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || strings.Contains(f[0], "{") {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		m[f[0]] = v
	}
	return m, sc.Err()
}
