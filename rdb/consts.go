package rdb

// Value types, as rdb.h names them. A value's type byte precedes its key in the file and starts
// its DUMP payload.
const (
	TypeString              byte = 0  // RDB_TYPE_STRING
	TypeList                byte = 1  // RDB_TYPE_LIST
	TypeSet                 byte = 2  // RDB_TYPE_SET
	TypeZSet                byte = 3  // RDB_TYPE_ZSET
	TypeHash                byte = 4  // RDB_TYPE_HASH
	TypeZSet2               byte = 5  // RDB_TYPE_ZSET_2 (binary doubles)
	TypeModule              byte = 6  // RDB_TYPE_MODULE_PRE_GA (4.0 release candidates)
	TypeModule2             byte = 7  // RDB_TYPE_MODULE_2
	TypeHashZipmap          byte = 9  // RDB_TYPE_HASH_ZIPMAP
	TypeListZiplist         byte = 10 // RDB_TYPE_LIST_ZIPLIST
	TypeSetIntset           byte = 11 // RDB_TYPE_SET_INTSET
	TypeZSetZiplist         byte = 12 // RDB_TYPE_ZSET_ZIPLIST
	TypeHashZiplist         byte = 13 // RDB_TYPE_HASH_ZIPLIST
	TypeListQuicklist       byte = 14 // RDB_TYPE_LIST_QUICKLIST
	TypeStreamListpacks     byte = 15 // RDB_TYPE_STREAM_LISTPACKS
	TypeHashListpack        byte = 16 // RDB_TYPE_HASH_LISTPACK
	TypeZSetListpack        byte = 17 // RDB_TYPE_ZSET_LISTPACK
	TypeListQuicklist2      byte = 18 // RDB_TYPE_LIST_QUICKLIST_2
	TypeStreamListpacks2    byte = 19 // RDB_TYPE_STREAM_LISTPACKS_2
	TypeSetListpack         byte = 20 // RDB_TYPE_SET_LISTPACK
	TypeStreamListpacks3    byte = 21 // RDB_TYPE_STREAM_LISTPACKS_3
	TypeHashMetadataPreGA   byte = 22 // RDB_TYPE_HASH_METADATA_PRE_GA (7.4 RC: absolute field TTLs)
	TypeHashListpackExPreGA byte = 23 // RDB_TYPE_HASH_LISTPACK_EX_PRE_GA (7.4 RC)
	TypeHashMetadata        byte = 24 // RDB_TYPE_HASH_METADATA (min TTL first, TTLs relative to it)
	TypeHashListpackEx      byte = 25 // RDB_TYPE_HASH_LISTPACK_EX (min TTL first)
)

// Opcodes: bytes in the place of a value type that carry something other than a key.
const (
	opSlotInfo      byte = 244 // RDB_OPCODE_SLOT_INFO
	opFunction2     byte = 245 // RDB_OPCODE_FUNCTION2
	opFunctionPreGA byte = 246 // RDB_OPCODE_FUNCTION_PRE_GA
	opModuleAux     byte = 247 // RDB_OPCODE_MODULE_AUX
	opIdle          byte = 248 // RDB_OPCODE_IDLE
	opFreq          byte = 249 // RDB_OPCODE_FREQ
	opAux           byte = 250 // RDB_OPCODE_AUX
	opResizeDB      byte = 251 // RDB_OPCODE_RESIZEDB
	opExpireTimeMs  byte = 252 // RDB_OPCODE_EXPIRETIME_MS
	opExpireTime    byte = 253 // RDB_OPCODE_EXPIRETIME
	opSelectDB      byte = 254 // RDB_OPCODE_SELECTDB
	opEOF           byte = 255 // RDB_OPCODE_EOF
)

// Length encodings (the two top bits of a length's first byte) and special string encodings.
const (
	len6Bit  = 0    // RDB_6BITLEN
	len14Bit = 1    // RDB_14BITLEN
	len32Bit = 0x80 // RDB_32BITLEN
	len64Bit = 0x81 // RDB_64BITLEN
	lenEnc   = 3    // RDB_ENCVAL

	encInt8  = 0 // RDB_ENC_INT8
	encInt16 = 1 // RDB_ENC_INT16
	encInt32 = 2 // RDB_ENC_INT32
	encLZF   = 3 // RDB_ENC_LZF
)

// Module value opcodes (RDB_MODULE_OPCODE_*).
const (
	moduleOpEOF    = 0 // RDB_MODULE_OPCODE_EOF
	moduleOpSInt   = 1 // RDB_MODULE_OPCODE_SINT
	moduleOpUInt   = 2 // RDB_MODULE_OPCODE_UINT
	moduleOpFloat  = 3 // RDB_MODULE_OPCODE_FLOAT
	moduleOpDouble = 4 // RDB_MODULE_OPCODE_DOUBLE
	moduleOpString = 5 // RDB_MODULE_OPCODE_STRING
)

// Quicklist v2 node containers.
const (
	quicklistPlain  = 1 // QUICKLIST_NODE_CONTAINER_PLAIN
	quicklistPacked = 2 // QUICKLIST_NODE_CONTAINER_PACKED
)

// Stream listpack entry flags.
const (
	streamItemDeleted    = 1 // STREAM_ITEM_FLAG_DELETED
	streamItemSameFields = 2 // STREAM_ITEM_FLAG_SAMEFIELDS
)

// MaxVersion is the newest Redis RDB version this package reads; Valkey 9 writes ValkeyVersion.
const (
	MaxVersion    = 12
	ValkeyVersion = 80
)

// TypeName returns the Redis type a value type byte belongs to ("string", "list", "set",
// "zset", "hash", "stream", "module"), or "" for an unknown byte.
func TypeName(typ byte) string {
	switch typ {
	case TypeString:
		return "string"
	case TypeList, TypeListZiplist, TypeListQuicklist, TypeListQuicklist2:
		return "list"
	case TypeSet, TypeSetIntset, TypeSetListpack:
		return "set"
	case TypeZSet, TypeZSet2, TypeZSetZiplist, TypeZSetListpack:
		return "zset"
	case TypeHash, TypeHashZipmap, TypeHashZiplist, TypeHashListpack,
		TypeHashMetadataPreGA, TypeHashListpackExPreGA, TypeHashMetadata, TypeHashListpackEx:
		return "hash"
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return "stream"
	case TypeModule, TypeModule2:
		return "module"
	}
	return ""
}
