package target

import "github.com/rmt-project/rmt/rdb"

// Limits of one MSET of RDB strings: enough keys that the per-command cost on the target
// vanishes. The bytes are above what a Conn keeps per ring slot (16 KiB with the default
// window): smaller batches would stay allocated in every slot of every RDB connection (tens of
// MB), these go back to the collector after their reply.
const (
	strBatchKeys  = 512
	strBatchBytes = 32 << 10
	// Larger strings go as RESTORE, as the value bytes are: one command each costs little
	// beside their size, and the batch's buffers stay small for the writer's whole life.
	strBatchValueMax = 4 << 10
)

// stringBatch gathers RDB strings of one db as MSET arguments.
type stringBatch struct {
	args    []byte // key, value, key, value ... as RESP bulks
	n       int
	db      int
	first   []byte // the first key, for logs
	scratch []byte
}

// add appends e's key and decoded value, unless the value does not decode: then it returns false
// and the caller sends e as RESTORE, for the target to judge. The caller flushes a batch of
// another db first.
func (b *stringBatch) add(e *rdb.Entry) bool {
	if len(e.Value) > strBatchValueMax || len(e.Key) > strBatchValueMax {
		return false
	}
	v, err := rdb.AppendString(b.scratch[:0], e.Value)
	if err != nil || len(v) > strBatchValueMax {
		return false // not decodable, or LZF expanded it past the limit: RESTORE
	}
	if cap(v) <= strBatchKeep {
		b.scratch = v
	}
	if b.n == 0 {
		b.db = e.DB
		b.first = append(b.first[:0], e.Key...)
	}
	b.args = appendBulk(b.args, e.Key)
	b.args = appendBulk(b.args, v)
	b.n++
	return true
}

func (b *stringBatch) full() bool { return b.n >= strBatchKeys || len(b.args) >= strBatchBytes }

func (b *stringBatch) reset() {
	b.args = b.args[:0]
	b.n = 0
}

// Batches hold at most strBatchBytes plus one key and value of strBatchValueMax each, so args
// never grows past this, and the scratch of a value LZF expanded is kept only up to it.
const strBatchKeep = strBatchBytes + 2*strBatchValueMax + 64
