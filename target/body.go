package target

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/rmt-project/rmt/aof"
	"github.com/rmt-project/rmt/rdb"
)

// A body is the part of a request that is not held in memory: the connection's writer goroutine
// copies it, when it writes the request, from where it lies (the spool, an AOF file, the
// snapshot file), in pieces through its own buffer. A body can be written again: a request
// resent after a redirect or a refusal carries the same body.
type body interface {
	// size is the number of bytes writeTo writes.
	size() int64
	// writeTo writes the body to w, reading its input through buf.
	writeTo(w io.Writer, buf []byte) error
}

// sectionsBody is a run of sections of a stream's input, copied as they are: a big command whole
// (Command.Wire), or the arguments of one chunk of it.
type sectionsBody struct {
	ra   io.ReaderAt
	secs []aof.Section
	n    int64
}

func newSectionsBody(ra io.ReaderAt, secs ...aof.Section) *sectionsBody {
	b := &sectionsBody{ra: ra, secs: secs}
	for _, s := range secs {
		b.n += s.Len
	}
	return b
}

func (b *sectionsBody) size() int64 { return b.n }

func (b *sectionsBody) writeTo(w io.Writer, buf []byte) error {
	for _, s := range b.secs {
		if _, err := aof.CopySection(w, b.ra, s, buf); err != nil {
			return err
		}
	}
	return nil
}

// restoreBody is the DUMP payload of a value not held, then what follows it in the RESTORE: the
// type byte, the value's bytes copied from the snapshot, the RDB version and the CRC64 of all
// that, computed while copying; then tail (the payload's CRLF, REPLACE, ABSTTL). The value is
// read when the request is written, and again for a resend: it must be a section that can be
// read again (Rewrite sends a value read only once as commands, at once).
type restoreBody struct {
	typ     byte
	version uint16
	ra      io.ReaderAt // the value's bytes from offset 0
	n       int64       // the value's length
	tail    []byte
}

// newRestoreBody makes the body of a RESTORE of a value of n bytes, read from value: its section
// of the snapshot.
func newRestoreBody(typ byte, value io.ReaderAt, n int64, version int, tail []byte) *restoreBody {
	return &restoreBody{typ: typ, version: uint16(version), ra: value, n: n, tail: tail}
}

func (b *restoreBody) size() int64 { return 1 + b.n + 2 + 8 + int64(len(b.tail)) }

func (b *restoreBody) writeTo(w io.Writer, buf []byte) error {
	src := io.NewSectionReader(b.ra, 0, b.n)
	var head [1]byte
	head[0] = b.typ
	crc := rdb.CRC64(0, head[:])
	if _, err := w.Write(head[:]); err != nil {
		return err
	}
	var done int64
	for done < b.n {
		p := buf[:min(int64(len(buf)), b.n-done)]
		n, err := io.ReadFull(src, p)
		if n < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading the value at byte %d of %d: %w", done+int64(n), b.n, err)
		}
		crc = rdb.CRC64(crc, p)
		if _, err := w.Write(p); err != nil {
			return err
		}
		done += int64(n)
	}
	var trailer [10]byte
	binary.LittleEndian.PutUint16(trailer[:2], b.version)
	crc = rdb.CRC64(crc, trailer[:2])
	binary.LittleEndian.PutUint64(trailer[2:], crc)
	if _, err := w.Write(trailer[:]); err != nil {
		return err
	}
	_, err := w.Write(b.tail)
	return err
}
