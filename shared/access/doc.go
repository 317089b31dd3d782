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
//     and session op, and is never limited to its own records.
//   - What (Policy): a template's [access] table lists, per op, the roles
//     allowed to run it; "*" allows any known caller (a session or a
//     trusted service), "anyone" even nobody. An op the table does not
//     name is for admins only. A template without [access] follows
//     [access] unlisted: deny (admins only, the default), authenticated
//     (as "*") or open (as "anyone"). Op lineage needs the admin role
//     unless unlisted is open; ping is anyone's. Nobody known where
//     someone is needed is unauthenticated; a known caller without a
//     role that allows the op is forbidden.
//   - Whose records (Owner): on a template with [access] owner, a user
//     (a session's caller) who is not an admin reads, counts, updates and
//     deletes only the records whose owner field holds their user ID, a
//     create by them sets it, and a create or update naming another owner
//     is forbidden. Trusted services and admins are never limited so.
//   - The appserver's resolver (Tercero) asks tercero with op whoami, at
//     most [access] resolve_timeout, and answers unavailable when no
//     answer comes. It keeps each answer, the session's identity or
//     unauthenticated, for [access] cache (never past the session's
//     expiry), at most [access] cache_size of them, keyed by the SHA-256
//     of the token: a revoked session is refused at most that long after
//     it ended. Requests with one token that miss the cache together
//     share one call.
package access
