// Package pki builds the cluster's TLS material the way the seed
// architecture does, with cfssl as a library: a root CA, an intermediate CA
// signed by it with the `ca` profile (path length 0), and one ECDSA server
// certificate per node signed by the intermediate.
//
// Servers present their certificate followed by the intermediate; clients
// trust only the root.
package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	"github.com/cloudflare/cfssl/helpers"
	"github.com/cloudflare/cfssl/initca"
	cflog "github.com/cloudflare/cfssl/log"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"
)

// Input file names, as in the seed.
const (
	ConfigFile          = "ca-config.json"
	RootCSRFile         = "ca-csr.json"
	IntermediateCSRFile = "intermediate-ca-csr.json"
	ServerCSRFile       = "vault-csr.json"
)

// Output file names under the .tls directory.
const (
	RootCert         = "root-ca.pem"
	RootKey          = "root-ca-key.pem"
	IntermediateCert = "intermediate-ca.pem"
	IntermediateKey  = "intermediate-ca-key.pem"
)

// ServerProfile and CAProfile are the ca-config.json profiles used.
const (
	CAProfile     = "ca"
	ServerProfile = "server"
)

// Host is one server certificate to issue.
type Host struct {
	Name string // node name, e.g. node1; also the file name stem
	Addr string // IP address or DNS name the node is reached at
}

// CertFile is the server certificate chain (leaf + intermediate) of a host.
func CertFile(tlsDir, name string) string { return filepath.Join(tlsDir, name+".pem") }

// KeyFile is the private key of a host.
func KeyFile(tlsDir, name string) string { return filepath.Join(tlsDir, name+"-key.pem") }

// CAFile is the root certificate every client trusts.
func CAFile(tlsDir string) string { return filepath.Join(tlsDir, RootCert) }

// Inputs are the parsed cfssl inputs.
type Inputs struct {
	Signing         *config.Signing
	Root            *csr.CertificateRequest
	Intermediate    *csr.CertificateRequest
	ServerTemplate  *csr.CertificateRequest
	serverTemplJSON []byte
}

//go:embed seed/*.json
var seedFS embed.FS

// SeedInputs are the seed architecture's own cfssl files, built in.
func SeedInputs() (*Inputs, error) {
	sub, _ := fs.Sub(seedFS, "seed")
	return loadInputs(sub, "(built-in seed PKI)")
}

// LoadInputs reads the four cfssl input files from dir, with errors that
// name the file and the line and column of a JSON mistake.
func LoadInputs(dir string) (*Inputs, error) {
	return loadInputs(os.DirFS(dir), dir)
}

func loadInputs(fsys fs.FS, dir string) (*Inputs, error) {
	in := &Inputs{}
	cfgPath := filepath.Join(dir, ConfigFile)
	raw, err := fs.ReadFile(fsys, ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("pki inputs: %w", err)
	}
	var probe map[string]any
	if err := decodeJSON(cfgPath, raw, &probe); err != nil {
		return nil, err
	}
	cfg, err := config.LoadConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if cfg.Signing == nil {
		return nil, fmt.Errorf("%s: no \"signing\" section", cfgPath)
	}
	for _, p := range []string{CAProfile, ServerProfile} {
		if cfg.Signing.Profiles[p] == nil {
			return nil, fmt.Errorf("%s: signing.profiles has no %q profile", cfgPath, p)
		}
	}
	if !cfg.Signing.Profiles[CAProfile].CAConstraint.IsCA {
		return nil, fmt.Errorf("%s: profile %q must set ca_constraint.is_ca", cfgPath, CAProfile)
	}
	in.Signing = cfg.Signing
	for _, f := range []struct {
		name string
		dst  **csr.CertificateRequest
	}{{RootCSRFile, &in.Root}, {IntermediateCSRFile, &in.Intermediate}, {ServerCSRFile, &in.ServerTemplate}} {
		path := filepath.Join(dir, f.name)
		raw, err := fs.ReadFile(fsys, f.name)
		if err != nil {
			return nil, fmt.Errorf("pki inputs: %w", err)
		}
		req := csr.New()
		if err := decodeJSON(path, raw, req); err != nil {
			return nil, err
		}
		if req.CN == "" {
			return nil, fmt.Errorf("%s: field \"CN\" is empty", path)
		}
		if req.KeyRequest == nil {
			req.KeyRequest = csr.NewKeyRequest()
		}
		*f.dst = req
		if f.name == ServerCSRFile {
			in.serverTemplJSON = raw
		}
	}
	return in, nil
}

func init() {
	// cfssl logs every CSR and serial at INFO; a harness prints its own progress.
	cflog.Level = cflog.LevelWarning
}

// decodeJSON unmarshals strictly and turns offsets into line:column.
func decodeJSON(path string, raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
		err = fmt.Errorf("field %q: cannot use %s as %s", te.Field, te.Value, te.Type)
	default:
		off = dec.InputOffset()
		// encoding/json reports an unknown field at the end of its object;
		// point at the field itself.
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			if i := bytes.Index(raw, []byte(name)); i >= 0 {
				off = int64(i)
			}
		}
	}
	line, col := 1, 1
	for i := int64(0); i < off && i < int64(len(raw)); i++ {
		if raw[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("%s:%d:%d: %w", path, line, col, err)
}

// CA is a loaded signing CA.
type CA struct {
	signer *local.Signer
	pem    []byte
}

// Generate makes a fresh root and intermediate CA in tlsDir and issues a
// server certificate for each host. Keys are written 0600.
func Generate(in *Inputs, tlsDir string, hosts []Host) error {
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", tlsDir, err)
	}
	rootPEM, _, rootKey, err := initca.New(in.Root)
	if err != nil {
		return fmt.Errorf("root CA: %w", err)
	}
	if err := writePair(tlsDir, RootCert, rootPEM, RootKey, rootKey); err != nil {
		return err
	}
	root, err := newCA(rootPEM, rootKey, in.Signing)
	if err != nil {
		return fmt.Errorf("root CA: %w", err)
	}
	intCSR, intKey, err := csr.ParseRequest(in.Intermediate)
	if err != nil {
		return fmt.Errorf("intermediate CA request: %w", err)
	}
	intPEM, err := root.signer.Sign(signer.SignRequest{Request: string(intCSR), Profile: CAProfile})
	if err != nil {
		return fmt.Errorf("sign intermediate CA: %w", err)
	}
	if err := writePair(tlsDir, IntermediateCert, intPEM, IntermediateKey, intKey); err != nil {
		return err
	}
	ca, err := newCA(intPEM, intKey, in.Signing)
	if err != nil {
		return fmt.Errorf("intermediate CA: %w", err)
	}
	for _, h := range hosts {
		if err := ca.Issue(in, tlsDir, h); err != nil {
			return err
		}
	}
	return nil
}

// LoadIntermediate loads the intermediate CA written by Generate, to issue
// certificates for nodes added later (replacements).
func LoadIntermediate(in *Inputs, tlsDir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(tlsDir, IntermediateCert))
	if err != nil {
		return nil, fmt.Errorf("load intermediate CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(tlsDir, IntermediateKey))
	if err != nil {
		return nil, fmt.Errorf("load intermediate CA: %w", err)
	}
	return newCA(certPEM, keyPEM, in.Signing)
}

func newCA(certPEM, keyPEM []byte, policy *config.Signing) (*CA, error) {
	cert, err := helpers.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := helpers.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	s, err := local.NewSigner(key, cert, signer.DefaultSigAlgo(key.(crypto.Signer)), policy)
	if err != nil {
		return nil, err
	}
	return &CA{signer: s, pem: certPEM}, nil
}

// Issue writes host's key and certificate chain into tlsDir. The SANs are
// the template's hosts plus the node's name and address, localhost and
// 127.0.0.1.
func (ca *CA) Issue(in *Inputs, tlsDir string, h Host) error {
	// A fresh copy of the template per host: csr.ParseRequest keeps state
	// in the request it is given.
	req := csr.New()
	if err := json.Unmarshal(in.serverTemplJSON, req); err != nil {
		return fmt.Errorf("server template: %w", err)
	}
	if req.KeyRequest == nil {
		req.KeyRequest = csr.NewKeyRequest()
	}
	req.Hosts = dedupe(append(req.Hosts, h.Name, h.Addr, "localhost", "127.0.0.1"))
	csrPEM, key, err := csr.ParseRequest(req)
	if err != nil {
		return fmt.Errorf("certificate request for %s: %w", h.Name, err)
	}
	cert, err := ca.signer.Sign(signer.SignRequest{Request: string(csrPEM), Hosts: req.Hosts, Profile: ServerProfile})
	if err != nil {
		return fmt.Errorf("sign certificate for %s: %w", h.Name, err)
	}
	chain := append(bytes.TrimSpace(cert), '\n')
	chain = append(chain, bytes.TrimSpace(ca.pem)...)
	chain = append(chain, '\n')
	return writePair(tlsDir, filepath.Base(CertFile(tlsDir, h.Name)), chain, filepath.Base(KeyFile(tlsDir, h.Name)), key)
}

func writePair(dir, certName string, cert []byte, keyName string, key []byte) error {
	if err := os.WriteFile(filepath.Join(dir, keyName), key, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", keyName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, certName), cert, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", certName, err)
	}
	return nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// RootPool returns a pool holding only the root CA.
func RootPool(tlsDir string) (*x509.CertPool, error) {
	b, err := os.ReadFile(CAFile(tlsDir))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", CAFile(tlsDir))
	}
	return pool, nil
}

// isIP reports whether s is an IP literal (used by tests).
func isIP(s string) bool { return net.ParseIP(s) != nil }
