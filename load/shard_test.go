package load

import (
	"strings"
	"testing"
	"time"
)

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		i, n int
		err  string
	}{
		{"0/4", 0, 4, ""}, {"3/4", 3, 4, ""}, {" 1 / 2 ", 1, 2, ""}, {"0/1", 0, 1, ""},
		{"4/4", 0, 0, "0-based: 0 to 3"}, {"5/4", 0, 0, "0-based"}, {"-1/4", 0, 0, "0-based"},
		{"0/0", 0, 0, "at least 1"}, {"x/y", 0, 0, "whole numbers"}, {"2", 0, 0, "want I/N"}, {"", 0, 0, "want I/N"},
	} {
		s, err := ParseShard(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || s.Index != c.i || s.Count != c.n {
			t.Errorf("%q: %+v %v", c.in, s, err)
		}
	}
}

// TestShardOptions: a shard's share of the schedule and its own key prefix.
func TestShardOptions(t *testing.T) {
	sc := Ramp(100, 400, 10*time.Second, 20*time.Second).Split(Shard{Index: 1, Count: 4})
	if g := sc.Segs; len(g) != 2 || g[0].From != 25 || g[0].To != 100 || g[1].From != 100 || sc.Duration() != 20*time.Second {
		t.Errorf("split ramp: %v", sc)
	}
	start := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	o := Options{Schedule: Constant(50, time.Second), Shard: &Shard{Index: 2, Count: 4, RunID: "nightly-42"}}.withDefaults(start)
	if o.KeyPrefix != "load/nightly-42/shard-2-of-4/" {
		t.Errorf("default prefix %q", o.KeyPrefix)
	}
	o = Options{Schedule: Constant(50, time.Second), KeyPrefix: "mine", Shard: &Shard{Index: 0, Count: 2}}.withDefaults(start)
	if o.KeyPrefix != "mine/shard-0-of-2/" || o.validate() != nil {
		t.Errorf("given prefix %q (%v)", o.KeyPrefix, o.validate())
	}
	if !strings.Contains(o.Describe(), "shard 0 of 2 (0-based)") {
		t.Errorf("describe: %s", o.Describe())
	}
}
