package reports

import (
	"fmt"
	"io"
	"strings"
)

// Markdown renders summary.md: the verdict, the recovery table and the key
// latencies, short enough for a CI job summary.
func Markdown(r *Run) string {
	var b strings.Builder
	v := r.Verdict()
	icon := map[string]string{"PASS": "✅", "FAIL": "❌", "INVALID": "⛔", "PARTIAL": "⚠️", "NO VERDICT": "❔"}[v.Text]
	fmt.Fprintf(&b, "## %s %s — %s\n\n", icon, v.Text, orDash(firstNonEmpty(r.Meta.Scenario, r.Summary.Scenario)))
	var facts []string
	for _, f := range []string{
		prefixed("Vault ", r.Meta.VaultVersion), prefixed("", nonZero(r.Meta.Nodes)) + suffixIf(r.Meta.Nodes, " nodes"),
		r.Meta.Provider, r.Meta.Storage, prefixed("seal ", r.Meta.Seal), clock(secs(r.End, r.Start)) + " of load", r.Meta.Load,
	} {
		if strings.TrimSpace(f) != "" {
			facts = append(facts, f)
		}
	}
	b.WriteString(strings.Join(facts, " · ") + "\n\n")
	if len(v.Invalid) > 0 {
		fmt.Fprintf(&b, "> **INVALID**: %s. Nothing this run measured speaks for Vault.\n\n", mdText(v.InvalidText()))
	}
	if r.Partial {
		fmt.Fprintf(&b, "> **PARTIAL RUN**: cut short after %s; expectations not checked, lost writes not verified.\n\n", clock(secs(r.End, r.Start)))
	}
	for _, x := range v.Reasons {
		fmt.Fprintf(&b, "> **%s**\n\n", mdText(x))
	}
	if len(r.Summary.Expectations) > 0 {
		b.WriteString("| expectation | want | got | result |\n|---|---|---|---|\n")
		for _, e := range r.Summary.Expectations {
			res := "pass"
			if !e.Passed {
				res = "**FAIL**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCell(e.Name), mdCell(e.Want), mdCell(e.Got), res)
		}
		b.WriteString("\n")
	}
	if len(r.Faults) > 0 {
		fmt.Fprintf(&b, "### Recovery\n\nErrors: longest run of failed requests; stall: failed or slower than %s (unavailable_after).\n\n", fmtMs(r.unavailableAfterMs()))
		b.WriteString("| # | fault | nodes | injected at | leader elected | write errors | write stall | read errors | read stall | healed |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, f := range r.Faults {
			c := recoveryOf(r, f)
			healed := c.Healed
			if c.Unhealed {
				healed = "**" + healed + "**"
			}
			leader := c.Leader
			if c.NoLeader {
				leader = "**" + leader + "**"
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f.Index, mdCell(f.Kind), mdCell(strings.Join(f.Nodes, ", ")),
				clock(secs(f.Start, r.Start)), mdCell(leader), c.WriteErr, c.WriteStall, c.ReadErr, c.ReadStall, mdCell(healed))
		}
		b.WriteString("\n")
	}
	b.WriteString("### Latency\n\n| phase | op | requests | errors | req/s | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, op := range sortedOps(r.Summary.Ops) {
		st := r.Summary.Ops[op]
		fmt.Fprintf(&b, "| whole run | %s | %d | %d | %.1f | %s | %s | %s | %s |\n", op, st.Count, st.Errors, finite(st.Rate),
			fmtMs(st.P50), fmtMs(st.P99), fmtMs(st.P999), fmtMs(st.Max))
	}
	for _, p := range r.Summary.Phases {
		for _, op := range sortedOps(p.Ops) {
			st := p.Ops[op]
			fmt.Fprintf(&b, "| %s @%s | %s | %d | %d | %.1f | %s | %s | %s | %s |\n", p.Phase, clock(secs(p.Start, r.Start)), op,
				st.Count, st.Errors, finite(st.Rate), fmtMs(st.P50), fmtMs(st.P99), fmtMs(st.P999), fmtMs(st.Max))
		}
	}
	b.WriteString("\n### Checks\n\n")
	l := r.Ledger
	switch {
	case l.Lost > 0:
		keys := l.LostKeys
		if len(keys) > 20 {
			keys = append(keys[:20:20], "…")
		}
		fmt.Fprintf(&b, "- **Ledger:** %d acknowledged writes, **%d LOST**, %d unknown. Lost keys: `%s`\n", l.Acked, l.Lost, l.Unknown, strings.Join(keys, "`, `"))
	case !l.Verified:
		fmt.Fprintf(&b, "- **Ledger:** %d acknowledged writes, %d unknown; **%s**.\n", l.Acked, l.Unknown, mdText(l.Why))
	default:
		fmt.Fprintf(&b, "- **Ledger:** %d acknowledged writes, 0 lost, %d unknown.\n", l.Acked, l.Unknown)
	}
	if l.Duplicates > 0 {
		fmt.Fprintf(&b, "- **Duplicate versions: %d** (one key and version acknowledged twice with different values)\n", l.Duplicates)
	}
	lt, bad, link := linearizableText(r)
	if bad {
		lt = "**" + lt + "**"
	}
	if link != "" {
		lt += " — `" + link + "` in the run directory"
	}
	fmt.Fprintf(&b, "- %s\n", mdText(lt))
	gen := mdText(generatorText(r))
	if len(r.Summary.Invalid) > 0 {
		gen = "**" + gen + "**"
	}
	fmt.Fprintf(&b, "- %s\n", gen)
	fmt.Fprintf(&b, "- %s\n", mdText(harnessFull(r)))
	fv := finalOf(r)
	ft := mdText(fv.Text())
	if fv.Error != "" || fv.VotersShort || fv.AutopilotBad {
		ft = "**" + ft + "**"
	}
	fmt.Fprintf(&b, "- %s\n", ft)
	return b.String()
}

// mdText keeps a line of text from opening Markdown structure by accident.
func mdText(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func suffixIf(n int, s string) string {
	if n == 0 {
		return ""
	}
	return s
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Hgrm writes latency.hgrm: each operation's whole-run HdrHistogram
// percentile distribution in the standard text form (values in ms), one
// block per operation after a "#[op: NAME]" line.
func Hgrm(w io.Writer, r *Run) error {
	for _, op := range r.Ops {
		h := r.Hist[op]
		if h == nil {
			continue
		}
		if _, err := fmt.Fprintf(w, "#[op: %s, values in ms]\n", op); err != nil {
			return fmt.Errorf("latency.hgrm: %w", err)
		}
		if _, err := h.PercentilesPrint(w, 5, r.PerMs); err != nil {
			return fmt.Errorf("latency.hgrm: %w", err)
		}
		fmt.Fprintln(w)
	}
	return nil
}
