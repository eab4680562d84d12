package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse: no input may panic the parser, every rejection is an *Error
// whose lines carry file:line:col, and every accepted scenario survives
// Scale and a round trip through HCL().
func FuzzParse(f *testing.F) {
	for _, n := range shippedNames() {
		src, _ := Source(n)
		f.Add(string(src))
	}
	for _, m := range malformed {
		f.Add(m.src)
	}
	examples, _ := filepath.Glob(filepath.Join("testdata", "parse", "*.hcl"))
	for _, p := range examples {
		src, _ := os.ReadFile(p)
		f.Add(string(src))
	}
	f.Add(`load { duration = "1m" }`)
	f.Add("cluster {\n nodes = 4\n}\nload { duration = \"1m\" }\nfault \"kill\" {\n at = \"2m\"\n target = \"node9\"\n}\n")
	f.Add(`load { duration = "1m" mix = "read=1e9" }`)
	f.Add(`seed = 1e400
load { duration = "1m" }`)
	f.Add(`load { duration = "${"1"}m" }`)
	f.Fuzz(func(t *testing.T, src string) {
		// A hang is a bug too; the fuzzer only reports it once the worker
		// dies, so make a slow input crash with its text.
		watchdog := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("Parse slower than 5s on %q", src)) })
		defer watchdog.Stop()
		sc, err := Parse("fuzz.hcl", []byte(src))
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T: %v", err, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !posRE.MatchString(line) {
					t.Fatalf("line without position: %q", line)
				}
			}
			return
		}
		for _, f := range []float64{1, 0.1, 0.013} {
			s2, err := sc.Scale(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse("roundtrip.hcl", s2.HCL()); err != nil {
				t.Fatalf("scaled by %g, the written scenario does not parse: %v\n%s\nfrom:\n%s", f, err, s2.HCL(), src)
			}
		}
	})
}

// hugeSrc has literals like 1e4000000, which once took seconds to render
// in an error message (big.Float.Text writes all their digits).
const hugeSrc = "seed = 1e4000000\nload {\n  duration = \"1m\"\n  rate = -1e-4000000\n}"

// TestHugeNumberNotRendered: what made it slow was rendering the digits,
// so the test checks that the message describes the number instead of
// writing it out, which holds on any machine. BenchmarkParseHugeNumber
// measures the time.
func TestHugeNumberNotRendered(t *testing.T) {
	_, err := Parse("h.hcl", []byte(hugeSrc))
	if err == nil {
		t.Fatal("accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, "a huge number") || len(msg) > 1000 {
		t.Errorf("message of %d bytes, want one that says \"a huge number\" and no digits of it: %.300s", len(msg), msg)
	}
}

func BenchmarkParseHugeNumber(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("h.hcl", []byte(hugeSrc)); err == nil {
			b.Fatal("accepted")
		}
	}
}
