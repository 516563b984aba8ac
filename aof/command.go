package aof

import "io"

// Command is one command of a replication stream or AOF file. Args slice into Raw, the exact bytes
// read off the wire; N is len(Raw), so offsets are sums of N and cannot drift from a second count.
// The reader owns the slices: they stay valid until its next call to Next. Copy what you keep.
//
// A reader in big-command mode (Reader.SetHold) returns a command larger than its hold limit
// without holding it: Raw is nil, N is still its size on the wire, Args holds only its leading
// arguments (see Reader.SetHold), and Rest is where the others are in the reader's input, to be
// read later in bounded pieces from an io.ReaderAt over that input (an ArgReader does it; see
// Command.Arguments and WriteCommand). Big reports which kind a command is. Input, when the
// reader was given one (Reader.SetInput), is that io.ReaderAt: a command copied by value can be
// written out or re-chunked later, in another goroutine, after the reader has moved on.
type Command struct {
	Args [][]byte
	Raw  []byte
	N    int64

	// Start is the offset of the command's first byte in the reader's input (counted from the
	// reader's base, see Reader.SetBase); its bytes are Start .. Start+N-1.
	Start int64
	// NArgs is the number of arguments of the command: len(Args) unless it is big.
	NArgs int64
	// Rest holds arguments len(Args) .. NArgs-1 of a big command, exactly as on the wire
	// (`$<len>\r\n<bytes>\r\n` each); it is empty for any other command.
	Rest Section
	// Input is the reader's input as an io.ReaderAt taking the offsets of Start and Rest (see
	// Reader.SetInput), or nil. It stays valid for as long as that input is open (a SpoolReader
	// until its Close, a File until its Close), not only until the next call to Next.
	Input io.ReaderAt
}

// Section is a range of a reader's input: Len bytes from offset Off.
type Section struct {
	Off int64
	Len int64
}

// End returns the offset after the section's last byte.
func (s Section) End() int64 { return s.Off + s.Len }

// Big reports whether c is a big command: one a reader in big-command mode did not hold whole,
// whose arguments after Args are in Rest.
func (c *Command) Big() bool { return c.Rest.Len > 0 }

// Wire returns the section of the reader's input holding the whole command.
func (c *Command) Wire() Section { return Section{Off: c.Start, Len: c.N} }
