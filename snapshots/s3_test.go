package snapshots

import (
	"context"
	"strings"
	"testing"

	"github.com/vaultstorm/vaultstorm/snapshots/snaptest"
)

// TestStoreS3 runs the store suite against a real S3 server process
// (bin/s3server), and checks the server is gone once its test ends.
func TestStoreS3(t *testing.T) {
	var pid int
	t.Run("suite", func(t *testing.T) {
		s3 := snaptest.StartS3(t)
		pid = s3.PID
		StoreSuite(t, s3.URL)

		// A bucket that does not exist: the error names the store.
		ctx := context.Background()
		bad := strings.Replace(s3.URL, s3.Bucket, "no-such-bucket", 1)
		s, err := OpenStore(ctx, bad)
		if err == nil {
			_, err = s.List(ctx)
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("listing a missing bucket: %v, want an error naming %s", err, bad)
		}
	})
	if pid != 0 && snaptest.Alive(pid) {
		t.Errorf("S3 server pid %d still running after its test", pid)
	}
}
