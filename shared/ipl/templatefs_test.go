package ipl_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/ipl/ipltest"
	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/store/mariadb"
	"github.com/beds-project/beds/shared/testenv"
)

// A role's own templates (Role.TemplateFS) replace templates.dir: the
// node serves exactly them, opens the stores they use and checks their
// objects; an FS without a template stops the IPL at the templates step.
func TestRoleTemplateFS(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.Root(t), "templates", "users_rec.toml"))
	if err != nil {
		t.Fatal(err)
	}
	role := ipl.Role{Name: "owntemplates", Adapters: []store.Adapter{mariadb.Adapter},
		TemplateFS: fstest.MapFS{"users_rec.toml": {Data: src}}}
	n := ipltest.Start(t, role, ipltest.Env(t, nil))
	rt := n.Runtime()
	if names := rt.Templates.Names(); !slices.Equal(names, []string{"users"}) {
		t.Errorf("templates %v, want only users", names)
	}
	if _, ok := rt.Stores["mariadb"]; !ok || len(rt.Stores) != 1 {
		t.Errorf("stores %v, want mariadb only", rt.Stores)
	}

	role.TemplateFS = fstest.MapFS{}
	_, err = ipl.Boot(context.Background(), role, ipltest.Env(t, nil))
	var se *ipl.StepError
	if !errors.As(err, &se) || se.Step != "templates" {
		t.Errorf("boot with no template: %v, want a templates step error", err)
	}
}
