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
//     access codes mean who is asking decided (log in, get the role, wait
//     out the attempt limit); system codes mean "try again later".
//   - Template requests go to the appservers' queue beds.events (rec.read,
//     rec.write); user and session requests name no template and go to
//     tercero's queue beds.tercero ("usr.<op>", "ses.<op>"). A request
//     made on behalf of a user carries the session token in
//     HeaderSession; a trusted service sets the AMQP user_id property,
//     which RabbitMQ checks against the connection's user.
package wire
