package reports

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// The JUnit XML that CI systems read (Jenkins' junit-10 schema, which
// GitHub Actions reporters, GitLab and Jenkins accept): testsuites >
// testsuite > testcase, a failure element with a message for a failed
// check, skipped for one that could not run.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  *junitText      `xml:"system-out,omitempty"` // after the test cases, as the schema orders them
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func secStr(s float64) string { return fmt.Sprintf("%.3f", finite(s)) }

// JUnit renders junit.xml: one test case per expectation, one per fault's
// recovery, one for the ledger (unless a failed expectation already says
// what it would), a failed "generator kept its schedule" for an INVALID
// run, a failed "histories linearizable" for a violation no expectation
// reports and, for a run cut short, a failed "run completed". Nothing is
// ever skipped: a check whose input could not be measured fails.
func JUnit(r *Run) ([]byte, error) {
	scen := firstNonEmpty(r.Meta.Scenario, r.Summary.Scenario, "run")
	cls := "vaultstorm." + scen
	s := junitSuite{Name: cls, Time: secStr(secs(r.End, r.Start))}
	if !r.Start.IsZero() {
		s.Timestamp = r.Start.UTC().Format("2006-01-02T15:04:05")
	}
	for _, kv := range [][2]string{
		{"run_dir", r.Dir}, {"vault_version", r.Meta.VaultVersion}, {"nodes", nonZero(r.Meta.Nodes)},
		{"provider", r.Meta.Provider}, {"storage", r.Meta.Storage}, {"seal", r.Meta.Seal}, {"load", r.Meta.Load},
		{"partial", fmt.Sprint(r.Partial)},
	} {
		if kv[1] != "" {
			s.Properties = append(s.Properties, junitProperty{kv[0], kv[1]})
		}
	}

	covers := map[string]bool{} // what a failed expectation already reports
	// judged: the runner decided the verdict from the scenario's own
	// expectations; JUnit then fails exactly what it failed (plus a
	// ledger an older runner passed unread), so CI and the exit code agree.
	judged := r.Summary.Passed != nil && !r.Partial
	var healedWant string
	for _, e := range r.Summary.Expectations {
		c := junitCase{Name: e.Name, Classname: cls + ".expectations", Time: "0",
			SystemOut: &junitText{fmt.Sprintf("%s: got %s, want %s", e.Name, e.Got, e.Want)}}
		for _, k := range []string{"lost", "lineariz", "generator"} {
			if strings.Contains(e.Name, k) || (k == "lost" && e.Name == "ledger_verified") {
				covers[k] = covers[k] || !e.Passed
				if k == "lost" {
					covers["lost-case"] = true
				}
			}
		}
		if !e.Passed {
			c.Failure = &junitFailure{Type: "expectation",
				Message: fmt.Sprintf("%s: measured %s, threshold %s", e.Name, e.Got, e.Want),
				Text:    fmt.Sprintf("expectation %s failed in %s\nmeasured:  %s\nthreshold: %s\n", e.Name, r.Dir, e.Got, e.Want)}
		}
		if strings.Contains(e.Name, "heal") {
			healedWant = e.Want
		}
		s.Cases = append(s.Cases, c)
	}

	harness := harnessFull(r)
	for _, f := range r.Faults {
		fr := f.Result
		rc := recoveryOf(r, f)
		c := junitCase{Name: fmt.Sprintf("fault %s recovers", f.Label()), Classname: cls + ".recovery", Time: "0"}
		out := fmt.Sprintf("injected at %s (+%s)\n%s%s\n",
			f.Start.UTC().Format(time.RFC3339Nano), clock(secs(f.Start, r.Start)), rc.Text(), harness)
		if dr := drOf(r); dr != nil && f.Kind == "restore" && f.Index == lastRestore(r) {
			out += dr.Text()
		}
		c.SystemOut = &junitText{out}
		threshold := "healed before the run ended"
		if healedWant != "" {
			threshold = "healed_within " + healedWant
		}
		switch {
		case fr.HealedMs != nil && fr.Degraded == "":
			c.Time = secStr(*fr.HealedMs / 1000)
		case judged:
			// The runner judged healing by the scenario's own
			// expectations (above); a cluster left degraded on purpose
			// is not a failure of its own.
		default:
			measured := fmt.Sprintf("not healed %s after injection, when the run ended", fmtMs(durMs(r.End.Sub(f.Start))))
			if fr.Degraded != "" {
				measured = fr.Degraded + ", never whole again"
			}
			c.Failure = &junitFailure{Type: "recovery",
				Message: fmt.Sprintf("fault %s: measured %s; threshold %s", f.Label(), measured, threshold),
				Text:    out}
		}
		s.Cases = append(s.Cases, c)
	}

	// The ledger: its own case unless an expectation covers lost writes;
	// and always when the ledger is not verified or lost writes and no
	// failed expectation says so (an older summary's lost_writes passed
	// on a read-back that never finished).
	l := r.Ledger
	if !covers["lost-case"] || (l.Unverified() || l.Lost > 0) && !covers["lost"] {
		c := junitCase{Name: "no acknowledged write lost", Classname: cls + ".ledger", Time: "0",
			SystemOut: &junitText{fmt.Sprintf("%d acknowledged writes, %d lost, %d unknown outcomes, verified %v\n", l.Acked, l.Lost, l.Unknown, l.Verified)}}
		switch {
		case l.Lost > 0 && judged:
			// Reported, not failed: the scenario sets no threshold on
			// lost writes (quorum-loss measures them), and the runner's
			// verdict stands.
		case l.Lost > 0:
			keys := l.LostKeys
			if len(keys) > 20 {
				keys = append(keys[:20:20], "…")
			}
			c.Failure = &junitFailure{Type: "data-loss",
				Message: fmt.Sprintf("measured %d of %d acknowledged writes lost; threshold 0", l.Lost, l.Acked),
				Text:    "lost keys: " + strings.Join(keys, ", ")}
		case l.Unverified():
			c.Failure = &junitFailure{Type: "unverified",
				Message: fmt.Sprintf("%s; threshold: every acknowledged write read back", l.Why),
				Text:    fmt.Sprintf("%d acknowledged writes were not all read back, so their loss is unknown, not zero.\n", l.Acked)}
		}
		s.Cases = append(s.Cases, c)
	}
	if lin := r.Summary.Linearizable; lin != nil && !*lin && !covers["lineariz"] && !judged {
		t, _, link := linearizableText(r)
		if link != "" {
			t += "\nsee " + link + " in the run directory"
		}
		s.Cases = append(s.Cases, junitCase{Name: "histories linearizable", Classname: cls + ".history", Time: "0",
			Failure: &junitFailure{Type: "linearizability", Message: "measured not linearizable; threshold linearizable", Text: t}})
	}
	if inv := r.Summary.Invalid; len(inv) > 0 && !covers["generator"] {
		s.Cases = append(s.Cases, junitCase{Name: "generator kept its schedule", Classname: cls + ".run", Time: "0",
			Failure: &junitFailure{Type: "invalid",
				Message: "INVALID: the harness, not Vault, fell behind: " + strings.Join(inv, "; "),
				Text:    generatorText(r) + "\nNothing this run measured speaks for Vault.\n"}})
	}
	if r.Partial {
		s.Cases = append(s.Cases, junitCase{Name: "run completed", Classname: cls + ".run", Time: s.Time,
			Failure: &junitFailure{Type: "partial",
				Message: fmt.Sprintf("run cut short after %s: measured no end time in meta.json; threshold a completed run", clock(secs(r.End, r.Start))),
				Text:    "The harness stopped before the end of the run (killed or crashed). Expectations were not checked."}})
	}
	lt, _, _ := linearizableText(r)
	ledt, _ := ledgerText(r)
	out := fmt.Sprintf("verdict: %s\n%s\n%s\n%s\n%s\n%s\n", r.Verdict().Text, ledt, lt, generatorText(r), harness, finalOf(r).Text())
	if st, _ := snapshotCostText(r); st != "" {
		out += st + "\n"
	}
	if dr := drOf(r); dr != nil {
		out += dr.Text()
	}
	s.SystemOut = &junitText{out}

	for _, c := range s.Cases {
		s.Tests++
		if c.Failure != nil {
			s.Failures++
		}
		if c.Skipped != nil {
			s.Skipped++
		}
	}
	all := junitSuites{Name: "vaultstorm", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("junit.xml: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
