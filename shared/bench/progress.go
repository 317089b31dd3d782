package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress draws a progress bar for the run in flight. On a terminal it
// redraws one line four times a second; elsewhere it writes the final line
// of each run only, so logs stay readable.
type progress struct {
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		return nil
	}
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// track shows l's progress under label until the returned stop is called.
func (p *progress) track(label string, l *load) (stop func()) {
	if p == nil {
		return func() {}
	}
	start := time.Now()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	draw := func(final bool) {
		el := time.Since(start)
		frac := 0.0
		var of string
		if l.requests > 0 {
			frac = float64(l.done.Load()) / float64(l.requests)
			of = fmt.Sprintf("%d/%d req", l.done.Load(), l.requests)
		} else {
			frac = float64(el) / float64(max(l.duration, 1))
			of = fmt.Sprintf("%.1fs/%.1fs", min(el, l.duration).Seconds(), l.duration.Seconds())
		}
		if final {
			frac = 1
		}
		frac = min(max(frac, 0), 1)
		const width = 24
		fill := int(frac * width)
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		n := l.done.Load()
		rate := float64(n) / max(el.Seconds(), 1e-9)
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(p.w, "\r%-16s [%s] %s  %d req  %.0f/s  %d err\x1b[K%s", label, bar, of, n, rate, l.errs.Load(), end)
	}
	if p.tty {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-quit:
					return
				case <-t.C:
					draw(false)
				}
			}
		}()
	}
	return func() {
		close(quit)
		wg.Wait()
		if p.tty {
			draw(true)
		} else {
			fmt.Fprintf(p.w, "%-16s %d req in %s, %d err\n", label, l.done.Load(), time.Since(start).Round(time.Millisecond), l.errs.Load())
		}
	}
}

// note writes a line about what the bench does (seeding, cleaning up).
func (p *progress) note(format string, args ...any) {
	if p == nil {
		return
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}
