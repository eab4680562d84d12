// Command fakevault serves the fake Vault on a loopback TLS port, for
// trying `vaultstorm load` without a cluster. It prints the environment to
// point vaultstorm at it and exits after --for.
package main

import (
	"encoding/pem"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vaultstorm/vaultstorm/load/fakevault"
)

func main() {
	token := flag.String("token", "fake-token", "token the fake accepts")
	life := flag.Duration("for", 10*time.Minute, "exit after this long")
	sealed := flag.Bool("sealed", false, "answer as a sealed Vault")
	capacity := flag.Float64("capacity", 0, "serve at most this many KV requests per second, one at a time (a known knee for `vaultstorm capacity`); 0: no limit")
	flag.Parse()
	fv := fakevault.New(*token)
	fv.Seal(*sealed)
	fv.SetCapacity(*capacity)
	srv := httptest.NewUnstartedServer(fv)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	dir, err := os.MkdirTemp("", "fakevault")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	fmt.Printf("export VAULT_ADDR=%s VAULT_CACERT=%s VAULT_TOKEN=%s\n", srv.URL, ca, *token)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(*life):
	}
}
