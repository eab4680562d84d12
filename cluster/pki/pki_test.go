package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateChain(t *testing.T) {
	in, err := SeedInputs()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), ".tls")
	hosts := []Host{{"node1", "127.0.0.11"}, {"node2", "127.0.0.12"}}
	if err := Generate(in, dir, hosts); err != nil {
		t.Fatal(err)
	}
	roots, err := RootPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		pair, err := tls.LoadX509KeyPair(CertFile(dir, h.Name), KeyFile(dir, h.Name))
		if err != nil {
			t.Fatal(err)
		}
		if len(pair.Certificate) != 2 {
			t.Fatalf("%s: chain has %d certificates, want leaf + intermediate", h.Name, len(pair.Certificate))
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		inter, _ := x509.ParseCertificate(pair.Certificate[1])
		if leaf.IsCA {
			t.Errorf("%s: leaf is a CA", h.Name)
		}
		if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
			t.Errorf("intermediate: IsCA=%v MaxPathLen=%d zero=%v, want CA with path length 0", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
		}
		if inter.Subject.CommonName != "Ogenki Intermediate CA" || inter.Issuer.CommonName != "Ogenki Root CA" {
			t.Errorf("intermediate subject/issuer = %q/%q", inter.Subject.CommonName, inter.Issuer.CommonName)
		}
		pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key is not ECDSA P-256", h.Name)
		}
		inters := x509.NewCertPool()
		inters.AddCert(inter)
		for _, name := range []string{h.Name, h.Addr, "localhost", "127.0.0.1"} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inters}); err != nil {
				t.Errorf("%s: verify for %q against the root alone: %v", h.Name, name, err)
			}
		}
		// Without the intermediate the chain must not verify: clients trust only the root.
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h.Addr, Roots: roots}); err == nil {
			t.Errorf("%s: leaf verified without the intermediate", h.Name)
		}
	}
	for _, f := range []string{RootKey, IntermediateKey, "node1-key.pem", "node2-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	// A later node (a replacement) gets a certificate from the same intermediate.
	ca, err := LoadIntermediate(in, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(in, dir, Host{"node6", "127.0.0.16"}); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(CertFile(dir, "node6"), KeyFile(dir, "node6"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if !isIP(leaf.IPAddresses[0].String()) || leaf.VerifyHostname("127.0.0.16") != nil {
		t.Errorf("node6 certificate lacks its address SAN: %v", leaf.IPAddresses)
	}
}

func TestLoadInputsErrors(t *testing.T) {
	cases := []struct {
		file, body, want string
	}{
		{ConfigFile, "{\n  \"signing\": {\n    \"profiles\": { \"ca\": {}, }\n  }\n}", "ca-config.json:3:"},
		{ConfigFile, `{"signing": {"profiles": {"ca": {"usages": ["cert sign"], "expiry": "1h", "ca_constraint": {"is_ca": true}}}}}`, `no "server" profile`},
		{RootCSRFile, "{\n  \"CN\": 5\n}", `ca-csr.json:2:`},
		{IntermediateCSRFile, "{\n  \"CN\": \"x\",\n  \"bogus\": 1\n}", `intermediate-ca-csr.json:3:`},
		{ServerCSRFile, `{"CN": ""}`, `vault-csr.json: field "CN" is empty`},
	}
	for _, c := range cases {
		dir := t.TempDir()
		for _, f := range []string{ConfigFile, RootCSRFile, IntermediateCSRFile, ServerCSRFile} {
			b, err := os.ReadFile(filepath.Join("seed", f))
			if err != nil {
				t.Fatal(err)
			}
			if f == c.file {
				b = []byte(c.body)
			}
			os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		_, err := LoadInputs(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.file, err, c.want)
		}
	}
}
