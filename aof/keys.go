package aof

// Keys appends the key arguments of the command line args (args[0] is the command's name) to
// dst and returns it. It follows Redis 7.0's getKeysFromCommandWithSpecs: the key specs, and
// where they cannot tell (SORT ... STORE, MIGRATE ... KEYS) the command's own rules, so the
// result is what `COMMAND GETKEYS` answers. A command with subcommands resolves args[1]. A
// line whose argument count does not fit the arity, or whose key count is invalid, has no keys
// (Redis would refuse it). Keys of a nil spec are none.
func (c *CommandSpec) Keys(args [][]byte, dst [][]byte) [][]byte {
	if c == nil || len(args) == 0 {
		return dst
	}
	if c.Subcommands != nil {
		if len(args) < 2 {
			return dst
		}
		if c = c.Subcommand(args[1]); c == nil {
			return dst
		}
	}
	if !c.ArityOK(len(args)) {
		return dst
	}
	base := len(dst)
	hasKeySpec := false
	for i := range c.KeySpecs {
		hasKeySpec = hasKeySpec || c.KeySpecs[i].Flags&KeyNotKey == 0
	}
	if hasKeySpec {
		var ok bool
		if dst, ok = c.keysFromSpecs(args, dst); ok {
			return dst
		}
		dst = dst[:base]
	}
	switch c.Name {
	case "sort":
		return sortKeys(args, dst)
	case "sort_ro":
		return append(dst, args[1])
	case "migrate":
		return migrateKeys(args, dst)
	}
	return dst
}

// keysFromSpecs is Redis's getKeysUsingKeySpecs. It reports false where Redis gives up on the
// specs (an unknown or incomplete spec, or a key count out of range).
func (c *CommandSpec) keysFromSpecs(args [][]byte, dst [][]byte) ([][]byte, bool) {
	argc := len(args)
	for i := range c.KeySpecs {
		ks := &c.KeySpecs[i]
		if ks.Flags&KeyNotKey != 0 {
			continue
		}
		first := 0
		switch ks.Begin {
		case BeginIndex:
			first = ks.Index
		case BeginKeyword:
			start, end := ks.StartFrom, argc-1
			if ks.StartFrom <= 0 {
				start, end = argc+ks.StartFrom, 0
			}
			for j := start; j != end; {
				if j >= argc || j < 1 {
					break
				}
				if asciiEqualFold(args[j], ks.Keyword) {
					first = j + 1
					break
				}
				if start <= end {
					j++
				} else {
					j--
				}
			}
			if first == 0 {
				continue // keyword not found: this spec has no keys here
			}
		default:
			return dst, false
		}

		var last, step int
		switch ks.Find {
		case FindRange:
			step = ks.KeyStep
			switch {
			case ks.LastKey >= 0:
				last = first + ks.LastKey
			case ks.Limit == 0:
				last = argc + ks.LastKey
			default:
				last = first + ((argc-first)/ks.Limit + ks.LastKey)
			}
		case FindKeynum:
			step = ks.KeyStep
			if ks.KeyNumIdx >= argc-first {
				return dst, false
			}
			n, ok := parseInt(args[first+ks.KeyNumIdx])
			if !ok || n < 0 || n > int64(argc) {
				return dst, false
			}
			// Redis 7.0 computes first+n-1 whatever the step; every keynum spec it has steps
			// by 1. MSETEX (8.4) steps by 2 over key-value pairs and n counts the keys.
			first += ks.FirstKey
			last = first + (int(n)-1)*max(ks.KeyStep, 1)
		default:
			return dst, false
		}
		if last >= argc || last < first || first >= argc || step <= 0 {
			return dst, false
		}
		for j := first; j <= last; j += step {
			dst = append(dst, args[j])
		}
		if ks.Flags&KeyIncomplete != 0 {
			return dst, false
		}
	}
	return dst, true
}

// sortKeys is Redis's sortGetKeys: the sorted key, and the key after the last STORE, skipping
// the arguments of LIMIT, GET and BY.
func sortKeys(args [][]byte, dst [][]byte) [][]byte {
	dst = append(dst, args[1])
	store := -1
	for i := 2; i < len(args); i++ {
		switch {
		case asciiEqualFold(args[i], "LIMIT"):
			i += 2
		case asciiEqualFold(args[i], "STORE") && i+1 < len(args):
			store = i + 1 // not skipped, as in Redis
		case asciiEqualFold(args[i], "GET"), asciiEqualFold(args[i], "BY"):
			i++
		}
	}
	if store > 0 {
		dst = append(dst, args[store])
	}
	return dst
}

// migrateKeys is Redis's migrateGetKeys: the key at 3, or with an empty key the keys after
// KEYS, skipping the arguments of AUTH and AUTH2.
func migrateKeys(args [][]byte, dst [][]byte) [][]byte {
	first, num := 3, 1
	for i := 6; i < len(args); i++ {
		a := args[i]
		if asciiEqualFold(a, "KEYS") {
			if len(args[3]) > 0 {
				return dst
			}
			first, num = i+1, len(args)-i-1
			break
		}
		switch {
		case asciiEqualFold(a, "AUTH"):
			i++
		case asciiEqualFold(a, "AUTH2"):
			i += 2
		}
	}
	return append(dst, args[first:first+num]...)
}

// asciiEqualFold compares b with the ASCII word w, ignoring case.
func asciiEqualFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if toLower(b[i]) != toLower(w[i]) {
			return false
		}
	}
	return true
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
