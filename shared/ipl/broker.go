package ipl

import (
	"github.com/beds-project/beds/shared/dispatch"
	"github.com/beds-project/beds/shared/store"
)

// Broker returns the broker named name that serves queue with h: its
// instances and prefetch come from [brokers.<name>], its body limit and
// fallback deadline from [limits], and every request it handles is counted
// in the node's metrics. Every role's brokers are built here, so they
// share one shape.
func (rt *Runtime) Broker(name, queue string, h dispatch.Handler) *dispatch.Broker {
	cfg := rt.Config
	bc := cfg.Brokers[name]
	return dispatch.NewBroker(dispatch.Config{
		Name: name, Node: cfg.Node.Name, Queue: queue,
		Dial: DialConfig(rt, name), Topology: rt.Topology(),
		Instances: bc.Instances, Prefetch: bc.Prefetch,
		MaxBody: cfg.Limits.MaxBody, MaxReply: cfg.Limits.MaxReply,
		Timeout: cfg.Limits.RequestTimeout.D(), MaxTimeout: cfg.Limits.MaxTimeout.D(),
		ReplyPrefix: cfg.AMQP.ReplyPrefix, DeliveryLimit: cfg.AMQP.DeliveryLimit,
		Observer: rt.requests,
	}, h, rt.Log)
}

// Limits returns what one request may ask of a store, from [limits].
func (rt *Runtime) Limits() store.Limits {
	l := rt.Config.Limits
	return store.Limits{
		DefaultLimit: l.DefaultLimit, MaxLimit: l.MaxLimit, MaxOffset: l.MaxOffset, MaxInList: l.MaxInList,
		MaxDepth: store.DefaultLimits.MaxDepth, MaxSort: store.DefaultLimits.MaxSort,
		MaxAffected: l.MaxAffected, MaxLikeLength: l.MaxLikeLength, MaxLikeWildcards: l.MaxLikeWildcards,
		MaxBatch: l.MaxBatch, MaxInclude: l.MaxInclude, MaxIncludeDepth: l.MaxIncludeDepth, MaxIncludeRows: l.MaxIncludeRows,
		MaxOperations: l.MaxOperations, MaxRows: l.MaxRows,
	}
}
