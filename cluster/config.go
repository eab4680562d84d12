package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"

	"github.com/vaultstorm/vaultstorm/cluster/pki"
)

// nodeConfig is a raft node's server configuration: TLS on both ports,
// raft storage on the node's array with retry_join to every other node
// (verified with the root CA), and the transit seal.
var nodeConfig = template.Must(template.New("node").Funcs(template.FuncMap{"q": strconv.Quote}).Parse(`# Written by vaultstorm for {{.Node.Name}} (generation {{.Node.Generation}}).
ui            = false
disable_mlock = true
cluster_name  = "vaultstorm"
log_level     = "info"
{{- with .Log}}
log_file      = {{q .}}
{{- end}}
api_addr      = {{q .Node.APIAddr}}
cluster_addr  = {{q .Node.ClusterAddr}}

listener "tcp" {
  address         = "{{.Node.IP}}:{{.APIPort}}"
  cluster_address = "{{.Node.IP}}:{{.ClusterPort}}"
  tls_cert_file   = {{q .Cert}}
  tls_key_file    = {{q .Key}}
  telemetry {
    unauthenticated_metrics_access = false
  }
}

storage "raft" {
  path                   = {{q .Data}}
  node_id                = {{q .Node.NodeID}}
  performance_multiplier = {{.PerfMultiplier}}
  autopilot_reconcile_interval = "{{.Reconcile}}"
  autopilot_update_interval    = "{{.Update}}"
{{- range .Peers}}
  retry_join {
    leader_api_addr     = {{q .APIAddr}}
    leader_ca_cert_file = {{q $.CA}}
  }
{{- end}}
}

seal "transit" {
  address         = {{q .Seal.APIAddr}}
  token           = {{q .SealToken}}
  key_name        = {{q .SealKey}}
  mount_path      = "transit/"
  tls_ca_cert     = {{q .CA}}
  disable_renewal = "false"
}

telemetry {
  prometheus_retention_time = "1m"
  disable_hostname          = true
}
`))

// sealConfig is the transit Vault: one node, file storage, Shamir-sealed.
// It is the cloud KMS of the seed, not a system under test.
var sealConfig = template.Must(template.New("seal").Funcs(template.FuncMap{"q": strconv.Quote}).Parse(`# Written by vaultstorm: the transit auto-unseal provider (stand-in for a cloud KMS).
ui            = false
disable_mlock = true
log_level     = "info"
{{- with .Log}}
log_file      = {{q .}}
{{- end}}
api_addr      = {{q .Node.APIAddr}}

listener "tcp" {
  address       = "{{.Node.IP}}:{{.APIPort}}"
  tls_cert_file = {{q .Cert}}
  tls_key_file  = {{q .Key}}
}

storage "file" {
  path = {{q .Data}}
}
`))

// writeConfig renders n's configuration file (0600: it holds the seal token).
func (c *Cluster) writeConfig(n *Node) error {
	paths := c.provider.paths(c, n)
	data := map[string]any{
		"Node":           n,
		"APIPort":        APIPort,
		"ClusterPort":    ClusterPort,
		"Cert":           paths.Cert,
		"Key":            paths.Key,
		"CA":             paths.CA,
		"Data":           paths.Data,
		"Log":            paths.Log,
		"PerfMultiplier": c.State.Spec.PerformanceMultiplier,
		"Reconcile":      c.State.Spec.AutopilotReconcile,
		"Update":         c.State.Spec.AutopilotUpdate,
		"Seal":           c.State.Seal,
		"SealKey":        c.sealKey(),
	}
	tmpl := sealConfig
	if n.Role == RoleVoter {
		tmpl = nodeConfig
		tok, err := os.ReadFile(c.secret(sealTokenFile))
		if err != nil {
			return fmt.Errorf("config %s: seal token: %w", n.Name, err)
		}
		data["SealToken"] = string(bytes.TrimSpace(tok))
		var peers []*Node
		for _, p := range c.State.Nodes {
			if p.Name != n.Name {
				peers = append(peers, p)
			}
		}
		data["Peers"] = peers
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return fmt.Errorf("config %s: %w", n.Name, err)
	}
	if err := os.MkdirAll(c.NodeDir(n.Name), 0o700); err != nil {
		return err
	}
	return os.WriteFile(c.ConfigFile(n.Name), b.Bytes(), 0o600)
}

// NodeDir holds a node's configuration and log.
func (c *Cluster) NodeDir(name string) string { return filepath.Join(c.Dir, NodesDir, name) }

// ConfigFile is a node's server configuration.
func (c *Cluster) ConfigFile(name string) string { return filepath.Join(c.NodeDir(name), "vault.hcl") }

// LogFile is a node's Vault log (all generations appended).
func (c *Cluster) LogFile(name string) string { return filepath.Join(c.NodeDir(name), "vault.log") }

// TLSDir holds the PKI.
func (c *Cluster) TLSDir() string { return filepath.Join(c.Dir, TLSDir) }

// CAFile is the root CA certificate every client must verify against.
func (c *Cluster) CAFile() string {
	if c.ext != nil {
		return c.ext.Inv.CAFile
	}
	return pki.CAFile(c.TLSDir())
}

// TokenFile is the root token of the cluster under test (0600).
func (c *Cluster) TokenFile() string { return c.secret(RootTokenFile) }

func (c *Cluster) secret(name string) string { return filepath.Join(c.Dir, SecretsDir, name) }
