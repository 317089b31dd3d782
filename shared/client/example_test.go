package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
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
