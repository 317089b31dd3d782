package template_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// usersRec is a small REC template served by MariaDB objects.
const usersRec = `
name  = "users"
tla   = "usr"
kind  = "rec"
store = "main"

[fields]
id      = { type = "int", key = true }
email   = { type = "string", required = true, max = 254 }
name    = { type = "string", max = 200 }
created = { type = "datetime", readonly = true }

[objects]
read   = "vw_usr"
create = "sp_usr_create"
update = "sp_usr_update"
delete = "sp_usr_delete"

[ops]
allow = ["create", "read", "update", "delete", "count"]
`

// Parse validates one file's contents against the stores the node knows.
// Callers use plain field names; the stores see the TLA-prefixed ones.
func ExampleParse() {
	stores := map[string]string{"main": template.StoreMariaDB}
	t, err := template.Parse("users_rec.toml", []byte(usersRec), stores)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Name, t.StoreKind, t.Key.Name)
	for _, f := range t.Fields {
		fmt.Printf("%s -> %s (%s)\n", f.Name, f.Stored, f.Type)
	}
	fmt.Println("ops:", t.AllowedOps())
	var params []string
	for _, f := range t.Params(wire.OpCreate) {
		params = append(params, f.Name)
	}
	fmt.Println(t.Objects.Create, "takes", params)
	// Output:
	// users mariadb id
	// id -> usr_id (int)
	// email -> usr_email (string)
	// name -> usr_name (string)
	// created -> usr_created (datetime)
	// ops: [create read update delete count]
	// sp_usr_create takes [email name]
}

// A file that does not validate is reported with its file and line, and
// the reason.
func ExampleParse_invalid() {
	src := []byte("name = \"users\"\ntla = \"usr\"\nkind = \"rec\"\nstore = \"elsewhere\"\n")
	_, err := template.Parse("users_rec.toml", src, map[string]string{"main": template.StoreMariaDB})
	fmt.Println(err)
	// Output:
	// users_rec.toml:4: store "elsewhere" is not configured (known: main)
}

// Load reads every *.toml file of a folder into a registry; one bad file
// fails the whole load.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "templates")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "users_rec.toml"), []byte(usersRec), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	reg, err := template.Load(dir, map[string]string{"main": template.StoreMariaDB})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reg.Names(), reg.Stores())
	fmt.Println(reg.Get("users").Field("email").Stored)
	// Output:
	// [users] [main]
	// usr_email
}

// ordersRec is a REC template whose rows point at users.
const ordersRec = `
name  = "orders"
tla   = "ord"
kind  = "rec"
store = "main"

[fields]
id    = { type = "int", key = true }
user  = { type = "int", required = true, sortable = true }
total = { type = "float" }

[objects]
read = "vw_ord"

[ops]
allow = ["read", "count"]
`

// userOrdersRel relates them: a users row includes its orders.
const userOrdersRel = `
name = "user_orders"
kind = "rel"
parent = "users"
child  = "orders"
as     = "orders"
cardinality = "many"

[on]
parent = "id"
child  = "user"
`

// A REL template relates two REC templates of the folder: Load checks it
// against them, and the registry finds it by parent and include name.
func ExampleRegistry_Relation() {
	dir, err := os.MkdirTemp("", "templates")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	for name, src := range map[string]string{"users_rec.toml": usersRec, "orders_rec.toml": ordersRec, "user_orders_rel.toml": userOrdersRel} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			fmt.Println(err)
			return
		}
	}
	reg, err := template.Load(dir, map[string]string{"main": template.StoreMariaDB})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reg.Names(), reg.RelationNames())
	rel := reg.Relation(reg.Get("users"), "orders")
	fmt.Printf("%s: %s.%s = %s.%s, many %v\n", rel.Name, rel.Child.Name, rel.ChildField.Stored,
		rel.Parent.Name, rel.ParentField.Stored, rel.Many)
	// Output:
	// [orders users] [user_orders]
	// user_orders: orders.ord_user = users.usr_id, many true
}
