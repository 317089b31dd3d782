// Package wire is the BEDS protocol (version 1) as Go types: the request and
// reply bodies, the stable error codes, the operations and the routing keys.
// It performs no I/O.
//
// Rules stated once:
//
//   - A request names a template and an operation; everything else is
//     optional and validated later against the template.
//   - A reply always carries ok and the event ID; an error reply carries an
//     Error whose Code is one of the constants below and never changes
//     meaning between releases.
//   - Codes are grouped: request codes mean "your request is wrong, do not
//     retry"; data codes mean the request was valid but the data disagreed;
//     system codes mean "try again later".
package wire
