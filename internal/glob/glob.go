// Package glob matches keys against Redis glob patterns exactly as Redis's KEYS, SCAN MATCH and
// PSUBSCRIBE do (its stringmatchlen): byte-based, `*`, `?`, `[...]` with `^` and ranges, `\`
// escapes, and lenient on malformed patterns (`a[` matches nothing, `a[b` matches "ab").
//
//	if glob.Match([]byte("user:*"), key) { ... }
//
// path.Match, gobwas/glob and tidwall/match each differ from Redis somewhere; see NOTES.md.
package glob

// maxNesting bounds the recursion of `*`, as Redis does, so a pattern of many stars cannot take
// exponential time; beyond it nothing matches.
const maxNesting = 1000

// Match reports whether s matches pattern under Redis's rules.
func Match(pattern, s []byte) bool {
	skipLonger := false
	return match(pattern, s, &skipLonger, 0)
}

// at reads b[i], or 0 past the end: Redis's strings are NUL-terminated and its matcher reads the
// terminator in a few malformed cases; this keeps the same outcome without reading out of bounds.
func at(b []byte, i int) byte {
	if i >= 0 && i < len(b) {
		return b[i]
	}
	return 0
}

func match(p, s []byte, skipLonger *bool, nesting int) bool {
	if nesting > maxNesting {
		return false
	}
	pi, plen := 0, len(p)
	si, slen := 0, len(s)
	for plen > 0 {
		switch p[pi] {
		case '*':
			for at(p, pi+1) == '*' && plen > 1 {
				pi++
				plen--
			}
			if plen == 1 {
				return true
			}
			for slen > 0 {
				if match(p[pi+1:pi+plen], s[si:si+slen], skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				si++
				slen--
			}
			// No position of the rest matched here; a longer string cannot match either.
			*skipLonger = true
			return false
		case '?':
			if slen == 0 {
				return false
			}
			si++
			slen--
		case '[':
			pi++
			plen--
			not := at(p, pi) == '^'
			if not {
				pi++
				plen--
			}
			matched := false
			c := at(s, si)
			for {
				if plen <= 0 {
					pi--
					plen++
					break
				}
				if p[pi] == '\\' && plen >= 2 {
					pi++
					plen--
					if p[pi] == c {
						matched = true
					}
				} else if p[pi] == ']' {
					break
				} else if plen >= 3 && p[pi+1] == '-' {
					start, end := p[pi], p[pi+2]
					if start > end {
						start, end = end, start
					}
					pi += 2
					plen -= 2
					if c >= start && c <= end {
						matched = true
					}
				} else if p[pi] == c {
					matched = true
				}
				pi++
				plen--
			}
			if not {
				matched = !matched
			}
			if !matched || slen == 0 {
				return false
			}
			si++
			slen--
		case '\\':
			if plen >= 2 {
				pi++
				plen--
			}
			fallthrough
		default:
			if slen == 0 || p[pi] != s[si] {
				return false
			}
			si++
			slen--
		}
		pi++
		plen--
		if slen == 0 {
			for plen > 0 && p[pi] == '*' {
				pi++
				plen--
			}
			break
		}
	}
	return plen == 0 && slen == 0
}
