package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultstorm/vaultstorm/cluster/external"
)

func TestParseInventory(t *testing.T) {
	src := `
cluster_name    = "vault-staging"
addresses       = ["https://10.0.1.10:8200", "https://10.0.1.11:8200"]
ca_file         = "tls/ca.pem"
token_env       = "VAULT_TOKEN"
command_timeout = "3m"

commands {
  kill    = "ssh {{.Host}} sudo systemctl kill -s KILL vault"
  reclaim = "aws ec2 terminate-instances --instance-ids {{.InstanceID}}"
}

node "vault-1" {
  instance_id = "i-0abc"
  zone        = "eu-west-1a"
}
`
	inv, err := ParseInventory("/etc/vs/staging.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if inv.ClusterName != "vault-staging" || len(inv.Addresses) != 2 || inv.CAFile != filepath.Join("/etc/vs", "tls/ca.pem") || inv.TokenEnv != "VAULT_TOKEN" {
		t.Errorf("inventory %+v", inv)
	}
	if inv.Commands.Timeout != 3*time.Minute || !inv.Commands.Has(external.OpKill) || inv.Commands.Has(external.OpPause) {
		t.Errorf("commands %+v", inv.Commands)
	}
	if inv.Nodes["vault-1"] != (external.NodeInfo{InstanceID: "i-0abc", Zone: "eu-west-1a"}) {
		t.Errorf("nodes %+v", inv.Nodes)
	}
}

// Each mistake is reported where it is, with what was expected.
func TestParseInventoryErrors(t *testing.T) {
	for name, c := range map[string]struct{ src, want string }{
		"no name":       {`addresses = ["https://a:8200"]` + "\ntoken_env = \"T\"\n", `inv.hcl:1:1: Missing required argument`},
		"http address":  {"cluster_name = \"c\"\naddresses = [\"http://a:8200\"]\ntoken_env = \"T\"\n", `inv.hcl:2:13: Invalid value for "addresses" in the inventory: "http://a:8200" is not an https://HOST:PORT address`},
		"no token":      {"cluster_name = \"c\"\naddresses = [\"https://a:8200\"]\n", `inv.hcl:1:1: Missing token`},
		"two tokens":    {"cluster_name = \"c\"\naddresses = [\"https://a:8200\"]\ntoken_env = \"T\"\ntoken_file = \"f\"\n", `inv.hcl:3:13: Invalid value for "token_env"`},
		"bad template":  {"cluster_name = \"c\"\naddresses = [\"https://a:8200\"]\ntoken_env = \"T\"\ncommands {\n  kill = \"ssh {{.Hots}}\"\n}\n", `inv.hcl:5:10: Invalid value for "kill" in commands: kill: template: kill word 2`},
		"unknown op":    {"cluster_name = \"c\"\naddresses = [\"https://a:8200\"]\ntoken_env = \"T\"\ncommands {\n  reboot = \"x\"\n}\n", `inv.hcl:5:3: Unsupported argument`},
		"number op":     {"cluster_name = \"c\"\naddresses = [\"https://a:8200\"]\ntoken_env = \"T\"\ncommands {\n  kill = 3\n}\n", `inv.hcl:5:10: Invalid value for "kill" in commands`},
		"bad node attr": {"cluster_name = \"c\"\naddresses = [\"https://a:8200\"]\ntoken_env = \"T\"\nnode \"n1\" {\n  instance = \"i-1\"\n}\n", `inv.hcl:5:3: Unsupported argument`},
		"timeout":       {"cluster_name = \"c\"\naddresses = [\"https://a:8200\"]\ntoken_env = \"T\"\ncommand_timeout = \"-1s\"\n", `inv.hcl:4:19: Invalid value for "command_timeout"`},
	} {
		_, err := ParseInventory("inv.hcl", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant %s", name, err, c.want)
		}
	}
}

// The shipped example parses, and its commands render for a node.
func TestExampleInventory(t *testing.T) {
	file := filepath.Join("..", "examples", "aws-spot", "inventory.hcl")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ParseInventory(file, src)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(inv.Commands.Available(), ","); got != strings.Join(external.Ops, ",") {
		t.Errorf("example commands %s, want every operation %v", got, external.Ops)
	}
	n := external.Node{Name: "i-0abc", InstanceID: "i-0abc"}
	argv, err := inv.Commands.Argv(external.OpKill, n)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"aws", "ssm", "send-command", "--instance-ids", "i-0abc", "--document-name", "AWS-RunShellScript", "--parameters", `commands=["systemctl kill -s KILL vault"]`}
	if strings.Join(argv, "|") != strings.Join(want, "|") {
		t.Errorf("kill argv %q, want %q", argv, want)
	}
	if argv, _ := inv.Commands.Argv(external.OpNotice, n); strings.Join(argv, " ") != "examples/aws-spot/spot-interrupt.sh i-0abc PT2M" {
		t.Errorf("notice argv %q", argv)
	}
	sc, err := Load(filepath.Join("..", "examples", "aws-spot", "spot-reclaim.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Cluster.Provider != ProviderExternal || sc.Cluster.Inventory != file || sc.Faults[0].Notice != 2*time.Minute {
		t.Errorf("example scenario: cluster %+v, fault %+v", sc.Cluster, sc.Faults[0])
	}
}
