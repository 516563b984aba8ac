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

// KeyIndexes appends to dst the positions of the key arguments of a command of nargs arguments
// of which only the first len(head) are at hand (head[0] its name): a big command (Command.Big),
// whose Args are its leading arguments only. The positions are those Keys would give for the
// whole line. It reports false when they depend on arguments not in head (a keyword searched, a
// key count, the rules of SORT and MIGRATE); a line that does not fit the arity has no keys.
func (c *CommandSpec) KeyIndexes(head [][]byte, nargs int, dst []int) ([]int, bool) {
	if c == nil || len(head) == 0 || nargs < len(head) {
		return dst, true
	}
	if c.Subcommands != nil {
		if len(head) < 2 {
			return dst, nargs < 2
		}
		if c = c.Subcommand(head[1]); c == nil {
			return dst, true
		}
	}
	if !c.ArityOK(nargs) {
		return dst, true
	}
	base := len(dst)
	for i := range c.KeySpecs {
		ks := &c.KeySpecs[i]
		if ks.Flags&KeyNotKey != 0 {
			continue
		}
		if ks.Begin == BeginIndex && ks.Find == FindKeynum && ks.Flags&KeyIncomplete == 0 &&
			ks.Index+ks.KeyNumIdx < len(head) {
			// The key count is at hand (EVAL, ZUNIONSTORE ...): the positions follow from it.
			first := ks.Index
			n, ok := parseInt(head[first+ks.KeyNumIdx])
			if ks.KeyNumIdx >= nargs-first || !ok || n < 0 || n > int64(nargs) {
				return dst[:base], true
			}
			first += ks.FirstKey
			last := first + (int(n)-1)*max(ks.KeyStep, 1)
			if last >= nargs || last < first || first >= nargs {
				return dst[:base], true
			}
			for j := first; j <= last; j += max(ks.KeyStep, 1) {
				dst = append(dst, j)
			}
			continue
		}
		if ks.Begin != BeginIndex || ks.Find != FindRange || ks.Flags&KeyIncomplete != 0 {
			if nargs > len(head) {
				return dst[:base], false
			}
			// Every argument is at hand: Keys knows, positions are found by identity.
			return keyIndexesOf(c, head, dst[:base])
		}
		first, step := ks.Index, ks.KeyStep
		var last int
		switch {
		case ks.LastKey >= 0:
			last = first + ks.LastKey
		case ks.Limit == 0:
			last = nargs + ks.LastKey
		default:
			last = first + ((nargs-first)/ks.Limit + ks.LastKey)
		}
		if last >= nargs || last < first || first >= nargs || step <= 0 {
			return dst[:base], true // as Keys: Redis gives up on the specs, and the line has no keys
		}
		for j := first; j <= last; j += step {
			dst = append(dst, j)
		}
	}
	if len(dst) == base && len(c.KeySpecs) == 0 && (c.Name == "sort" || c.Name == "sort_ro" || c.Name == "migrate") {
		if nargs > len(head) {
			return dst, false
		}
		return keyIndexesOf(c, head, dst)
	}
	return dst, true
}

// keyIndexesOf finds the positions of Keys's answer for a whole line, by the identity of the
// argument slices.
func keyIndexesOf(c *CommandSpec, args [][]byte, dst []int) ([]int, bool) {
	var buf [8][]byte
	keys := c.Keys(args, buf[:0])
	j := 0
	for _, k := range keys {
		for ; j < len(args); j++ {
			if len(k) == len(args[j]) && (len(k) == 0 || &k[0] == &args[j][0]) {
				dst = append(dst, j)
				j++
				break
			}
		}
	}
	return dst, len(dst) == len(keys)
}
