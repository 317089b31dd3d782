package lineage

import (
	"sort"
	"sync"
	"testing"
	"time"
)

func TestGeneratorMonotonicAcrossGoroutines(t *testing.T) {
	g := NewGenerator()
	const n = 4000
	ids := make([]string, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/8; i++ {
				id := g.New()
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, n)
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		if len(id) != 26 || !Valid(id) {
			t.Fatalf("bad id %q", id)
		}
	}
	// A single goroutine's IDs are strictly increasing.
	prev := g.New()
	for i := 0; i < 1000; i++ {
		next := g.New()
		if next <= prev {
			t.Fatalf("not increasing: %s then %s", prev, next)
		}
		prev = next
	}
}

func TestLineage(t *testing.T) {
	g := NewGenerator()
	root := g.New()
	c2 := Child(root, 2)
	c21 := Child(c2, 1)
	tests := []struct {
		id     string
		parent string
		isRoot bool
		depth  int
	}{
		{root, "", true, 0},
		{c2, root, false, 1},
		{c21, c2, false, 2},
	}
	for _, tt := range tests {
		p, ok := Parent(tt.id)
		if p != tt.parent || ok == tt.isRoot {
			t.Errorf("Parent(%s) = %q, %v", tt.id, p, ok)
		}
		if Root(tt.id) != root {
			t.Errorf("Root(%s) = %s", tt.id, Root(tt.id))
		}
		if Depth(tt.id) != tt.depth {
			t.Errorf("Depth(%s) = %d", tt.id, Depth(tt.id))
		}
	}
	ts, err := Time(c21)
	if err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("Time = %v, %v", ts, err)
	}
	ids := []string{c21, root, c2}
	sort.Strings(ids)
	if ids[0] != root || ids[1] != c2 || ids[2] != c21 {
		t.Fatalf("sort order %v", ids)
	}
}

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "": false, "a b": false, "é": false, string(make([]byte, MaxLen+1)): false,
	} {
		if Valid(id) != want {
			t.Errorf("Valid(%q) != %v", id, want)
		}
	}
}
