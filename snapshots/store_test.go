package snapshots

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/vaultstorm/vaultstorm/snapshots/snaptest"
)

func fakeSnapshot(t testing.TB, index, term uint64, stateSize int, sealed bool) []byte {
	return snaptest.FakeSnapshot(index, term, stateSize, sealed)
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestParseMeta(t *testing.T) {
	snap := fakeSnapshot(t, 1234, 7, 3<<20, true)
	m, err := ParseMeta(bytes.NewReader(snap))
	if err != nil || m.Index != 1234 || m.Term != 7 || m.Size != 3<<20 {
		t.Fatalf("ParseMeta = %+v, %v; want index 1234 term 7", m, err)
	}
	// Only the start of the stream is needed (what Put keeps).
	mr := newMetaReader()
	for b := snap; len(b) > 0; b = b[min(len(b), 4096):] {
		mr.Write(b[:min(len(b), 4096)])
	}
	if mr.buf.Len() != metaPrefix {
		t.Errorf("metaReader kept %d bytes, want %d", mr.buf.Len(), metaPrefix)
	}
	if m, err := mr.finish(); err != nil || m.Index != 1234 || m.Term != 7 {
		t.Errorf("from the first %d bytes: %+v, %v", metaPrefix, m, err)
	}
	if _, err := ParseMeta(strings.NewReader("not gzip")); err == nil || !strings.Contains(err.Error(), "not a raft snapshot") {
		t.Errorf("garbage: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ in, want, err string }{
		{in: dir, want: "file://" + dir + "?create_dir=true&no_tmp_dir=true"},
		{in: "file://" + dir + "?no_tmp_dir=", want: "file://" + dir + "?create_dir=true&no_tmp_dir="},
		{in: "s3://b?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true", want: "s3://b?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true"},
		{in: "s3:///x", err: "s3:///x: no bucket"},
		{in: "ftp://h/x", err: `ftp://h/x: scheme "ftp" not supported`},
		{in: "file://host/x", err: "file://host/x: a file URL names an absolute path"},
		{in: "", err: "empty"},
	} {
		got, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseURL("relative/dir"); err != nil {
		t.Errorf("relative path: %v", err)
	}
}

func TestStoreFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snaps") // made by the store
	StoreSuite(t, dir)
	// On disk: the two snapshots the suite leaves and their metadata, nothing
	// else of ours (fileblob's own .attrs files aside).
	var names []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".attrs") {
			names = append(names, e.Name())
		}
	}
	if len(names) != 4 {
		t.Errorf("store folder holds %v, want the 2 snapshots left and their .json", names)
	}
}

// StoreSuite checks a store at url that starts empty: put, list order,
// metadata round trip, retention, checksum on read, abandoned writes,
// delete. The S3 test runs it too.
func StoreSuite(t *testing.T, url string) {
	ctx := context.Background()
	s, err := OpenStore(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if l, err := s.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("new store lists %v, %v", l, err)
	}
	if _, err := s.Latest(ctx); err == nil || !strings.Contains(err.Error(), "no snapshot") {
		t.Errorf("Latest of an empty store: %v", err)
	}

	base := time.Date(2026, 12, 5, 15, 30, 0, 123e6, time.UTC)
	var put []Info
	data := map[string][]byte{}
	for i := range 5 {
		// Out of order, to show List sorts.
		k := []int{2, 0, 4, 1, 3}[i]
		start := base.Add(time.Duration(k) * time.Minute)
		name, err := s.NewName(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		if name != NameFor(start) {
			t.Errorf("NewName = %s, want %s", name, NameFor(start))
		}
		snap := fakeSnapshot(t, uint64(100+k), uint64(k+1), 64<<10+k, true)
		info, err := s.PutFile(ctx, Info{
			Name: name, Started: start, Ended: start.Add(1500 * time.Millisecond),
			Node: "https://127.0.64.11:8200", Via: "https://127.0.64.12:8200", VaultVersion: "1.21.0",
		}, bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(snap)) || info.SHA256 != sha(snap) || info.Index != uint64(100+k) || info.Term != uint64(k+1) {
			t.Errorf("PutFile %s: size %d sha %s index %d term %d; want %d %s %d %d", name, info.Size, info.SHA256, info.Index, info.Term, len(snap), sha(snap), 100+k, k+1)
		}
		put = append(put, info)
		data[name] = snap
	}
	// A name that is taken moves on by a millisecond.
	if name, _ := s.NewName(ctx, base); name != NameFor(base.Add(time.Millisecond)) {
		t.Errorf("NewName of a taken time = %s", name)
	}

	l, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 5 {
		t.Fatalf("List: %d snapshots, want 5", len(l))
	}
	for i, info := range l {
		want := NameFor(base.Add(time.Duration(4-i) * time.Minute))
		if info.Name != want {
			t.Errorf("List[%d] = %s, want %s (newest first)", i, info.Name, want)
		}
		// Metadata round trip: what Put returned is what List reads back.
		j := slices.IndexFunc(put, func(p Info) bool { return p.Name == info.Name })
		if p := put[j]; !p.Started.Equal(info.Started) || !p.Ended.Equal(info.Ended) || p.Size != info.Size || p.SHA256 != info.SHA256 ||
			p.Index != info.Index || p.Term != info.Term || p.Node != info.Node || p.Via != info.Via || p.VaultVersion != info.VaultVersion {
			t.Errorf("metadata of %s: put %+v, listed %+v", info.Name, p, info)
		}
		if info.Duration() != 1500*time.Millisecond {
			t.Errorf("%s: duration %s", info.Name, info.Duration())
		}
	}

	// Reading back: the same bytes, checked.
	r, info, err := s.Open(ctx, l[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data[l[0].Name]) || info.Name != l[0].Name {
		t.Errorf("Open %s: %d bytes, %v", l[0].Name, len(got), err)
	}

	// A write that fails leaves nothing behind.
	start := base.Add(10 * time.Minute)
	failed := Info{Name: NameFor(start), Started: start}
	err = s.Put(ctx, &failed, func(w io.Writer) error {
		w.Write(data[l[0].Name][:1000])
		return errors.New("vault went away")
	})
	if err == nil || err.Error() != "vault went away" {
		t.Errorf("failed Put: %v", err)
	}
	bucket, err := blob.OpenBucket(ctx, mustParse(t, url))
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	for _, key := range []string{failed.Name, failed.Name + MetaExt} {
		if ok, err := bucket.Exists(ctx, key); ok || err != nil {
			t.Errorf("after a failed Put, %s exists=%v (%v)", key, ok, err)
		}
	}

	// A snapshot whose data changed under it fails its check on read.
	victim := l[1].Name
	bad := slices.Clone(data[victim])
	bad[len(bad)/2] ^= 0xff
	if err := bucket.WriteAll(ctx, victim, bad, nil); err != nil {
		t.Fatal(err)
	}
	r, _, err = s.Open(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	r.Close()
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), victim) {
		t.Errorf("reading a changed snapshot: %v, want ErrChecksum naming %s", err, victim)
	}
	// Truncated too.
	bucket.WriteAll(ctx, victim, data[victim][:len(data[victim])-1], nil)
	r, _, _ = s.Open(ctx, victim)
	if _, err = io.ReadAll(r); !errors.Is(err, ErrChecksum) {
		t.Errorf("reading a truncated snapshot: %v", err)
	}
	r.Close()
	bucket.WriteAll(ctx, victim, data[victim], nil)

	// An object left without metadata by a dead writer, older than all:
	// not listed, removed by Retain.
	orphan := NameFor(base.Add(-time.Hour))
	bucket.WriteAll(ctx, orphan, []byte("partial"), nil)
	if l, _ := s.List(ctx); len(l) != 5 {
		t.Errorf("an object without metadata is listed: %d", len(l))
	}

	deleted, err := s.Retain(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantDeleted := []string{NameFor(base.Add(time.Minute)), NameFor(base), orphan}
	if !slices.Equal(deleted, wantDeleted) {
		t.Errorf("Retain(3) deleted %v, want %v", deleted, wantDeleted)
	}
	l, _ = s.List(ctx)
	var names []string
	for _, i := range l {
		names = append(names, i.Name)
	}
	want := []string{NameFor(base.Add(4 * time.Minute)), NameFor(base.Add(3 * time.Minute)), NameFor(base.Add(2 * time.Minute))}
	if !slices.Equal(names, want) {
		t.Errorf("after Retain(3): %v, want %v", names, want)
	}
	if d, err := s.Retain(ctx, 3); err != nil || len(d) != 0 {
		t.Errorf("Retain again: %v, %v", d, err)
	}
	if d, err := s.Retain(ctx, 0); err != nil || len(d) != 0 {
		t.Errorf("Retain(0) keeps all: %v, %v", d, err)
	}
	for _, key := range []string{orphan, NameFor(base), NameFor(base) + MetaExt} {
		if ok, _ := bucket.Exists(ctx, key); ok {
			t.Errorf("%s still there after Retain", key)
		}
	}

	// Delete removes both objects; a missing snapshot is named in the error.
	if err := s.Delete(ctx, want[2]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, want[2]); err == nil || !strings.Contains(err.Error(), want[2]) || !strings.Contains(err.Error(), s.URL()) {
		t.Errorf("Open of a deleted snapshot: %v", err)
	}
	if err := s.Put(ctx, &Info{Name: "x.snap"}, nil); err == nil || !strings.Contains(err.Error(), "bad snapshot name") {
		t.Errorf("Put with a bad name: %v", err)
	}
	// Leave the two newest, for callers that look further.
}

func mustParse(t *testing.T, s string) string {
	u, err := ParseURL(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
