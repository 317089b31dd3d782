// Command appserver runs a BEDS appserver node: the dispatcher that serves
// template CRUD from the queue beds.events.
//
// A request's path: ipl.Main boots the node as role declares it (config,
// templates, RabbitMQ, the stores the templates use), then the dispatcher
// consumes beds.events; each delivery runs through the broker's standard
// middleware (log, metrics, deadline, decode, recover), then
// access.Authenticate, which sets who sent it (the user of its session
// token, resolved with tercero and cached, or a trusted service), into
// crud.Handler, which finds the template, checks the caller may run the op
// ([access] of the template, access.Policy), builds the validated query
// (limited to the caller's own rows where the template names an owner) and
// runs it on the template's store (a read with include and a batch fan out
// to more queries, each a child event, each checked alike); the broker
// publishes the reply to the caller's reply_to and acknowledges the
// delivery. The lineage recorder writes the events of recorded requests in
// the background.
package main

import (
	"os"

	"github.com/beds-project/beds/services/appserver/crud"
	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/dispatch"
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

// services builds the dispatcher: crud.Handler behind access.Authenticate
// and the standard broker; the resolver that asks tercero who holds a
// session token; and the lineage recorder, when the config names a store
// for lineage.
func services(rt *ipl.Runtime) ([]ipl.Service, error) {
	c := rt.Config
	policy, err := access.NewPolicy(c.Access.Unlisted)
	if err != nil {
		return nil, err
	}
	resolver := access.NewTerceroResolver(access.TerceroConfig{
		URL: c.AMQP.URL, Name: c.Node.Name + "/resolver", Log: rt.Log,
		Timeout: c.Access.ResolveTimeout.D(), TTL: c.Access.Cache.D(), Size: c.Access.CacheSize,
	})
	cfg := crud.Config{
		Templates: rt.Templates, Stores: rt.Stores, Limits: rt.Limits(),
		Retry:  crud.Retry{Attempts: c.Retry.Attempts, Backoff: c.Retry.Backoff.D()},
		Fanout: crud.Fanout{Request: c.Fanout.Request, Node: c.Fanout.Node},
		Node:   c.Node.Name, MaxLineage: c.Lineage.MaxEvents, ReadSample: c.Lineage.ReadSample,
		Policy: policy,
	}
	if rt.Recorder != nil {
		cfg.Recorder, cfg.Lineage = rt.Recorder, rt.Lineage
	}
	h, err := crud.New(cfg)
	if err != nil {
		return nil, err
	}
	rt.Metrics.MustRegister(resolver.Collectors()...)
	dispatcher := dispatch.Chain(h, access.Authenticate(resolver, c.Access.Trusted))
	svcs := []ipl.Service{rt.Broker("dispatcher", wire.EventsQueue, dispatcher), resolver}
	if rt.Recorder != nil {
		svcs = append(svcs, rt.Recorder)
	}
	return svcs, nil
}
