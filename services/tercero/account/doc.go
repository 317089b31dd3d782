// Package account serves tercero's user and session ops: register,
// passwd, roles, disable, enable and user; login, refresh, logout, revoke,
// sessions and whoami (wire.UserOps, wire.SessionOps). It also resolves
// session tokens (Handler implements access.Resolver) and purges ended
// sessions and old failed logins (Purger).
//
// Rules stated once:
//
//   - Storage goes only through tercero's templates (accounts, sessions,
//     failures): each query is a wire.Request built with store.Build and
//     run with the template's store.Exec, so the DBA's views and
//     procedures are the only way in, as for any template.
//   - Every write carries an event ID: the n-th write a request makes is
//     its child event lineage.Child(m.Event, n) (the session touch of the
//     resolver is always child 1, a handler's own writes count from 2),
//     so a redelivered request is answered from the records of the writes
//     it already made and applies none twice. Work without a request (the
//     purge) takes a new event ID per write.
//   - A login's token is 32 bytes of crypto/rand, hex; only its hex
//     SHA-256 is stored, as the session's ID. The token is answered once,
//     in the login's reply, and is unknowable afterwards: a redelivered
//     login whose session create comes back replayed (the first delivery
//     made it, and its reply with the token may never have arrived) makes
//     a fresh session with a fresh token under the next child event, and
//     the first session, whose token nobody may hold, simply ends at its
//     idle timeout.
//   - A session ends at its absolute expiry ([tercero] session_ttl after
//     login) or once unused for idle_timeout; resolving it restarts the
//     idle timer at most every [tercero] touch, refresh always.
//   - A failed login answers unauthenticated with one message whether the
//     user is unknown, disabled or the password wrong, and an unknown user
//     still costs one argon2 verification (password.Hasher.Spend). Each
//     failure is recorded for the account and for the caller (data client
//     when a trusted service sends the login, else the delivery's RabbitMQ
//     user, else "anonymous"); at
//     [tercero.attempts] account or caller failures within window a login
//     answers rate_limited, saying when to try again, and is logged at
//     warn with the subject, before any password is checked.
//   - Rights: register, roles, disable and enable need the admin role;
//     passwd, user, revoke and sessions act on the caller's own user, or
//     on any for an admin; passwd without the admin role needs the current
//     password. login needs nobody, refresh and whoami a session; logout
//     ends the caller's session, or the one data session names: one of
//     the caller's own (another user's is not found), or any for an admin.
//   - Data is decoded strictly (unknown members, wrong types and
//     over-long values are refused naming the member, never echoing a
//     value). No log line, error or reply holds a password, a token or a
//     hash; the user row answered never holds the hash.
package account
