package mariadb

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/lineage"
	"github.com/beds-project/beds/shared/testenv"
	"github.com/beds-project/beds/shared/wire"
)

// BenchmarkAppendLineage measures what storing lineage costs per record,
// in batches of the recorder's default size, as a node's recorder stores
// them: ns/op and node-µs/op are this process's time and CPU per record
// (building the statement and sending it), mariadb-µs/op the MariaDB
// server's CPU per record when it runs on this machine:
//
//	go test -run '^$' -bench BenchmarkAppendLineage -benchtime 200000x ./shared/store/mariadb
func BenchmarkAppendLineage(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB")
	}
	s, _, pid := openWriteBench(b)
	ids := lineage.NewGenerator()
	batch := make([]wire.Lineage, 0, lineage.DefaultBatch)
	ctx := context.Background()
	flush := func() {
		if err := s.AppendLineage(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	node, server := testenv.ProcessCPU(os.Getpid()), testenv.ProcessCPU(pid)
	b.ResetTimer()
	for range b.N {
		batch = append(batch, wire.Lineage{Event: ids.New(), Op: wire.OpUpdate, Template: "users",
			Node: "bench-node", Outcome: "ok", Started: time.Now(), DurationUS: 1200})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	b.StopTimer()
	for name, cpu := range map[string]struct {
		before time.Duration
		pid    int
	}{"node-µs/op": {node, os.Getpid()}, "mariadb-µs/op": {server, pid}} {
		if after := testenv.ProcessCPU(cpu.pid); cpu.before >= 0 && after >= 0 {
			b.ReportMetric(float64((after-cpu.before).Microseconds())/float64(b.N), name)
		}
	}
}
