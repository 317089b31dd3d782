// Package access decides who a request comes from and what it may do.
//
// Rules stated once:
//
//   - Who: a request carrying header x-beds-session acts for the user of
//     that session, resolved by a Resolver (tercero resolves its own
//     sessions; an appserver asks tercero and keeps the answer for
//     [access] cache). A token that does not resolve is answered
//     unauthenticated, and unavailable when tercero cannot be asked. A
//     request without the header acts as the service its AMQP user_id
//     names in [access.trusted] (RabbitMQ refuses a user_id other than
//     the connection's user), or as nobody.
//   - The admin role may run every op on every template and every user
//     and session op.
package access
