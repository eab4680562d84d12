package scenarios

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// block decodes the attributes of one block by hand rather than through
// gohcl, because every validation error must point at the attribute's own
// value (gohcl only knows types, and would point at the block for
// "impossible" values such as an even node count).
type block struct {
	diags *hcl.Diagnostics
	attrs hcl.Attributes
	what  string    // e.g. `cluster`, `fault "kill"`: named in messages
	def   hcl.Range // the block header, for problems with no attribute
}

// errAt adds an error at r about attribute name.
func (b *block) errAt(r hcl.Range, name, format string, a ...any) {
	rr := r
	*b.diags = append(*b.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid value for %q in %s", name, b.what),
		Detail:   fmt.Sprintf(format, a...),
		Subject:  &rr,
	})
}

// errf adds an error about attribute name at its value (or at the block
// header when the attribute is absent).
func (b *block) errf(name, format string, a ...any) {
	b.errAt(b.rng(name), name, format, a...)
}

func (b *block) warnf(name, format string, a ...any) {
	r := b.rng(name)
	*b.diags = append(*b.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  fmt.Sprintf("Questionable %q in %s", name, b.what),
		Detail:   fmt.Sprintf(format, a...),
		Subject:  &r,
	})
}

func (b *block) has(name string) bool { _, ok := b.attrs[name]; return ok }

// rng is the range of the attribute's value, or the block header.
func (b *block) rng(name string) hcl.Range {
	if a, ok := b.attrs[name]; ok {
		return a.Expr.Range()
	}
	return b.def
}

// value evaluates an attribute with no variables or functions: scenario
// files are data. ok is false when absent or broken (already reported).
func (b *block) value(name string) (cty.Value, bool) {
	a, ok := b.attrs[name]
	if !ok {
		return cty.NilVal, false
	}
	v, diags := a.Expr.Value(nil)
	*b.diags = append(*b.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		b.errf(name, "must not be null")
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		b.errf(name, "must be a known value")
		return cty.NilVal, false
	}
	v, _ = v.Unmark()
	return v, true
}

func typeName(t cty.Type) string {
	if t.IsPrimitiveType() {
		return t.FriendlyName()
	}
	return t.FriendlyNameForConstraint()
}

func (b *block) str(name, def string) string {
	v, ok := b.value(name)
	if !ok {
		return def
	}
	if v.Type() != cty.String {
		b.errf(name, "a string is required, got %s", typeName(v.Type()))
		return def
	}
	return v.AsString()
}

// enum reads a string that must be one of allowed.
func (b *block) enum(name, def string, allowed ...string) string {
	if !b.has(name) {
		return def
	}
	s := b.str(name, "\x00")
	if s == "\x00" {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	b.errf(name, "must be one of %s, got %q.%s", quoteList(allowed), s, suggest(s, allowed))
	return def
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	if len(q) <= 1 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func (b *block) boolean(name string, def bool) bool {
	v, ok := b.value(name)
	if !ok {
		return def
	}
	if v.Type() != cty.Bool {
		b.errf(name, "true or false is required, got %s", typeName(v.Type()))
		return def
	}
	return v.True()
}

// number reads a number; strings are not converted, so `nodes = "5"` is
// reported as the type error it is.
func (b *block) number(name string) (*big.Float, bool) {
	v, ok := b.value(name)
	if !ok {
		return nil, false
	}
	if v.Type() != cty.Number {
		b.errf(name, "a number is required, got %s", typeName(v.Type()))
		return nil, false
	}
	return v.AsBigFloat(), true
}

// integer reads a whole number in [min, max].
func (b *block) integer(name string, def, min, max int) int {
	f, ok := b.number(name)
	if !ok {
		return def
	}
	if !f.IsInt() {
		b.errf(name, "a whole number is required, got %s", fmtNum(f))
		return def
	}
	if f.Cmp(big.NewFloat(float64(min))) < 0 || f.Cmp(big.NewFloat(float64(max))) > 0 {
		b.errf(name, "must be between %d and %d, got %s", min, max, fmtNum(f))
		return def
	}
	n, _ := f.Int64()
	return int(n)
}

// float reads a number in [min, max].
func (b *block) float(name string, def, min, max float64) float64 {
	f, ok := b.number(name)
	if !ok {
		return def
	}
	x, _ := f.Float64()
	if math.IsInf(x, 0) || math.IsNaN(x) || x < min || x > max {
		b.errf(name, "must be between %g and %g, got %s", min, max, fmtNum(f))
		return def
	}
	return x
}

// fmtNum renders a number for a message. big.Float.Text of a literal such
// as 1e4000000 takes seconds (found by FuzzParse), so huge magnitudes are
// only described.
func fmtNum(f *big.Float) string {
	if e := f.MantExp(nil); e > 1000 || e < -1000 {
		if f.Sign() < 0 {
			return "a huge negative number"
		}
		return "a huge number"
	}
	x, _ := f.Float64()
	return strconv.FormatFloat(x, 'g', 10, 64)
}

// maxDuration bounds every duration: nothing in a run is longer than a
// week, and it keeps Scale's arithmetic far from overflow.
const maxDuration = 7 * 24 * time.Hour

// duration reads a non-negative Go duration string ("30s", "1m30s").
func (b *block) duration(name string, def time.Duration) time.Duration {
	d, ok := b.durationOK(name)
	if !ok {
		return def
	}
	return d
}

func (b *block) durationOK(name string) (time.Duration, bool) {
	v, ok := b.value(name)
	if !ok {
		return 0, false
	}
	if v.Type() == cty.Number {
		b.errf(name, "a duration string with a unit is required, like \"30s\" or \"2m\", got the number %s", fmtNum(v.AsBigFloat()))
		return 0, false
	}
	if v.Type() != cty.String {
		b.errf(name, "a duration string like \"30s\" is required, got %s", typeName(v.Type()))
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(v.AsString()))
	if err != nil {
		b.errf(name, "%q is not a duration: use a number with a unit (ms, s, m, h), like \"30s\" or \"1m30s\"", v.AsString())
		return 0, false
	}
	if d < 0 {
		b.errf(name, "must not be negative, got %s", d)
		return 0, false
	}
	if d > maxDuration {
		b.errf(name, "must be at most %s, got %s", maxDuration, d)
		return 0, false
	}
	return d, true
}

// optDuration is duration for fields whose absence means "not checked".
func (b *block) optDuration(name string) *time.Duration {
	if d, ok := b.durationOK(name); ok {
		return &d
	}
	return nil
}

// size reads a byte size: a whole number of bytes or a string such as
// "256MiB", "1GB", "4k".
func (b *block) size(name string, def, min, max int64) int64 {
	v, ok := b.value(name)
	if !ok {
		return def
	}
	var n int64
	switch v.Type() {
	case cty.Number:
		f := v.AsBigFloat()
		if !f.IsInt() || f.Sign() < 0 || f.Cmp(big.NewFloat(float64(max))) > 0 {
			b.errf(name, "must be a whole number of bytes between %s and %s, got %s", fmtSize(min), fmtSize(max), fmtNum(f))
			return def
		}
		n, _ = f.Int64()
	case cty.String:
		var err error
		n, err = parseSize(v.AsString())
		if err != nil {
			b.errf(name, "%v", err)
			return def
		}
	default:
		b.errf(name, "a size is required (bytes, or a string like \"256MiB\"), got %s", typeName(v.Type()))
		return def
	}
	if n < min || n > max {
		b.errf(name, "must be between %s and %s, got %s", fmtSize(min), fmtSize(max), fmtSize(n))
		return def
	}
	return n
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1000, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1000 * 1000, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1000 * 1000 * 1000, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000, "tib": 1 << 40,
}

func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a size: use bytes or a number with a unit (KiB, MiB, GiB, KB, MB, GB), like \"256MiB\"", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// fmtSize renders a byte count the way a scenario file would write it.
func fmtSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// parseMix reads "read=80,write=20".
func parseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		op, w, ok := strings.Cut(part, "=")
		op = strings.TrimSpace(op)
		if !ok {
			return m, fmt.Errorf("%q: each entry is OP=WEIGHT, like read=80", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > 1000000 {
			return m, fmt.Errorf("%q: the weight must be a whole number from 0 to 1000000", part)
		}
		if seen[op] {
			return m, fmt.Errorf("%q is given twice", op)
		}
		seen[op] = true
		switch op {
		case "read":
			m.Read = n
		case "write":
			m.Write = n
		case "list":
			m.List = n
		case "delete":
			m.Delete = n
		default:
			return m, fmt.Errorf("unknown operation %q: use read, write, list or delete.%s", op, suggest(op, []string{"read", "write", "list", "delete"}))
		}
	}
	if m.Read+m.Write+m.List+m.Delete == 0 {
		return m, fmt.Errorf("%q: at least one operation needs a weight above 0", s)
	}
	return m, nil
}

// sortedKeys is for deterministic messages.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
