package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/beds-project/beds/shared/client"
	"github.com/beds-project/beds/shared/wire"
)

// An application dials once, shares the client, and calls templates. It
// needs a running node (see the README), so this example is compiled by
// go test but not run: it has no Output comment.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "my-app"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// The context's deadline becomes the request's expiration.
	reply, err := c.Do(ctx, &wire.Request{Template: "users", Op: wire.OpRead,
		Filter: json.RawMessage(`{"email":"ann@example.com"}`)})
	var werr *wire.Error
	switch {
	case errors.As(err, &werr) && werr.Code.Retryable():
		fmt.Println("try again later:", werr.Code) // unavailable or timeout
		return
	case err != nil:
		fmt.Println("the request itself is wrong:", err) // never retried
		return
	}
	for _, row := range reply.Rows {
		fmt.Println(row["id"], row["name"])
	}
}

// A write answered unavailable may be sent again under the event ID of the
// first try: the node applies it at most once. Also needs a running node.
func ExampleClient_Send() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "my-app"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	event := c.NewEvent()
	req := &wire.Request{Template: "users", Op: wire.OpCreate,
		Data: json.RawMessage(`{"email":"ann@example.com","name":"Ann"}`)}
	for {
		reply, err := c.Send(ctx, event, req)
		var werr *wire.Error
		if errors.As(err, &werr) && werr.Code.Retryable() && ctx.Err() == nil {
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("created", reply.Key)
		return
	}
}

// A read with include fetches related rows with its own: each user row
// carries its orders under "orders", and each order its items. Nested rows
// decode as []any of map[string]any (a to-one relation as one
// map[string]any, or nil). Needs a running node.
func Example_include() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "my-app"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	reply, err := c.Do(ctx, &wire.Request{Template: "users", Op: wire.OpRead,
		Filter:  json.RawMessage(`{"id":7}`),
		Include: []string{"orders", "orders.items"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, user := range reply.Rows {
		orders, _ := user["orders"].([]any)
		for _, o := range orders {
			order, _ := o.(map[string]any)
			items, _ := order["items"].([]any)
			fmt.Println(user["name"], "order", order["id"], "with", len(items), "items")
		}
	}
}

// A batch sends several requests as one; its reply's Items answer them in
// order, and Atomic says its writes applied all or none. WithParent files
// the batch under an event already in a lineage tree, and WithTraceparent
// carries the caller's trace. Needs a running node.
func ExampleClient_Batch() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "my-app"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	parent := c.NewEvent() // in practice: the event ID of the request being served
	reply, err := c.Batch(ctx, []wire.Request{
		{Template: "users", Op: wire.OpCreate, Data: json.RawMessage(`{"email":"bob@example.com","name":"Bob"}`)},
		{Template: "users", Op: wire.OpCount},
	}, client.WithParent(parent), client.WithTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	if err != nil {
		fmt.Println("batch failed:", err) // reply, if any, still has the items
		return
	}
	fmt.Println("atomic:", reply.Atomic, "key:", reply.Items[0].Key, "count:", reply.Items[1].Count)
}

// Lineage reads the tree of events a request caused, as the nodes
// recorded it. Needs a running node.
func ExampleClient_Lineage() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "my-app"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	tree, err := c.Lineage(ctx, "01JDQ3V0Z8K4M6T2X9B7C5N1PA")
	if err != nil {
		fmt.Println(err)
		return
	}
	var walk func(l *wire.Lineage, depth int)
	walk = func(l *wire.Lineage, depth int) {
		fmt.Printf("%*s%s %s %s %s\n", 2*depth, "", l.Event, l.Op, l.Template, l.Outcome)
		for _, child := range l.Children {
			walk(child, depth+1)
		}
	}
	walk(tree, 0)
}

// An application logs a user in and then calls templates as that user:
// SetSession makes every call carry the session token. Needs a running
// tercero and node.
func ExampleClient_Login() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "my-app"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	id, err := c.Login(ctx, "ann", os.Getenv("ANN_PASSWORD"))
	var werr *wire.Error
	switch {
	case errors.As(err, &werr) && werr.Code == wire.CodeRateLimited:
		fmt.Println("too many failed logins: wait and try again")
		return
	case err != nil:
		fmt.Println("login failed:", err) // a wrong password and an unknown user alike
		return
	}
	fmt.Println("logged in as", id.Name, "until", id.Expires.Format(time.RFC3339))
	if err := c.SetSession(id.Token); err != nil { // keep id.Token secret: never log it
		log.Fatal(err)
	}
	defer c.Logout(context.Background(), "") // ends the session at tercero

	reply, err := c.Do(ctx, &wire.Request{Template: "orders", Op: wire.OpRead})
	if errors.As(err, &werr) && werr.Code == wire.CodeForbidden {
		fmt.Println("ann's roles do not allow reading orders")
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(reply.Rows), "orders") // only ann's, when orders has an owner field
}

// A server that serves many users keeps one client and sends each
// request with the token of the user it serves, with WithSession.
// Needs a running tercero and node.
func ExampleWithSession() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "my-web-app"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	token := "the token the user's login answered, kept in their web session"
	who, err := c.Whoami(ctx, client.WithSession(token))
	if err != nil {
		fmt.Println("not logged in:", err) // unauthenticated once the session ended
		return
	}
	fmt.Println(who.Name, who.Roles)
	if err := c.Refresh(ctx, client.WithSession(token)); err != nil { // restarts the idle timeout
		fmt.Println(err)
	}
}

// An admin (here the RabbitMQ user guest, which the development config
// trusts as admin) registers a user, changes their roles, and disables
// them. Needs a running tercero.
func ExampleClient_Register() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", client.Options{Name: "admin-tool"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Register(ctx, "bob", os.Getenv("BOB_PASSWORD"), []string{"member"}); err != nil {
		fmt.Println(err) // conflict when bob exists
		return
	}
	if err := c.SetRoles(ctx, "bob", []string{"member", "clerk"}); err != nil {
		fmt.Println(err)
		return
	}
	row, err := c.User(ctx, "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(row["id"], row["name"], row["roles"])

	sessions, err := c.Sessions(ctx, "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("bob has", len(sessions), "sessions")
	if err := c.Disable(ctx, "bob"); err != nil { // ends bob's sessions too
		fmt.Println(err)
	}
}
