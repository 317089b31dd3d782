package account

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/beds-project/beds/shared/wire"
)

func TestDecodeData(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	for _, tc := range []struct {
		name string
		data string
		code wire.Code // "" accepted
		want wire.UserData
	}{
		{"absent", ``, "", wire.UserData{}},
		{"null", `null`, "", wire.UserData{}},
		{"login", `{"user":"alice","password":"pw","client":"10.0.0.1"}`, "", wire.UserData{User: "alice", Password: "pw", Client: "10.0.0.1"}},
		{"roles", `{"user":"bob","roles":["member","read-only","x_1"]}`, "", wire.UserData{User: "bob", Roles: []string{"member", "read-only", "x_1"}}},
		{"session", `{"session":"` + long("a", 64) + `"}`, "", wire.UserData{Session: long("a", 64)}},
		{"unicode name", `{"user":"José"}`, "", wire.UserData{User: "José"}},
		{"unknown member", `{"user":"a","admin":true}`, wire.CodeBadField, wire.UserData{}},
		{"user a number", `{"user":5}`, wire.CodeBadValue, wire.UserData{}},
		{"roles a string", `{"roles":"admin"}`, wire.CodeBadValue, wire.UserData{}},
		{"roles of numbers", `{"roles":[1]}`, wire.CodeBadValue, wire.UserData{}},
		{"an array", `[1]`, wire.CodeBadRequest, wire.UserData{}},
		{"a string", `"alice"`, wire.CodeBadRequest, wire.UserData{}},
		{"two values", `{"user":"a"} {"user":"b"}`, wire.CodeBadRequest, wire.UserData{}},
		{"cut short", `{"user":"a"`, wire.CodeBadRequest, wire.UserData{}},
		{"name too long", `{"user":"` + long("n", MaxName+1) + `"}`, wire.CodeBadValue, wire.UserData{}},
		{"name with a control character", `{"user":"a\nb"}`, wire.CodeBadValue, wire.UserData{}},
		{"name with outer spaces", `{"user":" alice"}`, wire.CodeBadValue, wire.UserData{}},
		{"password too long", `{"password":"` + long("p", MaxPassword+1) + `"}`, wire.CodeTooLarge, wire.UserData{}},
		{"new password too long", `{"new_password":"` + long("p", MaxPassword+1) + `"}`, wire.CodeTooLarge, wire.UserData{}},
		{"data too large", `{"client":"` + long("c", maxData) + `"}`, wire.CodeTooLarge, wire.UserData{}},
		{"empty roles", `{"roles":[]}`, wire.CodeBadValue, wire.UserData{}},
		{"too many roles", `{"roles":["r0","r1","r2","r3","r4","r5","r6","r7","r8","r9","ra","rb","rc","rd","re","rf","rg"]}`, wire.CodeBadValue, wire.UserData{}},
		{"role uppercase", `{"roles":["Admin"]}`, wire.CodeBadValue, wire.UserData{}},
		{"role too long", `{"roles":["` + long("r", MaxRole+1) + `"]}`, wire.CodeBadValue, wire.UserData{}},
		{"role twice", `{"roles":["a","a"]}`, wire.CodeBadValue, wire.UserData{}},
		{"session a token", `{"session":"` + long("z", 64) + `"}`, wire.CodeBadValue, wire.UserData{}},
		{"session short", `{"session":"abc"}`, wire.CodeBadValue, wire.UserData{}},
		{"client too long", `{"client":"` + long("c", MaxClient+1) + `"}`, wire.CodeBadValue, wire.UserData{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decodeData(json.RawMessage(tc.data))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if d.User != tc.want.User || d.Password != tc.want.Password || d.Client != tc.want.Client ||
					d.Session != tc.want.Session || !slices.Equal(d.Roles, tc.want.Roles) {
					t.Errorf("decoded %+v, want %+v", *d, tc.want)
				}
				return
			}
			we, known := wire.AsError(err)
			if !known || we.Code != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			if strings.Contains(we.Message, long("p", 20)) || strings.Contains(we.Message, "alice") {
				t.Errorf("the error quotes the data: %q", we.Message)
			}
		})
	}
}

func TestSessionID(t *testing.T) {
	id := SessionID("token")
	if len(id) != 64 || !isSessionID(id) || id == SessionID("token2") || id != SessionID("token") {
		t.Errorf("SessionID: %q", id)
	}
	// The SHA-256 of "token", as sha256sum prints it.
	if id != "3c469e9d6c5875d37a43f353d4f88e61fcf812c66eee3457465a40b0da4153e0" {
		t.Errorf("SessionID(token) = %s", id)
	}
}

// Only a trusted service names the end client a login counts against; any
// other caller is counted as its RabbitMQ user.
func TestCallerSubject(t *testing.T) {
	service := &wire.Identity{Name: "frontend", Roles: []string{"login"}, Service: true}
	user := &wire.Identity{User: 7, Name: "alice", Session: strings.Repeat("a", 64)}
	for _, tc := range []struct {
		caller         *wire.Identity
		userID, client string
		want           string
	}{
		{service, "frontend", "10.0.0.9", "10.0.0.9"},
		{service, "frontend", "", "frontend"},
		{nil, "app", "10.0.0.9", "app"},
		{user, "app", "spoofed", "app"},
		{nil, "", "spoofed", "anonymous"},
		{nil, "", "", "anonymous"},
	} {
		if got := callerSubject(tc.caller, tc.userID, tc.client); got != tc.want {
			t.Errorf("callerSubject(%+v, %q, %q) = %q, want %q", tc.caller, tc.userID, tc.client, got, tc.want)
		}
	}
}
