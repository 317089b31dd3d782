// Command appserver runs a BEDS appserver node: the dispatcher that serves
// template CRUD from the queue beds.events.
//
// A request's path: ipl.Main boots the node (config, templates, RabbitMQ,
// stores), then dispatchers below consume beds.events; each delivery runs
// through the middleware dispatch.NewBroker wraps the handler in (log,
// metrics, deadline, decode, recover) into crud.Handler, which finds the
// template, builds the validated query and runs it on the template's
// store; the broker publishes the reply to the caller's reply_to and
// acknowledges the delivery.
package main

import (
	"os"

	"github.com/beds-project/beds/shared/crud"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/wire"
)

func main() {
	os.Exit(ipl.Main(ipl.Role{Name: "appserver", Services: services}))
}

// services builds the appserver's brokers: one dispatcher.
func services(rt *ipl.Runtime) ([]ipl.Service, error) {
	cfg := rt.Config
	limits := store.Limits{
		DefaultLimit: cfg.Limits.DefaultLimit, MaxLimit: cfg.Limits.MaxLimit,
		MaxInList: cfg.Limits.MaxInList, MaxDepth: store.DefaultLimits.MaxDepth, MaxSort: store.DefaultLimits.MaxSort,
	}
	retry := crud.Retry{Attempts: cfg.Retry.Attempts, Backoff: cfg.Retry.Backoff.D()}
	h, err := crud.New(rt.Templates, rt.Stores, limits, retry)
	if err != nil {
		return nil, err
	}
	bc := cfg.Brokers["dispatcher"]
	d := dispatch.NewBroker(dispatch.Config{
		Name: "dispatcher", Node: cfg.Node.Name, Queue: wire.EventsQueue,
		Dial: ipl.DialConfig(rt, "dispatcher"), Topology: rt.Topology(),
		Instances: bc.Instances, Prefetch: bc.Prefetch,
		MaxBody: cfg.Limits.MaxBody, Timeout: cfg.Limits.RequestTimeout.D(), Observer: ipl.NewMetrics(rt.Metrics),
	}, h, rt.Log)
	return []ipl.Service{d}, nil
}
