package aof

// Command is one command of a replication stream or AOF file. Args slice into Raw, the exact bytes
// read off the wire; N is len(Raw), so offsets are sums of N and cannot drift from a second count.
// The reader owns the slices: they stay valid until its next call to Next. Copy what you keep.
type Command struct {
	Args [][]byte
	Raw  []byte
	N    int64
}
