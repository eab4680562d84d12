// Package tlsconf is the one TLS client configuration of the harness:
// servers verified against a PEM CA file (the system's roots when none is
// given), TLS 1.2 at least. Nothing in vaultstorm turns verification off,
// and every client (load, watcher, scraper, snapshot agent) gets its
// configuration here.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Client returns a TLS configuration that verifies servers against the
// certificates in caFile ("" = the system's roots).
func Client(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
