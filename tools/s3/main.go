// Command s3server is the S3-compatible server vaultstorm's tests store
// snapshots in: github.com/johannesboyne/gofakes3 with its objects in a
// folder, on a loopback address. It is its own module (like tools/vault),
// so the harness's go.mod carries none of its dependencies.
//
// SeaweedFS (the first choice, `weed server -s3`) was measured
// building cold on this 2-core machine in 16 m 41 s (923 CPU-seconds, with
// other builds and tests running; the issue saw 9 m 23 s): too much on top
// of CI's two Vault builds. This builds cold in 83 s (empty build cache),
// about 7 s warm.
//
//	s3server -addr 127.0.0.1:9000 -dir /tmp/s3 [-bucket NAME]
//
// It accepts any credentials (no signature is checked). It exits on SIGTERM
// or SIGINT, closing its listener and open connections.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address (host:port); a port of 0 picks a free one, printed on stderr")
	dir := flag.String("dir", "", "folder for the buckets and their metadata (made when missing); required")
	bucket := flag.String("bucket", "", "create this bucket at start-up")
	quiet := flag.Bool("quiet", false, "log nothing but start-up and errors")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*addr, *dir, *bucket, *quiet); err != nil {
		log.Fatal("s3server: ", err)
	}
}

func run(addr, dir, bucket string, quiet bool) error {
	fs, err := s3afero.FsPath(dir, s3afero.FsPathCreateAll)
	if err != nil {
		return fmt.Errorf("-dir %s: %w", dir, err)
	}
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		return err
	}
	if bucket != "" {
		if err := backend.CreateBucket(bucket); err != nil && !gofakes3.IsAlreadyExists(err) {
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}
	logger := gofakes3.GlobalLog()
	if quiet {
		logger = gofakes3.GlobalLog(gofakes3.LogErr)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(logger), gofakes3.WithIntegrityCheck(true))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("s3server: serving %s on http://%s", dir, l.Addr())
	srv := &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	srv.Close()
	log.Print("s3server: stopped")
	return nil
}
