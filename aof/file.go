package aof

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/rmt-project/rmt/rdb"
)

// File reads an AOF from disk: a plain appendonly.aof, one that starts with an RDB preamble
// (aof-use-rdb-preamble), or a Redis 7 multi-part AOF directory (its manifest's base file, then
// its incremental files in order). The RDB part, if any, comes first through NextEntry, then
// every command through Next:
//
//	f, err := aof.OpenFile("appendonlydir")
//	defer f.Close()
//	for f.NextEntry(&e) == nil { ... }  // io.EOF at once when there is no RDB part
//	for f.Next(&c) == nil { ... }       // io.EOF after the last command of the last part
//
// A command cut short at the end of a part returns an *Error wrapping io.ErrUnexpectedEOF with
// the file and the offset where that command starts; every command before it has been returned.
type File struct {
	parts []Part
	idx   int        // the part being read
	f     *os.File   // its file
	done  []*os.File // the parts read before it, open until Close (big commands' Input)
	r     *Reader    // commands of the part, once its RDB (if any) is done

	dec     *rdb.Decoder // RDB of the first part, nil when it has none
	rdbFile *os.File
	rdbDone bool
	rdbEnd  int64 // where the RDB ended in parts[0]

	maxArgs int
	maxBulk int64
	hold    int64
	err     error // sticky error of Next
}

// OpenFile opens the AOF at path: a file, a multi-part AOF directory (holding one *.manifest),
// or a manifest file.
func OpenFile(path string) (*File, error) {
	parts, err := findParts(path)
	if err != nil {
		return nil, err
	}
	f := &File{parts: parts}
	if len(parts) == 0 {
		return f, nil
	}
	if err := f.openPart(); err != nil {
		return nil, err
	}
	return f, nil
}

func findParts(path string) ([]Part, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("aof: %w", err)
	}
	manifest := ""
	switch {
	case st.IsDir():
		m, err := filepath.Glob(filepath.Join(path, "*.manifest"))
		if err != nil {
			return nil, fmt.Errorf("aof: %s: %w", path, err)
		}
		if len(m) != 1 {
			return nil, fmt.Errorf("aof: %s: want one *.manifest file, found %d", path, len(m))
		}
		manifest = m[0]
	case strings.HasSuffix(path, ".manifest"):
		manifest = path
	default:
		return []Part{{Path: path, Type: partSingle}}, nil
	}
	mf, err := os.Open(manifest)
	if err != nil {
		return nil, fmt.Errorf("aof: %w", err)
	}
	defer mf.Close()
	parts, err := parseManifest(manifest, mf)
	if err != nil {
		return nil, err
	}
	for i := range parts {
		parts[i].Path = filepath.Join(filepath.Dir(manifest), parts[i].Path)
	}
	return parts, nil
}

// Parts returns the files of the AOF, in load order.
func (f *File) Parts() []Part { return append([]Part(nil), f.parts...) }

// SetLimits sets the command reader's limits (see Reader.SetLimits).
func (f *File) SetLimits(maxArgs int, maxBulk int64) {
	f.maxArgs, f.maxBulk = maxArgs, maxBulk
	if f.r != nil {
		f.r.SetLimits(maxArgs, maxBulk)
	}
}

// SetHold turns the command reader's big-command mode on (see Reader.SetHold): a command over
// hold bytes comes out big, its Rest read from ReaderAt. A File in that mode should also take
// the stream limits (SetLimits(StreamMaxArgs, StreamMaxBulk)) to pass whatever Redis wrote.
func (f *File) SetHold(hold int64) {
	f.hold = hold
	if f.r != nil {
		f.r.SetHold(hold)
	}
}

// ReaderAt returns the part the last command came from, for the sections of a big command
// (Command.Start and Command.Rest are offsets in that file); every command's Input is its part.
// A part stays open until Close, so a command's Input stays valid after Next moved on; nil
// before the first command.
func (f *File) ReaderAt() io.ReaderAt {
	if f.f == nil {
		return nil
	}
	return f.f
}

// Decoder returns the decoder of the RDB part, to set its limits or read its version, or nil
// when the AOF has no RDB part. Read its entries with NextEntry.
func (f *File) Decoder() *rdb.Decoder { return f.dec }

// RDBFile returns the file holding the RDB part (for values the decoder did not hold, at
// Entry.ValueOffset), or nil.
func (f *File) RDBFile() io.ReaderAt {
	if f.rdbFile == nil {
		return nil
	}
	return f.rdbFile
}

// openPart opens parts[idx]; a part that starts with an RDB gets a decoder (only the first
// part, the base, may).
func (f *File) openPart() error {
	p := f.parts[f.idx]
	file, err := os.Open(p.Path)
	if err != nil {
		return fmt.Errorf("aof: %w", err)
	}
	f.f = file
	var sig [5]byte
	n, err := io.ReadFull(file, sig[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("aof: %s: %w", p.Path, err)
	}
	if s := string(sig[:n]); s == "REDIS" || s == "VALKE" {
		if f.idx != 0 {
			return fmt.Errorf("aof: %s: an RDB in an incremental file", p.Path)
		}
		f.dec = rdb.NewDecoder(io.NewSectionReader(file, 0, math.MaxInt64))
		f.rdbFile = file
		return nil
	}
	return f.startCommands(0)
}

// startCommands starts reading commands of the current part at offset off.
func (f *File) startCommands(off int64) error {
	src := io.NewSectionReader(f.f, off, math.MaxInt64-off)
	if f.r == nil {
		f.r = NewReader(src)
		f.r.SetLimits(f.maxArgs, f.maxBulk)
		f.r.SetHold(f.hold)
		f.r.annotations = true
	} else {
		f.r.Reset(src)
	}
	f.r.file, f.r.base = f.parts[f.idx].Path, off
	f.r.SetInput(f.f)
	return nil
}

// NextEntry reads the next entry of the RDB part. It returns io.EOF at the end of the RDB (its
// checksum verified) and at once when there is none.
func (f *File) NextEntry(e *rdb.Entry) error {
	if f.dec == nil || f.rdbDone {
		return io.EOF
	}
	err := f.dec.Next(e)
	if err == io.EOF {
		f.rdbDone = true
		f.rdbEnd = f.dec.Offset()
		if err := f.startCommands(f.rdbEnd); err != nil {
			return err
		}
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("aof: %s: %w", f.parts[0].Path, err)
	}
	return nil
}

// Next reads the next command, from one part to the next. It returns io.EOF after the last. It
// is an error to call it before NextEntry has returned io.EOF when there is an RDB part.
func (f *File) Next(c *Command) error {
	if f.err != nil {
		return f.err
	}
	err := f.next(c)
	if err != nil && err != io.EOF {
		f.err = err
	}
	return err
}

func (f *File) next(c *Command) error {
	for {
		if f.idx >= len(f.parts) {
			return io.EOF
		}
		if f.dec != nil && !f.rdbDone {
			return fmt.Errorf("aof: %s: commands read before the end of the RDB preamble", f.parts[0].Path)
		}
		err := f.r.Next(c)
		if err != io.EOF {
			return err
		}
		if f.f != f.rdbFile {
			f.done = append(f.done, f.f)
		}
		f.f = nil
		f.idx++
		if f.idx < len(f.parts) {
			if err := f.openPart(); err != nil {
				return err
			}
		}
	}
}

// Position returns the part being read and the offset in it after the last command returned.
func (f *File) Position() (path string, offset int64) {
	if f.r == nil {
		if len(f.parts) == 0 {
			return "", 0
		}
		return f.parts[0].Path, 0
	}
	return f.r.file, f.r.base + f.r.off
}

// Close closes the open files.
func (f *File) Close() error {
	var err error
	if f.f != nil {
		err = f.f.Close()
	}
	if f.rdbFile != nil && f.rdbFile != f.f {
		err = errors.Join(err, f.rdbFile.Close())
	}
	for _, d := range f.done {
		err = errors.Join(err, d.Close())
	}
	f.f, f.rdbFile, f.done = nil, nil, nil
	return err
}
