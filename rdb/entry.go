package rdb

// Kind tells what an Entry holds.
type Kind uint8

const (
	KindKey       Kind = iota + 1 // a key and its value
	KindFunction                  // a function library: Value holds its source code (FUNCTION LOAD)
	KindAux                       // an auxiliary field: Key is its name, Value its value
	KindModuleAux                 // module auxiliary data, raw, in Value
)

// Entry is one item of an RDB file. The decoder owns the slices: they stay valid until the next
// call to Next, as with bufio.Scanner.Bytes. Copy what you keep.
type Entry struct {
	Kind     Kind
	DB       int    // database number in force (SELECTDB)
	Key      []byte // the key (or the aux field's name)
	Type     byte   // RDB value type (TypeString, TypeListQuicklist2, ...)
	ExpireMs int64  // absolute expiry in Unix milliseconds; 0 means none
	Idle     int64  // LRU idle time in seconds; -1 when absent
	Freq     int    // LFU frequency; -1 when absent

	// Value holds the value's bytes exactly as the file has them, after the type byte. It is nil
	// when the value is larger than the decoder's raw limit; ValueOffset and ValueLen still say
	// where it lies in the file, so it can be read again element by element.
	Value       []byte
	ValueOffset int64
	ValueLen    int64
}
