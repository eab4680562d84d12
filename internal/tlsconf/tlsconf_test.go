package tlsconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClient(t *testing.T) {
	c, err := Client("")
	if err != nil || c.RootCAs != nil || c.InsecureSkipVerify {
		t.Errorf("no CA file: %+v %v, want the system roots and verification on", c, err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := Client(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("a file with no PEM certificate: %v, want an error naming it", err)
	}
	if _, err := Client(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("a missing file: %v, want an error naming it", err)
	}
}
