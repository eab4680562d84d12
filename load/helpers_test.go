package load

import (
	"io"
	"syscall"

	"bufio"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vaultstorm/vaultstorm/load/fakevault"
)

const testToken = "s.testtoken"

// stub is a fake Vault behind a TLS server whose certificate the target's
// CA file holds, so tests exercise the same verified-TLS path as real runs.
type stub struct {
	*fakevault.Server
	srv    *httptest.Server
	target Target
}

func newStub(t testing.TB) *stub {
	t.Helper()
	fv := fakevault.New(testToken)
	srv := httptest.NewUnstartedServer(fv)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &stub{Server: fv, srv: srv, target: Target{Names: []string{"node1"}, Addrs: []string{srv.URL}, CACert: ca, Token: testToken}}
}

// TestMain doubles as the fake Vault process of the benchmarks, so that the
// generator's CPU time is measured without the server's.
func TestMain(m *testing.M) {
	if os.Getenv("VAULTSTORM_FAKEVAULT") == "1" {
		serveFake()
		return
	}
	if os.Getenv("VAULTSTORM_KILLTEST_DIR") != "" {
		killTestChild()
		return
	}
	os.Exit(m.Run())
}

func serveFake() {
	runtime.GOMAXPROCS(1)
	fv := fakevault.New(testToken)
	fv.Mount("vaultstorm")
	srv := httptest.NewUnstartedServer(fv)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	dir, _ := os.MkdirTemp("", "fakevault")
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	fmt.Printf("%s %s\n", srv.URL, ca)
	// Bounded: the parent kills us, and we exit on our own after 40 minutes
	// or when stdin closes. A line "stall DURATION" on stdin stalls the fake.
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "stall "); ok {
				if dd, err := time.ParseDuration(d); err == nil {
					fv.Stall(dd)
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(40 * time.Minute):
	}
	os.RemoveAll(dir)
}

// startFakeProcess runs the fake Vault in a child process.
func startFakeProcess(t testing.TB) Target {
	tg, _, _ := startFakeProcessCtl(t)
	return tg
}

// startFakeProcessCtl also returns a function that stalls the fake for d.
func startFakeProcessCtl(t testing.TB) (Target, func(d time.Duration), *os.Process) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VAULTSTORM_FAKEVAULT=1", "GOMAXPROCS=1")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Closing stdin lets the fake remove its CA's directory and exit;
		// killing it at once left one directory in /tmp per test run. A
		// stopped fake is continued first, and one that does not exit in
		// time is killed.
		cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("fake vault process: %v", err)
	}
	f := strings.Fields(line)
	stall := func(d time.Duration) { fmt.Fprintf(stdin, "stall %s\n", d) }
	return Target{Addrs: []string{f[0]}, CACert: f[1], Token: testToken}, stall, cmd.Process
}

func countHlog(t testing.TB, r io.Reader) map[string]int {
	t.Helper()
	lr := hdr.NewHistogramLogReader(r)
	tags := map[string]int{}
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("histogram log: %v", err)
		}
		if h == nil {
			return tags
		}
		tags[h.Tag()]++
	}
}
