// Package rdb reads and writes Redis RDB files (versions 1 to 12, and Valkey's 80): a streaming
// pull decoder that frames each entry without decoding it, value parsers for the command-rewrite
// path, the DUMP/RESTORE payload, LZF and CRC64.
//
// Frame a file, entry by entry, keeping raw values for RESTORE:
//
//	d := rdb.NewDecoder(f)
//	var e rdb.Entry
//	for {
//		err := d.Next(&e)
//		if err == io.EOF {
//			break // EOF opcode seen, checksum verified
//		}
//		if err != nil {
//			return err // "rdb: <what> at offset N (key "..."): ..."
//		}
//		if e.Kind == rdb.KindKey && e.Value != nil {
//			payload := rdb.DumpPayload(buf[:0], e.Type, e.Value, d.Version())
//			// RESTORE e.Key <ttl> payload REPLACE ABSTTL
//		}
//	}
//
// Values above the decoder's raw limit (SetMaxRaw) come with a nil Value and their place in the
// file (ValueOffset, ValueLen), to be read again element by element with NewValueReader.
// ParseValue decodes a held value whole.
package rdb
