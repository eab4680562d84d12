package reports

import (
	"os"
	"path/filepath"
	"testing"
)

// copyRun copies a checked-in run directory, so rendering into it does not
// touch testdata.
func copyRun(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(runsDir, name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestRenderQuick(t *testing.T) {
	for _, n := range []string{"spot-reclaim-a", "leader-kill-partial"} {
		d := copyRun(t, n)
		if err := Render(d); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll("/tmp/rep/"+n, 0o755)
		for _, f := range []string{HTMLFile, JUnitFile, MarkdownFile, HgrmFile} {
			b, _ := os.ReadFile(filepath.Join(d, f))
			os.WriteFile("/tmp/rep/"+n+"/"+f, b, 0o644)
		}
	}
}
