// Package snapshots takes Vault raft snapshots, keeps them in a blob store
// and restores them: what a snapshot agent does for open-source Vault
// (Vault Enterprise automates it), and what vaultstorm's backups are
// measured with.
//
// A Store is a gocloud.dev/blob bucket, file:// (or a bare path) or s3://
// (any S3-compatible server). Each snapshot is an object named after the
// time its request started, vaultstorm-20261205T153000.123Z.snap, so names
// sort by time, and its metadata (Info) is a JSON object beside it,
// NAME.json, written once the snapshot is complete: a snapshot without it
// is not listed.
//
// Save streams a snapshot from Vault (GET sys/storage/raft/snapshot)
// into a store, computing its size and sha256 and reading its raft index
// and term on the way; Restore reads it back, checks its size and sha256,
// and sends it to Vault (RaftSnapshotRestoreWithContext). An Agent saves one
// every interval from the active node and keeps the newest N, with a token
// that EnsurePolicy limits to reading sys/storage/raft/snapshot.
package snapshots

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	// The two drivers the harness uses, and no others: each pulls in its
	// cloud's SDK.
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// Prefix and Ext frame every snapshot object's name: Prefix, the UTC time
// the request started (NameLayout), Ext.
const (
	Prefix     = "vaultstorm-"
	Ext        = ".snap"
	MetaExt    = ".json"
	NameLayout = "20060102T150405.000Z"
)

// Info is what is known of one snapshot; it is stored as NAME.json.
type Info struct {
	Name string `json:"name"`
	// Started is when the snapshot request was sent, Ended when the last
	// byte of its response was read: writes acknowledged before Started are
	// in it, writes acknowledged after Ended are not.
	Started time.Time `json:"request_started"`
	Ended   time.Time `json:"response_ended"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	// Index and Term are the raft index and term of the snapshot, read from
	// its meta.json (0 when the archive had none).
	Index uint64 `json:"raft_index"`
	Term  uint64 `json:"raft_term"`
	// Node is the API address of the node that served it (the active node;
	// Via is the address asked when that was a standby that forwarded it).
	Node         string `json:"node"`
	Via          string `json:"via,omitempty"`
	VaultVersion string `json:"vault_version,omitempty"`
}

// Duration is how long taking the snapshot took, request to last byte.
func (i Info) Duration() time.Duration { return i.Ended.Sub(i.Started) }

// NameFor is the object name of a snapshot whose request started at t.
func NameFor(t time.Time) string { return Prefix + t.UTC().Format(NameLayout) + Ext }

// Store is a bucket of snapshots.
type Store struct {
	url    string // what gocloud opened
	shown  string // what the user gave (a bare path made absolute), for messages
	bucket *blob.Bucket
}

// ParseURL turns what a user typed into a bucket URL: a URL with a scheme
// is kept as it is, a bare path becomes file:///ABS/PATH. file:// URLs get
// create_dir (the folder is made when missing) and no_tmp_dir (partial
// writes are kept next to the snapshots, not in $TMPDIR, from where a
// rename to another file system would fail) unless they say otherwise.
func ParseURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty snapshot store URL")
	}
	if !strings.Contains(s, "://") {
		abs, err := filepath.Abs(s)
		if err != nil {
			return "", err
		}
		s = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("snapshot store %q: %w", s, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("snapshot store %s: a file URL names an absolute path: file:///path/to/dir (the host part %q would be dropped)", s, u.Host)
		}
		q := u.Query()
		if !q.Has("create_dir") {
			q.Set("create_dir", "true")
		}
		if !q.Has("no_tmp_dir") {
			q.Set("no_tmp_dir", "true")
		}
		u.RawQuery = q.Encode()
	case "s3":
		if u.Host == "" {
			return "", fmt.Errorf("snapshot store %s: no bucket: s3://BUCKET?region=…[&endpoint=http://HOST:PORT&use_path_style=true]", s)
		}
	default:
		return "", fmt.Errorf("snapshot store %s: scheme %q not supported: use file:///dir (or a path) or s3://bucket?region=…&endpoint=…", s, u.Scheme)
	}
	return u.String(), nil
}

// OpenStore opens the store at rawURL (see ParseURL). An S3 store takes its
// credentials the AWS SDK's usual way (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/…), and the query parameters of
// gocloud.dev's s3blob: region, endpoint, use_path_style, disable_https,
// profile, prefix, ….
func OpenStore(ctx context.Context, rawURL string) (*Store, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	shown := rawURL
	if !strings.Contains(shown, "://") {
		if abs, err := filepath.Abs(shown); err == nil {
			shown = abs
		}
	}
	shown = redact(shown)
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("snapshot store %s: %w", shown, err)
	}
	return &Store{url: u, shown: shown, bucket: b}, nil
}

// redact drops userinfo from a URL before it goes into a message.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// URL is the store as the caller named it (a bare path made absolute).
func (s *Store) URL() string { return s.shown }

// BucketURL is the URL the bucket was opened with (see ParseURL).
func (s *Store) BucketURL() string { return redact(s.url) }

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

func (s *Store) errf(format string, a ...any) error {
	return fmt.Errorf("snapshot store %s: %s", s.URL(), fmt.Sprintf(format, a...))
}

// Put writes a snapshot named info.Name: write is given the object's
// writer; then the size and sha256 of what it wrote, and the raft index and
// term read from it, are set in *info, and NAME.json is written. When write
// fails (or ctx ends) the object is abandoned: nothing is left in the store.
// write may set fields of *info (an end time): Put reads them after it
// returns.
func (s *Store) Put(ctx context.Context, info *Info, write func(w io.Writer) error) (err error) {
	if !validName(info.Name) {
		return s.errf("bad snapshot name %q: want %sTIME%s", info.Name, Prefix, Ext)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := s.bucket.NewWriter(wctx, info.Name, &blob.WriterOptions{ContentType: "application/gzip"})
	if err != nil {
		return s.errf("create %s: %v", info.Name, err)
	}
	mr := newMetaReader()
	sum := newSummer()
	werr := write(io.MultiWriter(bw, sum, mr))
	meta, merr := mr.finish()
	if werr != nil {
		cancel() // a cancelled writer discards what it was given
		bw.Close()
		return werr
	}
	if err := bw.Close(); err != nil {
		return s.errf("write %s: %v", info.Name, err)
	}
	info.Size, info.SHA256 = sum.n, sum.hex()
	if merr == nil {
		info.Index, info.Term = meta.Index, meta.Term
	}
	if err := s.putInfo(ctx, *info); err != nil {
		s.bucket.Delete(context.WithoutCancel(ctx), info.Name)
		return err
	}
	return nil
}

func (s *Store) putInfo(ctx context.Context, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := s.bucket.WriteAll(ctx, info.Name+MetaExt, append(b, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return s.errf("write %s%s: %v", info.Name, MetaExt, err)
	}
	return nil
}

// PutFile stores the snapshot read from r (e.g. a file saved earlier) under
// info.Name, keeping info's times and node; size, sha256, index and term are
// computed from the data.
func (s *Store) PutFile(ctx context.Context, info Info, r io.Reader) (Info, error) {
	err := s.Put(ctx, &info, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
	return info, err
}

// NewName returns a name for a snapshot whose request started at t that is
// not taken yet in the store (a millisecond later each time it is).
func (s *Store) NewName(ctx context.Context, t time.Time) (string, error) {
	for i := 0; i < 1000; i++ {
		name := NameFor(t.Add(time.Duration(i) * time.Millisecond))
		ok, err := s.bucket.Exists(ctx, name)
		if err != nil {
			return "", s.errf("%v", err)
		}
		if !ok {
			return name, nil
		}
	}
	return "", s.errf("no free snapshot name after %s", NameFor(t))
}

func validName(name string) bool {
	t, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return false
	}
	t, ok = strings.CutSuffix(t, Ext)
	if !ok {
		return false
	}
	_, err := time.Parse(NameLayout, t)
	return err == nil
}

// List returns the store's complete snapshots (those with their NAME.json),
// newest first.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	snaps, metas, err := s.scan(ctx)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, name := range snaps {
		if !metas[name] {
			continue
		}
		info, err := s.Stat(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// scan lists snapshot objects (newest first) and which have metadata.
func (s *Store) scan(ctx context.Context) (snaps []string, metas map[string]bool, err error) {
	metas = map[string]bool{}
	it := s.bucket.List(&blob.ListOptions{Prefix: Prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, s.errf("list: %v", err)
		}
		if obj.IsDir {
			continue
		}
		switch {
		case validName(obj.Key):
			snaps = append(snaps, obj.Key)
		case strings.HasSuffix(obj.Key, MetaExt) && validName(strings.TrimSuffix(obj.Key, MetaExt)):
			metas[strings.TrimSuffix(obj.Key, MetaExt)] = true
		}
	}
	// Names are the UTC start time at a fixed width: newest first is
	// reverse lexical order.
	slices.Sort(snaps)
	slices.Reverse(snaps)
	return snaps, metas, nil
}

// Stat reads a snapshot's metadata.
func (s *Store) Stat(ctx context.Context, name string) (Info, error) {
	var info Info
	b, err := s.bucket.ReadAll(ctx, name+MetaExt)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return info, s.errf("no snapshot %s (no %s%s)", name, name, MetaExt)
		}
		return info, s.errf("read %s%s: %v", name, MetaExt, err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, s.errf("%s%s: %v", name, MetaExt, err)
	}
	if info.Name != name {
		return info, s.errf("%s%s describes %q", name, MetaExt, info.Name)
	}
	return info, nil
}

// Latest returns the newest complete snapshot.
func (s *Store) Latest(ctx context.Context) (Info, error) {
	l, err := s.List(ctx)
	if err != nil {
		return Info{}, err
	}
	if len(l) == 0 {
		return Info{}, s.errf("no snapshot in it")
	}
	return l[0], nil
}

// Open opens a snapshot for reading. The reader checks the data against
// the size and sha256 in its metadata: its last Read returns an error
// (ErrChecksum) instead of io.EOF when they differ.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	info, err := s.Stat(ctx, name)
	if err != nil {
		return nil, info, err
	}
	r, err := s.bucket.NewReader(ctx, name, nil)
	if err != nil {
		return nil, info, s.errf("open %s: %v", name, err)
	}
	return &checkedReader{r: r, sum: newSummer(), info: info, store: s.URL()}, info, nil
}

// ErrChecksum is returned (wrapped) by a snapshot whose data does not match
// its recorded size or sha256.
var ErrChecksum = errors.New("snapshot does not match its recorded size and sha256")

type checkedReader struct {
	r     io.ReadCloser
	sum   *summer
	info  Info
	store string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.sum.Write(p[:n])
	if err == io.EOF {
		if c.sum.n != c.info.Size || c.sum.hex() != c.info.SHA256 {
			return n, fmt.Errorf("snapshot store %s: %s: %w: read %d bytes sha256 %s, recorded %d bytes sha256 %s",
				c.store, c.info.Name, ErrChecksum, c.sum.n, c.sum.hex(), c.info.Size, c.info.SHA256)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.r.Close() }

// Delete removes a snapshot and its metadata (metadata first, so that a
// half-done delete leaves no listed snapshot without data).
func (s *Store) Delete(ctx context.Context, name string) error {
	if !validName(name) {
		return s.errf("bad snapshot name %q", name)
	}
	var errs []error
	for _, key := range []string{name + MetaExt, name} {
		if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			errs = append(errs, s.errf("delete %s: %v", key, err))
		}
	}
	return errors.Join(errs...)
}

// Retain keeps the n newest complete snapshots and deletes the others,
// returning the names it deleted (oldest last). Snapshot objects without
// metadata (left by a writer that died between the two) are deleted too
// when older than the oldest one kept. n < 1 keeps everything.
func (s *Store) Retain(ctx context.Context, n int) ([]string, error) {
	if n < 1 {
		return nil, nil
	}
	snaps, metas, err := s.scan(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	kept := 0
	for _, name := range snaps {
		if metas[name] && kept < n {
			kept++
			continue
		}
		if !metas[name] && kept < n {
			continue // newer than a kept one: may be being written
		}
		if err := s.Delete(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, name)
	}
	return deleted, errors.Join(errs...)
}

// summer counts and hashes what goes through it.
type summer struct {
	h hash.Hash
	n int64
}

func newSummer() *summer { return &summer{h: sha256.New()} }

func (s *summer) Write(p []byte) (int, error) {
	s.h.Write(p)
	s.n += int64(len(p))
	return len(p), nil
}

func (s *summer) hex() string { return hex.EncodeToString(s.h.Sum(nil)) }

// SHA256File hashes a file's content the way Info.SHA256 is written.
func SHA256File(r io.Reader) (string, int64, error) {
	s := newSummer()
	_, err := io.Copy(s, r)
	return s.hex(), s.n, err
}
