// Package external drives a Vault cluster vaultstorm did not stand up: its
// nodes come from Vault itself (see watch.Discover), and what happens to
// them (a kill, a spot reclaim, a partition) is done by commands the
// user writes as templates in an inventory, run as argv with a timeout,
// each one's output kept in the run directory.
package external

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/google/shlex"
)

// Operations a command template may be given for. Each acts on one node.
const (
	OpKill      = "kill"      // the server dies at once (a crash; the disk stays)
	OpStop      = "stop"      // a graceful stop
	OpStart     = "start"     // start a killed or stopped server on its disk
	OpPause     = "pause"     // freeze the server (SIGSTOP, a stalled VM)
	OpResume    = "resume"    // thaw it
	OpPartition = "partition" // cut the node off from its peers
	OpHeal      = "heal"      // undo partition
	OpNotice    = "notice"    // the cloud's reclaim notice (e.g. AWS FIS)
	OpReclaim   = "reclaim"   // the instance is gone with its disks; the fleet replaces it
)

// Ops lists every operation, in the order help and errors name them.
var Ops = []string{OpKill, OpStop, OpStart, OpPause, OpResume, OpPartition, OpHeal, OpNotice, OpReclaim}

// Node is what a template sees of the node it acts on: {{.Name}},
// {{.Host}}, …
type Node struct {
	Name       string `json:"name"`                  // raft node ID
	Host       string `json:"host"`                  // the inventory's host, else the API (or cluster) address's host
	APIAddr    string `json:"api_addr,omitempty"`    // https://HOST:PORT; "" when sys/ha-status does not list it
	Zone       string `json:"zone,omitempty"`        // the inventory's zone, if any
	InstanceID string `json:"instance_id,omitempty"` // the inventory's instance_id, else the node ID
	Cluster    string `json:"-"`                     // the inventory's cluster_name
}

// Commands are an inventory's templates, parsed: each split into words
// first and each word a template of its own, so a value (a node name read
// from Vault) fills one argument and can never add another, nor reach a
// shell unless the user wrote `sh -c` themselves.
type Commands struct {
	words   map[string][]*template.Template
	src     map[string]string
	Timeout time.Duration
	// Dir receives one log file per command run (0600: a command's
	// output may hold secrets); with no Dir the output goes to Out, or
	// nowhere.
	Dir string
	Out io.Writer
	seq atomic.Int64
}

// ParseCommands parses the templates by operation. An unknown operation,
// a template that does not split into words (an open quote) or uses a
// field Node does not have is an error naming the operation.
func ParseCommands(src map[string]string, timeout time.Duration) (*Commands, error) {
	c := &Commands{words: map[string][]*template.Template{}, src: map[string]string{}, Timeout: timeout}
	var errs []error
	for _, op := range sortedKeys(src) {
		if !known(op) {
			errs = append(errs, fmt.Errorf("%s: not an operation (%s)", op, strings.Join(Ops, ", ")))
			continue
		}
		ws, err := parseTemplate(op, src[op])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", op, err))
			continue
		}
		c.words[op], c.src[op] = ws, src[op]
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func parseTemplate(op, s string) ([]*template.Template, error) {
	parts, err := shlex.Split(s)
	if err != nil {
		return nil, fmt.Errorf("split %q into words: %w", s, err)
	}
	if len(parts) == 0 {
		return nil, errors.New("empty command")
	}
	var ws []*template.Template
	for i, p := range parts {
		t, err := template.New(fmt.Sprintf("%s word %d", op, i+1)).Option("missingkey=error").Parse(p)
		if err != nil {
			return nil, err
		}
		// A field Node does not have fails here, not at the fault's time.
		if err := t.Execute(&bytes.Buffer{}, Node{}); err != nil {
			return nil, err
		}
		ws = append(ws, t)
	}
	return ws, nil
}

func known(op string) bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Has says whether the inventory gives a command for op.
func (c *Commands) Has(op string) bool { return c != nil && c.words[op] != nil }

// Available lists the operations the inventory gives commands for.
func (c *Commands) Available() []string {
	var out []string
	for _, op := range Ops {
		if c.Has(op) {
			out = append(out, op)
		}
	}
	return out
}

// Missing says why op cannot be done: nil when it can.
func (c *Commands) Missing(op string) error {
	if c.Has(op) {
		return nil
	}
	return fmt.Errorf("the inventory has no %q command (commands { %s = \"…\" })", op, op)
}

// Argv renders op's command for n.
func (c *Commands) Argv(op string, n Node) ([]string, error) {
	if err := c.Missing(op); err != nil {
		return nil, err
	}
	var argv []string
	for _, w := range c.words[op] {
		var b strings.Builder
		if err := w.Execute(&b, n); err != nil {
			return nil, fmt.Errorf("%s %s: %w", op, n.Name, err)
		}
		argv = append(argv, b.String())
	}
	return argv, nil
}

// Run renders op's command for n and runs it, without a shell, within the
// timeout. Its output goes to a log in Dir; an error names the command,
// its exit and that log.
func (c *Commands) Run(ctx context.Context, op string, n Node) error {
	argv, err := c.Argv(op, n)
	if err != nil {
		return err
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A command that leaves a child holding its output open must not hang
	// the fault past its timeout.
	cmd.WaitDelay = 5 * time.Second
	var logName string
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	err = cmd.Run()
	if c.Dir == "" && c.Out != nil {
		c.Out.Write(out.Bytes())
	}
	if c.Dir != "" {
		logName = filepath.Join(c.Dir, fmt.Sprintf("%03d-%s-%s.log", c.seq.Add(1), op, safe(n.Name)))
		hdr := fmt.Sprintf("# %s %s at %s, %s: %s\n", op, n.Name, started.UTC().Format(time.RFC3339Nano), time.Since(started).Round(time.Millisecond), Quote(argv))
		if werr := writeLog(logName, append([]byte(hdr), out.Bytes()...)); werr != nil && err == nil {
			err = werr
		}
	}
	if err == nil {
		return nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", c.Timeout)
	}
	where := ""
	if logName != "" {
		where = " (output in " + logName + ")"
	}
	return fmt.Errorf("%s %s: %s: %w%s", op, n.Name, argv[0], err, where)
}

func writeLog(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// safe keeps a node name (read from Vault) from reaching outside Dir.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Quote renders argv as a shell would need it typed, for --dry-run and
// logs: what is printed is exactly what runs.
func Quote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
