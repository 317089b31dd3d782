package sample

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Run samples every target once per interval, from now until duration has
// passed or ctx ends, and writes each sample to w as it is taken (flushed
// after each round, so a run cut short keeps what it took). A value that
// could not be read is noted on log (a node that exited is noted once per
// round) and left NaN. It returns the rounds taken.
func (s *Sampler) Run(ctx context.Context, targets []Target, interval, duration time.Duration, w *Writer, log io.Writer) (int, error) {
	if interval <= 0 {
		return 0, fmt.Errorf("interval %s: want a positive interval", interval)
	}
	end := time.Now().Add(duration)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	rounds := 0
	for {
		for _, t := range targets {
			sctx, cancel := context.WithTimeout(ctx, interval)
			sm, err := s.Sample(sctx, t)
			cancel()
			if err != nil && log != nil {
				fmt.Fprintf(log, "soak: %s: %v\n", sm.Time.Format(time.RFC3339), err)
			}
			if err := w.Write(sm); err != nil {
				return rounds, err
			}
		}
		rounds++
		if err := w.Flush(); err != nil {
			return rounds, err
		}
		if !time.Now().Add(interval).Before(end.Add(interval / 2)) {
			return rounds, nil
		}
		select {
		case <-ctx.Done():
			return rounds, nil
		case <-tick.C:
		}
	}
}
