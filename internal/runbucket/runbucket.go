// Package runbucket copies run directories to and from a gocloud.dev/blob
// bucket - the stores snapshots use (file:// or a bare path, s3:// for any
// S3-compatible server; snapshots.ParseURL's rules) - so that load shards
// on many machines can leave their run directories in one place and merge
// can read them from there.
//
// A run directory is stored as objects FOLDER/RELATIVE/PATH under the
// bucket URL (whose ?prefix= gocloud applies), FOLDER/meta.json last: a
// folder without meta.json is an upload that did not finish, and is not
// listed.
package runbucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/vaultstorm/vaultstorm/internal/rundir"
	"github.com/vaultstorm/vaultstorm/snapshots" // the URL rules, and the file and s3 drivers it registers
)

// Redact drops userinfo from a URL before it goes into a message.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func open(ctx context.Context, rawURL string) (*blob.Bucket, error) {
	u, err := snapshots.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", Redact(rawURL), err)
	}
	return b, nil
}

// IsURL reports whether s names a bucket rather than a local directory.
func IsURL(s string) bool { return strings.Contains(s, "://") }

// Upload copies every file of the run directory dir into the bucket at
// rawURL under folder/, meta.json last, and returns how many files it
// wrote. A folder that already holds a meta.json is refused: two shards
// must never overwrite each other's runs.
func Upload(ctx context.Context, rawURL, dir, folder string) (int, error) {
	if folder == "" || strings.ContainsAny(folder, "/\\") || folder == "." || folder == ".." {
		return 0, fmt.Errorf("upload: bad folder name %q", folder)
	}
	b, err := open(ctx, rawURL)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	where := Redact(rawURL) + " " + folder + "/"
	meta := folder + "/" + rundir.MetaFile
	switch ok, err := b.Exists(ctx, meta); {
	case err != nil:
		return 0, fmt.Errorf("upload to %s: %w", where, err)
	case ok:
		return 0, fmt.Errorf("upload to %s: it already holds a run (%s): give each run its own folder or bucket prefix", where, meta)
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil // temporary files of an atomic write start with "."
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", dir, err)
	}
	if !slices.Contains(files, rundir.MetaFile) {
		return 0, fmt.Errorf("upload %s: no %s: not a run directory", dir, rundir.MetaFile)
	}
	// meta.json last: its presence says the folder is complete.
	files = slices.DeleteFunc(files, func(f string) bool { return f == rundir.MetaFile })
	slices.Sort(files)
	files = append(files, rundir.MetaFile)
	for _, f := range files {
		if err := putFile(ctx, b, filepath.Join(dir, filepath.FromSlash(f)), folder+"/"+f); err != nil {
			return 0, fmt.Errorf("upload to %s: %w", where, err)
		}
	}
	return len(files), nil
}

func putFile(ctx context.Context, b *blob.Bucket, src, key string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(wctx, key, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if _, err := io.Copy(w, f); err != nil {
		cancel() // a cancelled writer discards what it was given
		w.Close()
		return fmt.Errorf("%s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// Download copies every complete run folder (one holding meta.json) found
// directly under the bucket URL into into/FOLDER and returns the local
// directories, in name order. No folder at all is an error naming the URL.
func Download(ctx context.Context, rawURL, into string) ([]string, error) {
	b, err := open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	shown := Redact(rawURL)
	var folders []string
	it := b.List(&blob.ListOptions{Delimiter: "/"})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", shown, err)
		}
		if !o.IsDir {
			continue
		}
		name := strings.TrimSuffix(o.Key, "/")
		switch ok, err := b.Exists(ctx, name+"/"+rundir.MetaFile); {
		case err != nil:
			return nil, fmt.Errorf("list %s: %w", shown, err)
		case ok:
			folders = append(folders, name)
		}
	}
	if len(folders) == 0 {
		return nil, fmt.Errorf("%s: no run folder (FOLDER/%s) in it", shown, rundir.MetaFile)
	}
	slices.Sort(folders)
	var dirs []string
	for _, name := range folders {
		local := filepath.Join(into, filepath.FromSlash(name))
		if err := getFolder(ctx, b, name, local); err != nil {
			return nil, fmt.Errorf("download %s %s/: %w", shown, name, err)
		}
		dirs = append(dirs, local)
	}
	return dirs, nil
}

func getFolder(ctx context.Context, b *blob.Bucket, folder, local string) error {
	it := b.List(&blob.ListOptions{Prefix: folder + "/"})
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(o.Key, folder+"/")
		// Object names come from the bucket: never let one escape the
		// local folder.
		if rel == "" || o.IsDir || !fs.ValidPath(rel) || path.Clean(rel) != rel {
			continue
		}
		dst := filepath.Join(local, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := getFile(ctx, b, o.Key, dst); err != nil {
			return err
		}
	}
}

func getFile(ctx context.Context, b *blob.Bucket, key, dst string) error {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return fmt.Errorf("%s vanished while being read", key)
		}
		return fmt.Errorf("%s: %w", key, err)
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", key, err)
	}
	return f.Close()
}
