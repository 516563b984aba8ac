package aof

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Part is one file of an AOF: a Redis 7 multi-part AOF has a base file (an RDB, or an AOF that
// may start with an RDB preamble) and incremental files, loaded in the manifest's order.
type Part struct {
	Path string // the file's path
	Seq  int64  // its sequence number in the manifest (0 for a single-file AOF)
	Type byte   // 'b' base, 'i' incremental ('s' for a single-file AOF)
}

// Manifest types of files, as Redis's aof.c names them.
const (
	partBase    = 'b' // AOF_FILE_TYPE_BASE
	partHistory = 'h' // AOF_FILE_TYPE_HIST
	partIncr    = 'i' // AOF_FILE_TYPE_INCR
	partSingle  = 's' // a plain appendonly.aof, ours
)

const maxManifestLine = 1024 // Redis reads manifest lines with fgets into a buffer this size

// parseManifest reads a Redis 7 AOF manifest (`file <name> seq <n> type <b|h|i>` per line,
// values quoted as sdssplitargs quotes them) and returns the base then the incremental files
// in load order; history files are left out, as Redis does. Names are returned bare.
func parseManifest(name string, r io.Reader) ([]Part, error) {
	br := bufio.NewReaderSize(r, maxManifestLine)
	var base *Part
	var incr []Part
	maxSeq := int64(0)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			if lineNo == 1 {
				return nil, fmt.Errorf("aof: manifest %s: empty", name)
			}
			break
		}
		fail := func(what string) error {
			return fmt.Errorf("aof: manifest %s:%d: %s: %q", name, lineNo, what, snippet(line))
		}
		if len(line) > 0 && line[0] == '#' {
			for err == bufio.ErrBufferFull { // a long comment: skip the rest of it
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("aof: manifest %s: %w", name, err)
			}
			continue
		}
		if err == bufio.ErrBufferFull || err == io.EOF {
			return nil, fail("line too long or not ending in newline")
		}
		if err != nil {
			return nil, fmt.Errorf("aof: manifest %s: %w", name, err)
		}
		args, ok := splitArgs(bytes.Trim(line, " \t\r\n"))
		if !ok || len(args) < 6 || len(args)%2 != 0 {
			return nil, fail("invalid line")
		}
		var p Part
		for i := 0; i < len(args); i += 2 {
			switch k, v := strings.ToLower(args[i]), args[i+1]; k {
			case "file":
				if v == "" || strings.ContainsAny(v, `/\`) {
					return nil, fail("file must be a bare name")
				}
				p.Path = v
			case "seq":
				p.Seq, err = strconv.ParseInt(v, 10, 64)
				if err != nil || p.Seq <= 0 {
					return nil, fail("invalid seq")
				}
			case "type":
				if len(v) > 0 {
					p.Type = v[0]
				}
			}
		}
		if p.Path == "" || p.Seq == 0 || p.Type == 0 {
			return nil, fail("missing file, seq or type")
		}
		switch p.Type {
		case partBase:
			if base != nil {
				return nil, fail("second base file")
			}
			base = &p
		case partHistory:
		case partIncr:
			if p.Seq <= maxSeq {
				return nil, fail("incr sequence not increasing")
			}
			maxSeq = p.Seq
			incr = append(incr, p)
		default:
			return nil, fail("unknown file type")
		}
	}
	var parts []Part
	if base != nil {
		parts = append(parts, *base)
	}
	return append(parts, incr...), nil
}

// splitArgs splits a line as Redis's sdssplitargs does: words separated by spaces, "double
// quotes" with \n \r \t \b \a \xHH and \<c> escapes, 'single quotes' with \'. A closing quote
// must be followed by a space or the end. A NUL ends the line.
func splitArgs(line []byte) ([]string, bool) {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i] // a C string ends there
	}
	var out []string
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p == len(line) {
			return out, true
		}
		var cur []byte
		inq, insq := false, false
	word:
		for {
			switch {
			case inq:
				if p >= len(line) {
					return nil, false
				}
				c := line[p]
				switch {
				case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
					v, _ := strconv.ParseUint(string(line[p+2:p+4]), 16, 8)
					cur = append(cur, byte(v))
					p += 3
				case c == '\\' && p+1 < len(line):
					p++
					switch e := line[p]; e {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, e)
					}
				case c == '"':
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return nil, false
					}
					p++
					break word
				default:
					cur = append(cur, c)
				}
			case insq:
				if p >= len(line) {
					return nil, false
				}
				c := line[p]
				switch {
				case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if p+1 < len(line) && !isSpace(line[p+1]) {
						return nil, false
					}
					p++
					break word
				default:
					cur = append(cur, c)
				}
			default:
				if p >= len(line) || isSpace(line[p]) {
					break word
				}
				switch line[p] {
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, line[p])
				}
			}
			p++
		}
		out = append(out, string(cur))
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
