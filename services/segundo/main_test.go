package main

import (
	"testing"

	"github.com/beds-project/beds/shared/ipl"
	"github.com/beds-project/beds/shared/ipl/ipltest"
)

// TestBoots runs the segundo role through the whole IPL against real servers:
// it must report healthy and ready, and drain cleanly when stopped.
func TestBoots(t *testing.T) {
	n := ipltest.Start(t, ipl.Role{Name: "segundo"}, ipltest.Env(t, map[string]string{"BEDS_NODE_NAME": "test-segundo"}))
	ipltest.CheckOps(t, n)
	if got := n.Runtime().Config.Node.Name; got != "test-segundo" {
		t.Fatalf("node name %q", got)
	}
}
