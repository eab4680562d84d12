package load

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
)

// Shard is one generator of a sharded run: N load processes, on as many
// machines, each sending 1/N of the rate to keys of its own, merged
// afterwards by 'vaultstorm merge'.
type Shard = rundir.Shard

// ParseShard reads "I/N": generator I of N, I 0-based (0 to N-1), so that
// a Kubernetes indexed Job's JOB_COMPLETION_INDEX or Nomad's
// NOMAD_ALLOC_INDEX is passed through as it is ("$JOB_COMPLETION_INDEX/4").
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("%q: want I/N, generator I (0-based) of N, e.g. 0/4 … 3/4", s)
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return Shard{}, fmt.Errorf("%q: want I/N with whole numbers, generator I (0-based) of N, e.g. 0/4 … 3/4", s)
	case n < 1:
		return Shard{}, fmt.Errorf("%q: N (the number of shards) must be at least 1", s)
	case n > 10000:
		return Shard{}, fmt.Errorf("%q: at most 10000 shards", s)
	case i < 0 || i >= n:
		return Shard{}, fmt.Errorf("%q: the index is 0-based: 0 to %d for %d shards", s, n-1, n)
	}
	return Shard{Index: i, Count: n}, nil
}

// ShardPrefix is the part of the key prefix that keeps shard I's keys
// apart from every other shard's: each shard's ledger is then verifiable
// on its own, and the shards' ledgers unite without a shared key.
func ShardPrefix(s Shard) string { return fmt.Sprintf("shard-%d-of-%d/", s.Index, s.Count) }

// Split is shard s's share of the whole run's schedule: every rate divided
// by the number of shards, the timing unchanged.
func (sc Schedule) Split(s Shard) Schedule {
	out := Schedule{Segs: make([]Segment, len(sc.Segs))}
	n := float64(max(s.Count, 1))
	for i, g := range sc.Segs {
		out.Segs[i] = Segment{From: g.From / n, To: g.To / n, Dur: g.Dur}
	}
	return out
}
