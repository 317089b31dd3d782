package lineage

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// MaxLen bounds the length of an ID accepted from outside.
const MaxLen = 200

// Generator makes root event IDs. IDs made by one Generator are strictly
// increasing, even within one millisecond. It is safe for concurrent use.
type Generator struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

// NewGenerator returns a Generator seeded from crypto/rand.
func NewGenerator() *Generator {
	return &Generator{entropy: ulid.Monotonic(rand.Reader, 0)}
}

// New returns a new root event ID.
func (g *Generator) New() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return ulid.MustNew(ulid.Timestamp(time.Now()), g.entropy).String()
}

// Child returns the ID of the n-th (1-based) child of parent.
func Child(parent string, n int) string {
	return parent + "." + strconv.Itoa(n)
}

// Parent returns the parent of id and true, or "" and false for a root.
func Parent(id string) (string, bool) {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return "", false
	}
	return id[:i], true
}

// Root returns the root event ID of id's lineage.
func Root(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}

// Depth returns 0 for a root, 1 for its children, and so on.
func Depth(id string) int { return strings.Count(id, ".") }

// Time returns the creation time encoded in id's root, if it is a ULID.
func Time(id string) (time.Time, error) {
	u, err := ulid.ParseStrict(Root(id))
	if err != nil {
		return time.Time{}, fmt.Errorf("event %q: root is not a ULID: %w", id, err)
	}
	return ulid.Time(u.Time()), nil
}

// Valid reports whether id is acceptable as an event ID from a caller:
// non-empty, at most MaxLen bytes, printable ASCII without spaces. Callers
// may use their own root IDs; only IDs made here are guaranteed sortable.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
