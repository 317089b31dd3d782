package wire

import (
	"strings"
	"time"
)

// The names tercero, the role that keeps users and sessions, is reached
// under. Its requests name no template: the op says what is asked, and
// Request.Data carries a UserData.
const (
	// TerceroQueue is the queue tercero nodes consume, bound to the
	// exchange beds with RouteUsers and RouteSessions.
	TerceroQueue = "beds.tercero"
	// RouteUsers and RouteSessions are the binding patterns of
	// TerceroQueue: a user op is published as "usr.<op>", a session op as
	// "ses.<op>" (Op.RoutingKey).
	RouteUsers    = "usr.*"
	RouteSessions = "ses.*"

	// HeaderSession carries the caller's session token (what login
	// answered in Identity.Token) on any request: a data request to an
	// appserver, or a user or session request to tercero.
	HeaderSession = "x-beds-session"
)

// The user ops, served by tercero. Register, Roles, Disable and Enable
// need the admin role (RoleAdmin); Passwd and User need the caller to be
// the user named or an admin.
const (
	// OpRegister adds a user: data user, password and roles.
	OpRegister Op = "register"
	// OpPasswd changes a password: data user, password (the current one,
	// unless the caller is an admin) and new_password. It revokes the
	// user's other sessions.
	OpPasswd Op = "passwd"
	// OpRoles replaces a user's roles: data user and roles.
	OpRoles Op = "roles"
	// OpDisable stops a user logging in and revokes their sessions; OpEnable
	// lets them log in again. Data: user.
	OpDisable Op = "disable"
	OpEnable  Op = "enable"
	// OpUser reads one user (data user), or the caller when data names
	// none: Rows holds one row without any password material.
	OpUser Op = "user"
)

// The session ops, served by tercero.
const (
	// OpLogin checks data user and password and opens a session: the
	// reply's Identity carries the token, once. data client may name the
	// end client (an address) for the per-caller attempt limit.
	OpLogin Op = "login"
	// OpRefresh restarts the idle timeout of the caller's session (the
	// token in HeaderSession); the absolute expiry stays.
	OpRefresh Op = "refresh"
	// OpLogout revokes the caller's session, or the one data session names
	// (one of the caller's own, or any for an admin).
	OpLogout Op = "logout"
	// OpRevoke revokes every session of data user (the caller's own when
	// it names none; another user's needs the admin role).
	OpRevoke Op = "revoke"
	// OpSessions lists the open sessions of data user (the caller's own
	// when it names none): Rows hold id, created, seen and expires, never
	// a token.
	OpSessions Op = "sessions"
	// OpWhoami answers the Identity of the token in HeaderSession, or
	// unauthenticated. Appservers resolve tokens with it.
	OpWhoami Op = "whoami"
)

// UserOps and SessionOps list the ops tercero serves.
var (
	UserOps    = []Op{OpRegister, OpPasswd, OpRoles, OpDisable, OpEnable, OpUser}
	SessionOps = []Op{OpLogin, OpRefresh, OpLogout, OpRevoke, OpSessions, OpWhoami}
)

// RoleAdmin is the role that may manage users and every session, and run
// every op on every template whatever its [access] table says.
const RoleAdmin = "admin"

// UserData is the data of a user or session request. Tercero refuses
// members it does not know.
type UserData struct {
	User        string   `json:"user,omitempty"`         // login name
	Password    string   `json:"password,omitempty"`     // never logged, never answered
	NewPassword string   `json:"new_password,omitempty"` // passwd
	Roles       []string `json:"roles,omitempty"`        // register, roles
	Session     string   `json:"session,omitempty"`      // logout: a session's ID (not its token)
	Client      string   `json:"client,omitempty"`       // login: the end client, for the per-caller limit
}

// Identity is who a request comes from: a user holding a session, or a
// service trusted by its RabbitMQ user.
type Identity struct {
	// User is the user's ID; 0 for a service.
	User int64 `json:"user,omitempty"`
	// Name is the user's login name, or the service's RabbitMQ user.
	Name    string   `json:"name"`
	Roles   []string `json:"roles,omitempty"`
	Service bool     `json:"service,omitempty"`
	// Session is the session's ID: the hex SHA-256 of its token, which is
	// what tercero stores. It is not a credential.
	Session string `json:"session,omitempty"`
	// Expires is when the session ends at the latest (its absolute
	// expiry); the idle timeout may end it sooner.
	Expires time.Time `json:"expires,omitzero"`
	// Token is the session token (256 random bits, hex): in the reply to a
	// login only. Send it in HeaderSession.
	Token string `json:"token,omitempty"`
}

// Has reports whether the identity holds role.
func (id *Identity) Has(role string) bool {
	for _, r := range id.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Tercero reports whether tercero serves op (a user or session op).
func (op Op) Tercero() bool { return op.users() || op.sessions() }

func (op Op) users() bool {
	switch op {
	case OpRegister, OpPasswd, OpRoles, OpDisable, OpEnable, OpUser:
		return true
	}
	return false
}

func (op Op) sessions() bool {
	switch op {
	case OpLogin, OpRefresh, OpLogout, OpRevoke, OpSessions, OpWhoami:
		return true
	}
	return false
}

// Queue names the queue whose nodes serve op.
func (op Op) Queue() string {
	if op.Tercero() {
		return TerceroQueue
	}
	return EventsQueue
}

// opNames lists every op, for error messages.
func opNames() string {
	all := []Op{OpCreate, OpRead, OpUpdate, OpDelete, OpCount, OpPing, OpBatch, OpLineage}
	all = append(append(all, UserOps...), SessionOps...)
	s := make([]string, len(all))
	for i, op := range all {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}
