// Command appserver runs a BEDS appserver node: the dispatcher that serves
// template CRUD from the queue beds.events.
//
// A request's path: ipl.Main boots the node as role declares it (config,
// templates, RabbitMQ, the stores the templates use), then the dispatcher
// consumes beds.events; each delivery runs through the broker's standard
// middleware (log, metrics, deadline, decode, recover) into crud.Handler,
// which finds the template, builds the validated query and runs it on the
// template's store (a read with include and a batch fan out to more
// queries, each a child event); the broker publishes the reply to the
// caller's reply_to and acknowledges the delivery. The lineage recorder
// writes the events of recorded requests in the background.
package main

import (
	"os"

	"github.com/beds-project/beds/shared/crud"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/store/mariadb"
	"github.com/beds-project/beds/shared/store/mongo"
	"github.com/beds-project/beds/shared/wire"
)

func main() {
	os.Exit(ipl.Main(role))
}

// role is the appserver: it serves every template, on MariaDB and MongoDB
// stores, with one broker, the dispatcher.
var role = ipl.Role{
	Name:      "appserver",
	Templates: true,
	Adapters:  []store.Adapter{mariadb.Adapter, mongo.Adapter},
	Services:  services,
}

// services builds the dispatcher: crud.Handler behind the standard broker,
// and the lineage recorder it records to, when the config names a store
// for lineage.
func services(rt *ipl.Runtime) ([]ipl.Service, error) {
	c := rt.Config
	cfg := crud.Config{
		Templates: rt.Templates, Stores: rt.Stores, Limits: rt.Limits(),
		Retry:  crud.Retry{Attempts: c.Retry.Attempts, Backoff: c.Retry.Backoff.D()},
		Fanout: crud.Fanout{Request: c.Fanout.Request, Node: c.Fanout.Node},
		Node:   c.Node.Name, MaxLineage: c.Lineage.MaxEvents, ReadSample: c.Lineage.ReadSample,
	}
	if rt.Recorder != nil {
		cfg.Recorder, cfg.Lineage = rt.Recorder, rt.Lineage
	}
	h, err := crud.New(cfg)
	if err != nil {
		return nil, err
	}
	svcs := []ipl.Service{rt.Broker("dispatcher", wire.EventsQueue, h)}
	if rt.Recorder != nil {
		svcs = append(svcs, rt.Recorder)
	}
	return svcs, nil
}
