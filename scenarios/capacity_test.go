package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCapacityBlock(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "examples", "capacity-nightly.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := Parse("capacity-nightly.hcl", src)
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Capacity
	if c == nil {
		t.Fatal("no capacity block")
	}
	if c.SLOP99 != 100*time.Millisecond || c.ExpectRate != 150 || c.Precision != 5 || c.Hold != 15*time.Second {
		t.Errorf("capacity = %+v", c)
	}
	if len(c.Nodes) != 2 || c.Nodes[1] != 5 || len(c.Mixes) != 2 || c.Mixes[1].String() != "write=100" {
		t.Errorf("dimensions: nodes %v mixes %v", c.Nodes, c.Mixes)
	}
	roundTrip(t, sc)

	// Without a load block: the load defaults, and no duration needed.
	sc, err = Parse("c.hcl", []byte("capacity {\n  value_sizes = [256, \"4KiB\"]\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Capacity.ValueSizes; len(got) != 2 || got[1] != 4096 {
		t.Errorf("value sizes %v, want [256 4096]", got)
	}
	roundTrip(t, sc)
}

func TestCapacityBlockErrors(t *testing.T) {
	for _, tc := range []struct{ src, pos, want string }{
		{"capacity {\n  nodes = [3, 4]\n}\n", "2:11", "odd"},
		{"capacity {\n  mixes = [\"read=80,wrte=20\"]\n}\n", "2:11", "wrte"},
		{"capacity {\n  storage = [\"raid5\"]\n}\n", "2:13", "raid0"},
		{"capacity {\n  nodes = 3\n}\n", "2:11", "a list like [a, b] is required"},
		{"capacity {\n  warmup = \"1500ms\"\n}\n", "2:12", "whole seconds"},
		{"capacity {\n  factor = 1\n}\n", "2:12", "above 1"},
		{"capacity {\n  slo_errors = 120\n}\n", "2:16", "percentage"},
		{"capacity {\n}\nfault \"kill\" {\n  at = \"10s\"\n  target = \"leader\"\n}\n", "3:1", "takes no fault block"},
		{"capacity {\n  keys = []\n}\n", "2:10", "must not be empty"},
	} {
		_, err := Parse("bad.hcl", []byte(tc.src))
		if err == nil {
			t.Errorf("accepted:\n%s", tc.src)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "bad.hcl:"+tc.pos+":") || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: want bad.hcl:%s: …%s…, got:\n%s", tc.src, tc.pos, tc.want, msg)
		}
	}
}
