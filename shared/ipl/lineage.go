package ipl

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beds-project/beds/shared/lineage"
)

// openLineage makes the recorder of the [lineage] store, which the pools
// step opened: a store whose adapter cannot hold lineage, or a MariaDB
// store without its table, stops the IPL.
func (rt *Runtime) openLineage(ctx context.Context) error {
	c := rt.Config.Lineage
	log, ok := rt.Stores[c.Store].(lineage.Log)
	if !ok {
		return fmt.Errorf("lineage.store %s: its kind cannot record lineage", c.Store)
	}
	if checker, ok := log.(interface{ CheckLineage(context.Context) error }); ok {
		if err := checker.CheckLineage(ctx); err != nil {
			return err
		}
	}
	rt.Lineage = log
	rt.Recorder = lineage.NewRecorder(log, lineage.RecorderConfig{Queue: c.Queue, Batch: c.Batch, Interval: c.Interval.D()},
		rt.Log.With("service", "lineage"))
	rec := rt.Recorder
	rt.Metrics.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "beds_lineage_written_total",
			Help: "Lineage records written to the lineage store."}, func() float64 { return float64(rec.Written()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "beds_lineage_dropped_total",
			Help: "Lineage records dropped: queue full, write failed, or the node stopping."}, func() float64 { return float64(rec.Dropped()) }),
	)
	return nil
}
