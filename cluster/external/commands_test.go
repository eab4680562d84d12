package external

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A value fills one argument however it looks: a node name read from
// Vault cannot add an argument or reach a shell.
func TestArgvWordsFirst(t *testing.T) {
	c, err := ParseCommands(map[string]string{
		OpKill:    `ssh {{.Host}} sudo systemctl kill -s KILL vault`,
		OpReclaim: `aws ec2 terminate-instances --instance-ids {{.InstanceID}}`,
		OpPause:   `sh -c "echo pausing {{.Name}} in {{.Zone}}"`,
	}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	n := Node{Name: "x; rm -rf /", Host: "10.0.0.1 -oProxyCommand=evil", InstanceID: "i-1", Zone: "eu-west-1a"}
	argv, err := c.Argv(OpKill, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 8 || argv[1] != "10.0.0.1 -oProxyCommand=evil" {
		t.Errorf("kill argv %q: the host must stay one argument", argv)
	}
	argv, _ = c.Argv(OpPause, n)
	if len(argv) != 3 || argv[2] != "echo pausing x; rm -rf / in eu-west-1a" {
		t.Errorf("pause argv %q: a quoted word stays one argument, as the user wrote it", argv)
	}
	if got := Quote([]string{"aws", "ec2", "--instance-ids", "i-1", "a b", "it's"}); got != `aws ec2 --instance-ids i-1 'a b' 'it'\''s'` {
		t.Errorf("Quote: %s", got)
	}
	if err := c.Missing(OpPartition); err == nil || !strings.Contains(err.Error(), `no "partition" command`) {
		t.Errorf("missing partition: %v", err)
	}
	if _, err := c.Argv(OpHeal, n); err == nil {
		t.Error("a missing command rendered")
	}
}

func TestParseCommandsErrors(t *testing.T) {
	for src, want := range map[string]string{
		`ssh {{.Hots}} kill`:   "can't evaluate field Hots",
		`ssh "{{.Host}} kill`:  "split",
		`ssh {{.Host kill`:     "unclosed action",
		`   `:                  "empty command",
		`echo {{.InstanceID}}`: "",
	} {
		_, err := ParseCommands(map[string]string{OpKill: src}, time.Minute)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "kill: ") {
			t.Errorf("%q: %v, want an error about kill saying %q", src, err, want)
		}
	}
	if _, err := ParseCommands(map[string]string{"reboot": "x"}, time.Minute); err == nil || !strings.Contains(err.Error(), "not an operation") {
		t.Errorf("unknown operation: %v", err)
	}
}

// Run keeps each command's output (0600) and bounds it with the timeout;
// a failure names the command, how it ended and where its output is.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	c, err := ParseCommands(map[string]string{
		OpKill:  `sh -c "echo killed {{.Name}}; echo oops >&2"`,
		OpStop:  `sh -c "exit 3"`,
		OpPause: `sleep 30`,
	}, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c.Dir = dir
	n := Node{Name: "../node2"}
	if err := c.Run(context.Background(), OpKill, n); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(logs) != 1 || filepath.Base(logs[0]) != "001-kill-.._node2.log" {
		t.Fatalf("logs %v, want one, inside %s", logs, dir)
	}
	b, _ := os.ReadFile(logs[0])
	if st, _ := os.Stat(logs[0]); st.Mode().Perm() != 0o600 || !strings.Contains(string(b), "killed ../node2\noops\n") || !strings.Contains(string(b), "# kill ../node2 at ") {
		t.Errorf("log %s (%v):\n%s", logs[0], st.Mode(), b)
	}
	if err := c.Run(context.Background(), OpStop, n); err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "002-stop") {
		t.Errorf("failing command: %v", err)
	}
	start := time.Now()
	err = c.Run(context.Background(), OpPause, n)
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") || time.Since(start) > 10*time.Second {
		t.Errorf("hung command: %v after %s", err, time.Since(start))
	}
}
