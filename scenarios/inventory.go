package scenarios

import (
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/vaultstorm/vaultstorm/cluster/external"
)

// inventoryTop is an inventory file's top level (see examples/aws-spot).
type inventoryTop struct {
	ClusterName    string        `hcl:"cluster_name"`
	Addresses      []string      `hcl:"addresses"`
	CAFile         string        `hcl:"ca_file,optional"`
	TokenFile      string        `hcl:"token_file,optional"`
	TokenEnv       string        `hcl:"token_env,optional"`
	CommandTimeout time.Duration `hcl:"command_timeout,optional"`
}

type inventoryNode struct {
	Host       string `hcl:"host,optional"`
	Zone       string `hcl:"zone,optional"`
	InstanceID string `hcl:"instance_id,optional"`
}

// ParseInventory reads an inventory: a cluster vaultstorm did not make,
// and the commands that act on its nodes. Problems are reported like a
// scenario's, at file:line:column; relative paths are taken from the
// file's directory.
func ParseInventory(filename string, src []byte) (*external.Inventory, error) {
	p := &parser{}
	inv := p.inventory(filename, src)
	files := map[string]*hcl.File{}
	if p.file != nil {
		files[filename] = p.file
	}
	if p.diags.HasErrors() {
		sort.SliceStable(p.diags, func(i, j int) bool {
			a, b := p.diags[i].Subject, p.diags[j].Subject
			return a != nil && b != nil && (a.Start.Line < b.Start.Line || a.Start.Line == b.Start.Line && a.Start.Column < b.Start.Column)
		})
		return nil, &Error{Diags: p.diags, Files: files}
	}
	return inv, nil
}

func (p *parser) inventory(filename string, src []byte) *external.Inventory {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	p.diags = append(p.diags, diags...)
	p.file = f
	if diags.HasErrors() || f == nil {
		return nil
	}
	top := inventoryTop{CommandTimeout: external.DefaultCommandTimeout}
	schema := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "commands"}, {Type: "node", LabelNames: []string{"id"}}}}
	for _, n := range tagNames(&top) {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: n, Required: n == "cluster_name" || n == "addresses"})
	}
	fileStart := hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	b := p.decodeBody(f.Body, schema, append(tagNames(&top), "commands", "node"), "the inventory", fileStart, &top)
	dir := filepath.Dir(filename)
	rel := func(s string) string {
		if s == "" || filepath.IsAbs(s) {
			return s
		}
		return filepath.Join(dir, s)
	}
	inv := &external.Inventory{File: filename, ClusterName: top.ClusterName, CAFile: rel(top.CAFile), TokenFile: rel(top.TokenFile), TokenEnv: top.TokenEnv, Nodes: map[string]external.NodeInfo{}}
	if b.ok("cluster_name") && top.ClusterName == "" {
		b.errf("cluster_name", "must name the cluster (its sys/health cluster_name): a run refuses any other")
	}
	if b.ok("addresses") {
		if len(top.Addresses) == 0 {
			b.errf("addresses", "give at least one API address, e.g. [\"https://vault-1.example:8200\"]")
		}
		for _, a := range top.Addresses {
			if u, err := url.Parse(a); err != nil || u.Scheme != "https" || u.Host == "" {
				b.errf("addresses", "%q is not an https://HOST:PORT address (TLS is always verified)", a)
				continue
			}
			inv.Addresses = append(inv.Addresses, a)
		}
	}
	if b.has("token_file") && b.has("token_env") {
		b.errf("token_env", "give token_file or token_env, not both")
	}
	if !b.has("token_file") && !b.has("token_env") {
		p.errAt(fileStart, "Missing token", "an inventory needs token_file or token_env (the token that reads the cluster's raft configuration and drives the load)")
	}
	b.positive("command_timeout", &top.CommandTimeout)

	var cmds map[string]string
	for i, hb := range b.blocksOf("commands") {
		if i > 0 {
			p.errAt(hb.DefRange, "Duplicate commands block", "an inventory has one commands block")
			continue
		}
		cmds = p.commands(hb)
	}
	c, err := external.ParseCommands(cmds, top.CommandTimeout)
	if err != nil {
		// Reported per attribute by p.commands; this is only reached for
		// what it could not place.
		p.errAt(fileStart, "Invalid commands", "%v", err)
	}
	inv.Commands = c
	for _, hb := range b.blocksOf("node") {
		var n inventoryNode
		p.decode(hb, fmt.Sprintf("node %q", hb.Labels[0]), &n)
		if _, dup := inv.Nodes[hb.Labels[0]]; dup {
			p.errAt(hb.DefRange, "Duplicate node block", "node %q is described twice", hb.Labels[0])
		}
		inv.Nodes[hb.Labels[0]] = external.NodeInfo(n)
	}
	return inv
}

// commands decodes a commands block: one string attribute per operation,
// each checked as a template where it stands.
func (p *parser) commands(hb *hcl.Block) map[string]string {
	schema := &hcl.BodySchema{}
	for _, op := range external.Ops {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: op})
	}
	content, diags := hb.Body.Content(schema)
	for _, d := range diags {
		if d.Summary == "Unsupported argument" {
			d.Detail += fmt.Sprintf(" commands takes: %v.", external.Ops)
		}
	}
	p.diags = append(p.diags, diags...)
	out := map[string]string{}
	b := &block{p: p, attrs: content.Attributes, what: "commands", def: hb.DefRange, fields: map[string][2]reflect.Value{}}
	for name, a := range content.Attributes {
		v, ok := b.value(name, a)
		if !ok {
			continue
		}
		var s string
		if !b.convert(name, v, reflect.ValueOf(&s).Elem(), "") {
			continue
		}
		if _, err := external.ParseCommands(map[string]string{name: s}, time.Minute); err != nil {
			b.errf(name, "%v", err)
			continue
		}
		out[name] = s
	}
	return out
}
