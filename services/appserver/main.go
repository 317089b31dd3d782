// Command appserver runs a BEDS appserver node: the dispatcher that serves
// template CRUD from the queue beds.events.
//
// A request's path: ipl.Main boots the node as role declares it (config,
// templates, RabbitMQ, the stores the templates use), then the dispatcher
// consumes beds.events; each delivery runs through the broker's standard
// middleware (log, metrics, deadline, decode, recover) into crud.Handler,
// which finds the template, builds the validated query and runs it on the
// template's store; the broker publishes the reply to the caller's reply_to
// and acknowledges the delivery.
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

// services builds the dispatcher: crud.Handler behind the standard broker.
func services(rt *ipl.Runtime) ([]ipl.Service, error) {
	retry := crud.Retry{Attempts: rt.Config.Retry.Attempts, Backoff: rt.Config.Retry.Backoff.D()}
	h, err := crud.New(rt.Templates, rt.Stores, rt.Limits(), retry)
	if err != nil {
		return nil, err
	}
	return []ipl.Service{rt.Broker("dispatcher", wire.EventsQueue, h)}, nil
}
