package aof

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	f.Add(sample(), uint16(100), uint16(7))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\n"), uint16(1), uint16(3))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$3"), uint16(5), uint16(9))
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$300\r\n"+strings.Repeat("v", 300)+"\r\n*1\r\n$4\r\nPING\r\n"), uint16(50), uint16(40))
	f.Add([]byte("*2\r\n$1\r\na\r\n$5\r\nabcdexy"), uint16(8), uint16(12))
	f.Add([]byte("*1\r\n$"+strings.Repeat("1", 40)), uint16(0), uint16(5))
	f.Add([]byte("PING\r\n"), uint16(3), uint16(2))
}

// sameError says whether two errors are the same in kind and place (their snippets may differ:
// a reader in big-command mode does not hold what it skips).
func sameError(a, b error) bool {
	var ea, eb *Error
	if errors.As(a, &ea) != errors.As(b, &eb) {
		return false
	}
	if ea == nil {
		return a == b
	}
	return ea.What == eb.What && ea.Offset == eb.Offset && errors.Is(a, ErrProtocol) == errors.Is(b, ErrProtocol) &&
		errors.Is(a, io.ErrUnexpectedEOF) == errors.Is(b, io.ErrUnexpectedEOF)
}

// FuzzBigReader: on any input, the big-command mode (any hold limit, the input split anywhere)
// gives the commands of the plain mode, at the same offsets, with the same arguments read back
// through an ArgReader and the same bytes from WriteCommand, and fails the same way.
func FuzzBigReader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte, hold, split uint16) {
		plain, perr := readAllBig(t, limited(NewReader(bytes.NewReader(in))), in, 0)
		r := limited(NewReader(&twoChunks{p: in, i: int(split) % (len(in) + 1)}))
		r.SetHold(int64(hold%2000) + 1)
		big, berr := readAllBig(t, r, in, 0)
		if len(plain) != len(big) || !sameError(perr, berr) {
			t.Fatalf("plain: %d commands, %v; big: %d, %v", len(plain), perr, len(big), berr)
		}
		for i := range plain {
			p, b := plain[i], big[i]
			b.big = false
			if p.String() != b.String() || fmt.Sprint(p.args) != fmt.Sprint(b.args) {
				t.Fatalf("command %d: plain %v, big %v", i, p, b)
			}
		}
	})
}
