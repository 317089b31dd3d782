package main

import (
	"testing"

	"github.com/beds-project/beds/shared/ipl/ipltest"
)

// TestBoots runs the segundo role through the whole IPL against real servers.
func TestBoots(t *testing.T) { ipltest.Boots(t, role) }
