package scenarios

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"

	"github.com/vaultstorm/vaultstorm/load"
)

// A block's attributes are decoded straight into the scenario's own
// structs, whose fields carry gohcl's tags (`hcl:"nodes,optional"`). The
// block's schema is gohcl.ImpliedBodySchema of those tags (a fault takes
// its kind's subset, faultAttrs), so hcl itself reports an unknown
// attribute, with a "did you mean", and a missing required one. parse.go
// then checks what the values mean (limits, enums, fields that depend on
// each other), every problem pointing at the attribute's own value.
//
// The values are not converted by gohcl.DecodeBody: it converts between
// types (nodes = "5" would be 5, target = 3 would be "3", replace = "true"
// true), decodes null as absent, and words its errors in Go types. A
// scenario is data, so decode is strict: a value of the wrong type is
// reported as such, with the type it has. Beyond cty's types it knows
// durations (time.Duration fields: "30s"), byte sizes (tag unit:"bytes":
// 4096 or "256MiB") and the load's own option types, which load parses.
type block struct {
	p     *parser
	attrs hcl.Attributes
	what  string    // e.g. `cluster`, `fault "kill"`: named in messages
	def   hcl.Range // the block header, for problems with no attribute
	// fields are the fields decoded without error, by attribute name, each
	// with the value it had before (its default), which reject restores.
	fields map[string][2]reflect.Value
	inner  []*hcl.Block // nested blocks, when the schema allows any
}

// decode decodes hb's body into dst (a pointer to a tagged struct) with the
// schema dst's tags imply.
func (p *parser) decode(hb *hcl.Block, what string, dst any) *block {
	schema, _ := gohcl.ImpliedBodySchema(dst)
	return p.decodeBody(hb.Body, schema, tagNames(dst), what, hb.DefRange, dst)
}

// decodeBody decodes body against schema into the tagged fields of dsts.
// names is the schema's attribute names in the order messages list them.
func (p *parser) decodeBody(body hcl.Body, schema *hcl.BodySchema, names []string, what string, def hcl.Range, dsts ...any) *block {
	c, diags := body.Content(schema)
	for _, d := range diags {
		switch d.Summary {
		case "Unsupported argument", "Unsupported block type":
			d.Detail += fmt.Sprintf(" %s takes: %s.", what, strings.Join(names, ", "))
		case "Missing required argument":
			d.Detail = fmt.Sprintf("%s %s", what, strings.TrimPrefix(d.Detail, "The "))
		}
	}
	p.diags = append(p.diags, diags...)
	b := &block{p: p, attrs: hcl.Attributes{}, what: what, def: def, fields: map[string][2]reflect.Value{}}
	if c != nil {
		b.attrs, b.inner = c.Attributes, c.Blocks
	}
	for _, dst := range dsts {
		b.assign(dst)
	}
	return b
}

// blocksOf lists the nested blocks of type t, in file order.
func (b *block) blocksOf(t string) []*hcl.Block {
	var out []*hcl.Block
	for _, hb := range b.inner {
		if hb.Type == t {
			out = append(out, hb)
		}
	}
	return out
}

// tagNames lists the attribute names of a tagged struct in field order.
func tagNames(dst any) []string {
	var names []string
	t := reflect.TypeOf(dst).Elem()
	for i := range t.NumField() {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("hcl"), ","); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// assign stores each present attribute in the field of dst tagged with its
// name; a pointer field is allocated only when its value is valid.
func (b *block) assign(dst any) {
	v := reflect.ValueOf(dst).Elem()
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("hcl"), ",")
		a, ok := b.attrs[name]
		if name == "" || !ok {
			continue
		}
		f := v.Field(i)
		val, ok := b.value(name, a)
		if !ok {
			continue
		}
		def, dst := reflect.ValueOf(f.Interface()), f
		if f.Kind() == reflect.Pointer {
			dst = reflect.New(f.Type().Elem()).Elem()
		}
		if b.convert(name, val, dst, sf.Tag) {
			if dst != f {
				f.Set(dst.Addr())
			}
			b.fields[name] = [2]reflect.Value{f, def}
		}
	}
}

// value evaluates an attribute with no variables or functions: scenario
// files are data. ok is false when it is broken (reported).
func (b *block) value(name string, a *hcl.Attribute) (cty.Value, bool) {
	v, diags := a.Expr.Value(nil)
	b.p.diags = append(b.p.diags, diags...)
	switch {
	case diags.HasErrors():
		return cty.NilVal, false
	case v.IsNull():
		b.errf(name, "must not be null")
		return cty.NilVal, false
	case !v.IsWhollyKnown():
		b.errf(name, "must be a known value")
		return cty.NilVal, false
	}
	v, _ = v.Unmark()
	return v, true
}

var durationType = reflect.TypeFor[time.Duration]()

// textTypes are option types of the load package, given as strings and
// parsed by load itself.
var textTypes = map[reflect.Type]func(string) (any, error){
	reflect.TypeFor[load.Mix]():     func(s string) (any, error) { return parseMix(s) },
	reflect.TypeFor[load.KeyDist](): func(s string) (any, error) { return parseKeyDist(s) },
}

// convert stores v in f, whose type says what v must be.
func (b *block) convert(name string, v cty.Value, f reflect.Value, tag reflect.StructTag) bool {
	t := v.Type()
	switch parse := textTypes[f.Type()]; {
	case f.Kind() == reflect.Slice:
		return b.list(name, v, f, tag)
	case f.Type() == durationType:
		d, ok := b.duration(name, v)
		if ok {
			f.SetInt(int64(d))
		}
		return ok
	case tag.Get("unit") == "bytes":
		n, ok := b.size(name, v)
		if ok {
			f.SetInt(n)
		}
		return ok
	case t != cty.String && (parse != nil || f.Kind() == reflect.String):
		b.errf(name, "a string is required, got %s", typeName(t))
	case parse != nil:
		x, err := parse(v.AsString())
		if err != nil {
			b.errf(name, "%v", err)
			return false
		}
		f.Set(reflect.ValueOf(x))
		return true
	case f.Kind() == reflect.String:
		f.SetString(v.AsString())
		return true
	case f.Kind() == reflect.Bool:
		if t != cty.Bool {
			b.errf(name, "true or false is required, got %s", typeName(t))
			return false
		}
		f.SetBool(v.True())
		return true
	case t != cty.Number:
		b.errf(name, "a number is required, got %s", typeName(t))
	case f.CanInt():
		x := v.AsBigFloat()
		n, acc := x.Int64()
		switch {
		case !x.IsInt():
			b.errf(name, "a whole number is required, got %s", fmtNum(x))
		case acc != big.Exact || f.OverflowInt(n):
			b.errf(name, "is out of range, got %s", fmtNum(x))
		default:
			f.SetInt(n)
			return true
		}
	case f.CanFloat():
		x, _ := v.AsBigFloat().Float64()
		if math.IsInf(x, 0) {
			b.errf(name, "is out of range, got %s", fmtNum(v.AsBigFloat()))
			return false
		}
		f.SetFloat(x)
		return true
	default:
		panic(fmt.Sprintf("scenarios: no decoding for %s (attribute %q)", f.Type(), name))
	}
	return false
}

// list stores a list or tuple in a slice field, each element converted as
// a field of the slice's element type would be.
func (b *block) list(name string, v cty.Value, f reflect.Value, tag reflect.StructTag) bool {
	t := v.Type()
	if !t.IsListType() && !t.IsTupleType() {
		b.errf(name, "a list like [a, b] is required, got %s", typeName(t))
		return false
	}
	out := reflect.MakeSlice(f.Type(), 0, v.LengthInt())
	ok := true
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		if ev.IsNull() {
			b.errf(name, "list elements must not be null")
			ok = false
			continue
		}
		e := reflect.New(f.Type().Elem()).Elem()
		if !b.convert(name, ev, e, tag) {
			ok = false
			continue
		}
		out = reflect.Append(out, e)
	}
	if ok {
		f.Set(out)
	}
	return ok
}

func typeName(t cty.Type) string {
	if t.IsPrimitiveType() {
		return t.FriendlyName()
	}
	return t.FriendlyNameForConstraint()
}

// maxDuration bounds every duration: nothing in a run is longer than a
// week, and it keeps Scale's arithmetic far from overflow.
const maxDuration = 7 * 24 * time.Hour

// duration reads a non-negative Go duration string ("30s", "1m30s").
func (b *block) duration(name string, v cty.Value) (time.Duration, bool) {
	switch v.Type() {
	case cty.String:
	case cty.Number:
		b.errf(name, "a duration string with a unit is required, like \"30s\" or \"2m\", got the number %s", fmtNum(v.AsBigFloat()))
		return 0, false
	default:
		b.errf(name, "a duration string like \"30s\" is required, got %s", typeName(v.Type()))
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(v.AsString()))
	switch {
	case err != nil:
		b.errf(name, "%q is not a duration: use a number with a unit (ms, s, m, h), like \"30s\" or \"1m30s\"", v.AsString())
	case d < 0:
		b.errf(name, "must not be negative, got %s", d)
	case d > maxDuration:
		b.errf(name, "must be at most %s, got %s", maxDuration, d)
	default:
		return d, true
	}
	return 0, false
}

// size reads a byte size: a whole number of bytes or a string such as
// "256MiB", "1GB", "4k".
func (b *block) size(name string, v cty.Value) (int64, bool) {
	switch v.Type() {
	case cty.Number:
		f := v.AsBigFloat()
		if n, acc := f.Int64(); f.IsInt() && acc == big.Exact {
			return n, true
		}
		b.errf(name, "must be a whole number of bytes, got %s", fmtNum(f))
	case cty.String:
		n, err := parseSize(v.AsString())
		if err == nil {
			return n, true
		}
		b.errf(name, "%v", err)
	default:
		b.errf(name, "a size is required (bytes, or a string like \"256MiB\"), got %s", typeName(v.Type()))
	}
	return 0, false
}

// errAt adds an error at r about attribute name.
func (b *block) errAt(r hcl.Range, name, format string, a ...any) {
	b.p.diags = append(b.p.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid value for %q in %s", name, b.what),
		Detail:   fmt.Sprintf(format, a...),
		Subject:  &r,
	})
}

// errf adds an error about attribute name at its value (or at the block
// header when the attribute is absent).
func (b *block) errf(name, format string, a ...any) {
	b.errAt(b.rng(name), name, format, a...)
}

// reject is errf for a decoded value that is wrong: the field goes back
// to its default, so checks that depend on it do not pile on.
func (b *block) reject(name, format string, a ...any) {
	b.errf(name, format, a...)
	if f, ok := b.fields[name]; ok {
		f[0].Set(f[1])
	}
}

func (b *block) warnf(name, format string, a ...any) {
	r := b.rng(name)
	b.p.diags = append(b.p.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  fmt.Sprintf("Questionable %q in %s", name, b.what),
		Detail:   fmt.Sprintf(format, a...),
		Subject:  &r,
	})
}

// has reports whether the attribute is in the file; ok, whether its value
// was decoded (a broken one is reported once, and checks of what it means
// skip it).
func (b *block) has(name string) bool { _, ok := b.attrs[name]; return ok }
func (b *block) ok(name string) bool  { _, ok := b.fields[name]; return ok }

// rng is the range of the attribute's value, or the block header.
func (b *block) rng(name string) hcl.Range {
	if a, ok := b.attrs[name]; ok {
		return a.Expr.Range()
	}
	return b.def
}

// intIn rejects *v (nil: absent, fine) outside [lo, hi].
func intIn[T int | int64](b *block, name string, v *T, lo, hi T) bool {
	if v != nil && (*v < lo || *v > hi) {
		b.reject(name, "must be between %d and %d, got %d", lo, hi, *v)
		return false
	}
	return true
}

// floatIn rejects *v (nil: absent, fine) outside [lo, hi].
func (b *block) floatIn(name string, v *float64, lo, hi float64) bool {
	if v != nil && (*v < lo || *v > hi) {
		b.reject(name, "must be between %g and %g, got %g", lo, hi, *v)
		return false
	}
	return true
}

// sizeIn rejects a byte size outside [lo, hi].
func (b *block) sizeIn(name string, v, lo, hi int64) bool {
	if v < lo || v > hi {
		b.reject(name, "must be between %s and %s, got %s", fmtSize(lo), fmtSize(hi), fmtSize(v))
		return false
	}
	return true
}

// positive rejects a duration of 0 (nil: absent, fine).
func (b *block) positive(name string, d *time.Duration) {
	if d != nil && *d <= 0 {
		b.reject(name, "must be above 0s: nothing happens in no time")
	}
}

// oneOf rejects a string that is none of allowed.
func oneOf[T ~string](b *block, name string, v T, allowed ...T) bool {
	opts := make([]string, len(allowed))
	for i, a := range allowed {
		if v == a {
			return true
		}
		opts[i] = string(a)
	}
	b.reject(name, "must be one of %s, got %q.%s", quoteList(opts), v, suggest(string(v), opts))
	return false
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

// parseMix is load.ParseMix with a did-you-mean for a misspelt operation.
func parseMix(s string) (load.Mix, error) {
	m, err := load.ParseMix(s)
	if err != nil {
		for _, part := range strings.Split(s, ",") {
			op, _, _ := strings.Cut(part, "=")
			if _, bad := load.ParseOp(op); bad != nil {
				ops := []string{"read", "write", "list", "delete"}
				return m, fmt.Errorf("%w.%s", err, suggest(strings.TrimSpace(op), ops))
			}
		}
	}
	return m, err
}

// parseKeyDist is load.ParseKeyDist with a did-you-mean.
func parseKeyDist(s string) (load.KeyDist, error) {
	d, err := load.ParseKeyDist(s)
	if err != nil && !strings.Contains(s, ":") {
		err = fmt.Errorf("%w.%s", err, suggest(s, []string{"uniform", "zipf", "zipfian"}))
	}
	return d, err
}
