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
		hasRTO := lastRestore(r) > 0 && r.Restore != nil
		b.WriteString("| # | fault | nodes | injected at | leader elected | write errors | write stall | read errors | read stall | healed |")
		if hasRTO {
			b.WriteString(" RTO (from the loss) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		} else {
			b.WriteString("\n|---|---|---|---|---|---|---|---|---|---|\n")
		}
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
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |", f.Index, mdCell(f.Kind), mdCell(c.Nodes),
				clock(secs(f.Start, r.Start)), mdCell(leader), c.WriteErr, c.WriteStall, c.ReadErr, c.ReadStall, mdCell(healed))
			if hasRTO {
				rto := c.RTO
				if c.NoRTO {
					rto = "**" + rto + "**"
				}
				fmt.Fprintf(&b, " %s |", mdCell(rto))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if dr := drOf(r); dr != nil {
		b.WriteString(drMarkdown(dr))
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
	if st, warn := snapshotCostText(r); st != "" {
		if warn {
			st = "**" + st + "**"
		}
		fmt.Fprintf(&b, "- %s\n", mdText(st))
	}
	fv := finalOf(r)
	ft := mdText(fv.Text())
	if fv.Error != "" || fv.VotersShort || fv.AutopilotBad {
		ft = "**" + ft + "**"
	}
	fmt.Fprintf(&b, "- %s\n", ft)
	return b.String()
}

// drMarkdown is the DR section of summary.md.
func drMarkdown(v *drView) string {
	var b strings.Builder
	b.WriteString("### Disaster recovery\n\n")
	if v.Error != "" {
		fmt.Fprintf(&b, "> **RESTORE FAILED: %s**\n\n", mdText(v.Error))
	}
	if v.Derived {
		b.WriteString("> Derived from the events of a run cut short: the RTO and the RPO were never measured.\n\n")
	}
	fmt.Fprintf(&b, "Total loss at %s; restored from %s.", v.LossAt, mdText(v.SnapText()))
	if v.NewNodes != "" {
		fmt.Fprintf(&b, " Restored cluster: %s.", v.NewNodes)
	}
	b.WriteString("\n\n| phase | after the loss | took |\n|---|---|---|\n")
	for _, p := range v.Phases {
		at := p.At
		if p.Missing {
			at = "**" + at + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(p.Label), mdCell(at), p.Took)
	}
	b.WriteString("\n")
	if v.RPOKnown {
		before := v.beforePresentPlain()
		if v.BeforeLost > 0 {
			before = "**" + before + "**"
		}
		fmt.Fprintf(&b, "| acknowledged | writes | present | gone |\n|---|---|---|---|\n")
		fmt.Fprintf(&b, "| before the snapshot (must all survive) | %d | %s | %d |\n", v.Before, before, v.BeforeLost)
		fmt.Fprintf(&b, "| during the snapshot (either way) | %d | %d | %d |\n", v.InFlight, v.InFlightKept, v.InFlight-v.InFlightKept)
		fmt.Fprintf(&b, "| after the snapshot, before the loss (the RPO) | %d | %d | %d |\n\n", v.After, v.AfterKept, v.After-v.AfterKept)
		fmt.Fprintf(&b, "**rpo_writes %d, rpo_seconds %s**\n\n", v.RPOWrites, v.RPOSeconds)
	} else {
		fmt.Fprintf(&b, "%s.\n\n", v.RPOText())
	}
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
