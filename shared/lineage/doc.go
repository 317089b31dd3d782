// Package lineage makes event IDs and records the lineage of events: which
// node handled an event, how it ended, and which event it was part of.
//
// # Event IDs
//
// A root event ID is a ULID: 26 characters, Crockford base32, sortable by
// creation time. A child event's ID is its parent's ID followed by ".n",
// where n is the child's position among its siblings (1-based), so a
// fan-out's children carry their whole ancestry:
//
//	01JDQ3V0Z8K4M6T2X9B7C5N1PA        root
//	01JDQ3V0Z8K4M6T2X9B7C5N1PA.2      its second child
//	01JDQ3V0Z8K4M6T2X9B7C5N1PA.2.1    that child's first child
//
// Sorting IDs as strings sorts roots by time and keeps every subtree together.
//
// # Records
//
// A record is one [wire.Lineage] without Children: one event a node
// handled, either a request or a child operation the request fanned out to
// (each child query of an include, each item of a batch). Parent names the
// event the record's event is part of: for a child, the ID it was derived
// from; for a request that named a parent (header x-beds-parent), that
// parent, although the request's own ID is an unrelated ULID. Trees are
// therefore followed by Parent links, never by ID prefixes: [Log.LineageTree]
// reads the records below an event and [Tree] assembles them. Both are
// bounded: a tree is read at most [MaxDepth] levels deep and at most a
// caller's maximum of records, and a Parent link that loops (an event below
// itself) is cut where it closes the loop.
//
// What is recorded, and when, is decided by the caller. The [Recorder]
// that writes records to a [Log] guarantees:
//
//   - Record never makes the caller wait for the Log: it puts the record in
//     a bounded queue (RecorderConfig.Queue records) and one goroutine, Run,
//     writes the queue in batches.
//   - It may drop records, and counts every one it drops (Dropped): when
//     the queue is full (overload, or a Log too slow or down), when a
//     write fails (the batch is logged and not retried), when a record is
//     not storable (an Event or Parent that is not a valid ID), and when a
//     record comes after Run has returned. A process that dies loses what
//     it had queued. Lineage is a diagnostic trail: it is never a reason to
//     fail or slow a request, and it proves nothing. That a write was
//     applied exactly once is proven by the store's beds_events record,
//     never by lineage.
//   - The latest outcome wins: a record for an event already stored
//     replaces it, so a redelivered request shows how its last delivery
//     ended. One Recorder writes records in the order they were recorded.
//   - When Run's context ends, it keeps taking records while they still
//     come (brokers finishing what they hold record them) until the queue
//     has been empty for one Interval, or for at most half of
//     DrainTimeout; then it stops taking records, writes what it holds
//     within the rest of DrainTimeout and returns. Records that come after
//     that are dropped and counted.
package lineage
