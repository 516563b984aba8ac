// Package rdb reads and writes Redis RDB files (versions 1 to 12, and Valkey's 80): a streaming
// pull decoder that frames each entry without decoding its value, value parsers for the
// command-rewrite path, the DUMP/RESTORE payload, an encoder, LZF and CRC64.
//
// Frame a file entry by entry, keeping raw values for RESTORE:
//
//	d := rdb.NewDecoder(f)
//	var e rdb.Entry
//	for {
//		err := d.Next(&e)
//		if err == io.EOF {
//			break // EOF opcode seen, checksum verified
//		}
//		if err != nil {
//			return err // rdb: <what> at offset N (key "..."): ...
//		}
//		if e.Kind == rdb.KindKey && e.Value != nil {
//			payload := rdb.DumpPayload(buf[:0], e.Type, e.Value, d.Version())
//			// RESTORE e.Key e.ExpireMs payload REPLACE ABSTTL
//		}
//	}
//
// A value larger than the decoder's raw limit (SetMaxRaw, 64 MiB by default) comes with a nil
// Value and its place in the file (ValueOffset, ValueLen): read it again element by element
// with NewValueReader over that section, so memory never grows with the size of a key.
// ParseValue decodes a held value whole. Encoder writes files (plain encodings, or raw values
// from a decoder with WriteRawEntry); AppendValue with DumpPayload builds a RESTORE payload
// from a Value.
package rdb
