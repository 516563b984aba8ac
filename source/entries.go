package source

import (
	"io"
	"os"

	"github.com/rmt-project/rmt/rdb"
)

// snapshotFile is what a snapshot is read from: in order by the decoder, and again by sections
// for values too big to hold.
type snapshotFile interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

// rdbEntries are the entries of an RDB file (or of one still arriving).
type rdbEntries struct {
	f    snapshotFile
	dec  *rdb.Decoder
	size int64 // -1 while unknown
}

// newRDBEntries decodes f; size is its length, -1 when unknown (a diskless transfer).
func newRDBEntries(f snapshotFile, size, maxRaw int64) *rdbEntries {
	dec := rdb.NewDecoder(f)
	dec.SetMaxRaw(maxRaw)
	return &rdbEntries{f: f, dec: dec, size: size}
}

// openRDBFile opens an RDB file on disk as Entries.
func openRDBFile(path string, maxRaw int64) (Entries, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	return newRDBEntries(f, size, maxRaw), nil
}

func (r *rdbEntries) Next(e *rdb.Entry) error { return r.dec.Next(e) }

func (r *rdbEntries) Value(e *rdb.Entry) io.Reader {
	return io.NewSectionReader(r.f, e.ValueOffset, e.ValueLen)
}

func (r *rdbEntries) Version() int { return r.dec.Version() }

func (r *rdbEntries) Progress() (int64, int64) { return r.dec.Offset(), r.size }

func (r *rdbEntries) Close() error { return r.f.Close() }
