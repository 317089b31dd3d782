// Command tercero runs a BEDS tercero node: users, sessions and the
// resolution of session tokens, served from the queue beds.tercero
// (routing keys usr.* and ses.*).
//
// A request's path: ipl.Main boots the node as role declares it (config;
// tercero's own templates, embedded from templates/; RabbitMQ; the
// MariaDB store they use, whose views and procedures the schema step
// checks), then the broker "tercero" consumes beds.tercero; each delivery
// runs through the broker's standard middleware (log, metrics, deadline,
// decode, recover), then account.Handler.Screen (refusing data ops and
// members user and session ops do not take), then access.Authenticate
// (who the caller is: the session of header x-beds-session, resolved by
// the handler itself, or a RabbitMQ user [access.trusted] names), then
// account.Handler, which reads and writes only through the templates
// (store.Build, then the store's Exec) with the request's child events
// as write event IDs; the broker publishes the reply to the caller's
// reply_to (a write's confirmed) and acknowledges the delivery. Beside
// it, the purge service deletes ended sessions and old failed logins.
package main

import (
	"embed"
	"io/fs"
	"os"

	"github.com/beds-project/beds/services/tercero/account"
	"github.com/beds-project/beds/services/tercero/password"
	"github.com/beds-project/beds/shared/access"
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/store/mariadb"
	"github.com/beds-project/beds/shared/wire"
)

func main() {
	os.Exit(ipl.Main(role))
}

//go:embed templates/*.toml
var embedded embed.FS

// templates are tercero's own templates: accounts, sessions, failures.
var templates = func() fs.FS {
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		panic(err) // the embed pattern names the folder: cannot fail
	}
	return sub
}()

// role is tercero: its own templates on MariaDB, one broker and the purge.
var role = ipl.Role{
	Name:       "tercero",
	TemplateFS: templates,
	Adapters:   []store.Adapter{mariadb.Adapter},
	Services:   services,
}

// services builds the broker "tercero" on wire.TerceroQueue and the purge.
func services(rt *ipl.Runtime) ([]ipl.Service, error) {
	c := rt.Config
	g := c.Tercero.Argon2
	hasher, err := password.New(password.Params{Time: g.Time, MemoryKiB: g.MemoryKiB, Threads: g.Threads}, g.Concurrent)
	if err != nil {
		return nil, err
	}
	h, err := account.New(account.Config{
		Templates: rt.Templates, Stores: rt.Stores, Limits: rt.Limits(),
		Tercero: c.Tercero, Hasher: hasher, Log: rt.Log,
	})
	if err != nil {
		return nil, err
	}
	handler := dispatch.Chain(h, h.Screen, access.Authenticate(h, c.Access.Trusted))
	return []ipl.Service{rt.Broker("tercero", wire.TerceroQueue, handler), h.Purger()}, nil
}
