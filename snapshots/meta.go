package snapshots

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// RaftMeta is the part of a snapshot's meta.json the harness keeps.
//
// A Vault raft snapshot (GET sys/storage/raft/snapshot) is what
// github.com/hashicorp/raft-snapshot writes (archive.go, snapshot.go;
// Vault's physical/raft RaftBackend.Snapshot calls its Write): a gzip
// stream of a tar archive holding meta.json (raft.SnapshotMeta as JSON:
// Version, ID, Index, Term, Configuration, ConfigurationIndex, Size), then
// state.bin (the FSM data), SHA256SUMS (of those two) and, when Vault has a
// seal, SHA256SUMS.sealed (the same list encrypted by the seal; a restore
// without -force checks it decrypts, i.e. that the snapshot comes from a
// cluster with the same unseal/auto-unseal key).
type RaftMeta struct {
	ID    string
	Index uint64
	Term  uint64
	Size  int64
}

// metaPrefix is how much of the start of a snapshot is kept to find its
// meta.json, the archive's first member (a few hundred bytes; a few KiB
// with many servers in the raft configuration).
const metaPrefix = 1 << 20

// metaReader keeps the first metaPrefix bytes written to it.
type metaReader struct{ buf bytes.Buffer }

func newMetaReader() *metaReader { return &metaReader{} }

func (m *metaReader) Write(p []byte) (int, error) {
	if room := metaPrefix - m.buf.Len(); room > 0 {
		m.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (m *metaReader) finish() (RaftMeta, error) { return ParseMeta(bytes.NewReader(m.buf.Bytes())) }

// ParseMeta reads the raft metadata from the start of a snapshot (r may end
// anywhere after meta.json).
func ParseMeta(r io.Reader) (RaftMeta, error) {
	var m RaftMeta
	zr, err := gzip.NewReader(r)
	if err != nil {
		return m, fmt.Errorf("not a raft snapshot (gzip): %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return m, errors.New("not a raft snapshot: no meta.json in the archive")
			}
			return m, fmt.Errorf("not a raft snapshot (tar): %w", err)
		}
		if h.Name != "meta.json" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, metaPrefix))
		if err != nil {
			return m, fmt.Errorf("raft snapshot meta.json: %w", err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return m, fmt.Errorf("raft snapshot meta.json: %w", err)
		}
		return m, nil
	}
}
