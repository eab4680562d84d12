package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadLinesToleratesATornLastLine(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenAppender(dir, EventsFile)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := a.Append(Event{T: time.Unix(int64(i), 0), Kind: EvNote}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	// A writer killed mid-line leaves half a JSON object without '\n'.
	f, _ := os.OpenFile(filepath.Join(dir, EventsFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"t":"2026-01-01T00:00:0`)
	f.Close()
	var n int
	if err := ReadLines(dir, EventsFile, func(Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("read %d events, want the 3 complete ones", n)
	}
}

func TestReadLinesNamesABadLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, SamplesFile), []byte("{}\nnot json\n{}\n"), 0o644)
	err := ReadLines(dir, SamplesFile, func(Sample) error { return nil })
	if err == nil || !strings.Contains(err.Error(), SamplesFile+":2:") {
		t.Errorf("error %v, want it to name %s line 2", err, SamplesFile)
	}
	if err := ReadLines(dir, "missing.jsonl", func(Sample) error { return nil }); err != nil {
		t.Errorf("a missing file is no lines, got %v", err)
	}
}

func TestWriteJSONReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	if err := WriteJSON(dir, MetaFile, Meta{Scenario: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(dir, MetaFile, Meta{Scenario: "b", Ended: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	var m Meta
	if err := ReadJSON(dir, MetaFile, &m); err != nil {
		t.Fatal(err)
	}
	if m.Scenario != "b" || m.Partial() {
		t.Errorf("meta = %+v, want the second, ended", m)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files, want only %s (no temp file left)", len(entries), MetaFile)
	}
}
