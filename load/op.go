package load

import (
	"fmt"
	"strconv"
	"strings"
)

// Op is one kind of KV v2 request.
type Op uint8

// The operations a workload mixes. Their order is the order of the per-op
// arrays on the hot path, so it must not change.
const (
	OpRead   Op = iota // GET  <mount>/data/<key>
	OpWrite            // POST <mount>/data/<key>
	OpList             // LIST <mount>/metadata/<prefix>
	OpDelete           // DELETE <mount>/data/<key> (soft delete of the latest version)
	numOps
)

var opNames = [numOps]string{"read", "write", "list", "delete"}

// AllOps is every operation, in a stable order.
var AllOps = []Op{OpRead, OpWrite, OpList, OpDelete}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "op" + strconv.Itoa(int(o))
}

// ParseOp accepts an operation name; get/put are accepted for read/write
// because that is what vault's CLI calls them.
func ParseOp(s string) (Op, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read", "get":
		return OpRead, nil
	case "write", "put":
		return OpWrite, nil
	case "list":
		return OpList, nil
	case "delete", "del":
		return OpDelete, nil
	}
	return 0, fmt.Errorf("unknown operation %q (want read, write, list or delete)", s)
}

// Mix is a weighted choice of operations.
type Mix struct {
	w     [numOps]int
	total int
}

// DefaultMix is 80 % reads, 20 % writes.
var DefaultMix = Mix{w: [numOps]int{OpRead: 80, OpWrite: 20}, total: 100}

// ParseMix parses "read=80,write=20". Weights are relative non-negative
// integers (they need not add up to 100); at least one must be positive.
func ParseMix(s string) (Mix, error) {
	var m Mix
	if strings.TrimSpace(s) == "" {
		return m, fmt.Errorf("mix %q: empty (want e.g. read=80,write=20)", s)
	}
	var seen [numOps]bool
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("mix %q: %q is not op=weight", s, strings.TrimSpace(part))
		}
		op, err := ParseOp(name)
		if err != nil {
			return m, fmt.Errorf("mix %q: %w", s, err)
		}
		if seen[op] {
			return m, fmt.Errorf("mix %q: %s given twice", s, op)
		}
		seen[op] = true
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 || n > 1_000_000 {
			return m, fmt.Errorf("mix %q: weight of %s must be an integer from 0 to 1000000, got %q", s, op, strings.TrimSpace(val))
		}
		m.w[op] = n
		m.total += n
	}
	if m.total == 0 {
		return m, fmt.Errorf("mix %q: all weights are zero", s)
	}
	return m, nil
}

// Weight is op's share in the mix.
func (m Mix) Weight(op Op) int { return m.w[op] }

// Has reports whether op ever runs.
func (m Mix) Has(op Op) bool { return m.w[op] > 0 }

// Ops lists the operations with a positive weight.
func (m Mix) Ops() []Op {
	var ops []Op
	for _, op := range AllOps {
		if m.w[op] > 0 {
			ops = append(ops, op)
		}
	}
	return ops
}

// String gives the canonical form, which ParseMix reads back.
func (m Mix) String() string {
	var parts []string
	for _, op := range m.Ops() {
		parts = append(parts, op.String()+"="+strconv.Itoa(m.w[op]))
	}
	return strings.Join(parts, ",")
}

// pick maps a uniform number in [0, total) to an operation.
func (m *Mix) pick(r int) Op {
	for op := Op(0); op < numOps; op++ {
		if r < m.w[op] {
			return op
		}
		r -= m.w[op]
	}
	return OpRead
}
