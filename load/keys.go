package load

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// KeyDist chooses which key of the key space a request touches.
type KeyDist struct {
	name string
	z    *zipf // nil: uniform
}

// Uniform picks every key with the same probability.
var Uniform = KeyDist{name: "uniform"}

// ParseKeyDist accepts "uniform", "zipf" (theta 0.99, YCSB's default) or
// "zipf:THETA" with 0 < THETA < 1. The distribution is bound to a key
// count later, by Options.
func ParseKeyDist(s string) (KeyDist, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	switch {
	case s == "uniform" || s == "":
		return Uniform, nil
	case s == "zipf" || s == "zipfian":
		return KeyDist{name: "zipf:0.99"}, nil
	case strings.HasPrefix(s, "zipf:"):
		th, err := strconv.ParseFloat(s[len("zipf:"):], 64)
		if err != nil || !(th > 0 && th < 1) {
			return Uniform, fmt.Errorf("key distribution %q: theta must be a number between 0 and 1 (exclusive)", s)
		}
		return KeyDist{name: "zipf:" + strconv.FormatFloat(th, 'g', -1, 64)}, nil
	}
	return Uniform, fmt.Errorf("key distribution %q: want uniform, zipf or zipf:THETA", s)
}

func (d KeyDist) String() string {
	if d.name == "" {
		return "uniform"
	}
	return d.name
}

// bind prepares the distribution for n keys (zipf precomputes zeta(n), O(n)).
func (d KeyDist) bind(n int) KeyDist {
	if th, ok := strings.CutPrefix(d.name, "zipf:"); ok {
		theta, _ := strconv.ParseFloat(th, 64)
		d.z = newZipf(n, theta)
	}
	return d
}

func (d *KeyDist) next(r *rand.Rand, n int) int {
	if d.z == nil {
		return r.IntN(n)
	}
	return d.z.next(r)
}

// zipf is YCSB's ZipfianGenerator (Gray et al., "Quickly generating
// billion-record synthetic databases"): unlike math/rand's Zipf it allows
// theta < 1, which is the skew KV benchmarks conventionally use. Key 0 is
// the hottest.
type zipf struct {
	n                  int
	theta, alpha, eta  float64
	zetan, halfPowThet float64
}

func newZipf(n int, theta float64) *zipf {
	zeta := func(n int) float64 {
		s := 0.0
		for i := 1; i <= n; i++ {
			s += 1 / math.Pow(float64(i), theta)
		}
		return s
	}
	z := &zipf{n: n, theta: theta, alpha: 1 / (1 - theta), zetan: zeta(n)}
	z.halfPowThet = 1 + math.Pow(0.5, theta)
	if n > 1 {
		z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2)/z.zetan)
	}
	return z
}

func (z *zipf) next(r *rand.Rand) int {
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 || z.n == 1 {
		return 0
	}
	if uz < z.halfPowThet {
		return 1
	}
	k := int(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if k >= z.n {
		k = z.n - 1
	}
	return k
}
