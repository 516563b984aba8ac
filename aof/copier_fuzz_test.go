package aof

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// FuzzCopier: on any input, a Copier (any hold limit, reads of any size) passes on a prefix of
// it, returns the commands a Reader finds and fails where it fails; cut anywhere and continued
// on the rest, it passes on the same bytes and commands; Scan of any prefix finds its place.
func FuzzCopier(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte, hold, split uint16) {
		ref := limited(NewReader(bytes.NewReader(in)))
		var want []copied
		var c Command
		var rerr error
		for {
			if rerr = ref.Next(&c); rerr != nil {
				break
			}
			want = append(want, copied{n: c.N, start: c.Start, nargs: c.NArgs, args: fmt.Sprintf("%q", c.Args)})
		}
		h := int64(hold % 500)
		newC := func(r io.Reader, at int64) *Copier {
			cp := NewCopier(h)
			cp.SetLimits(1000, 1<<20)
			cp.Continue(bufio.NewReaderSize(r, minGatherBuf), at)
			return cp
		}
		var s sink
		got, err := copyAll(newC(&twoChunks{p: in, i: int(split) % (len(in) + 1)}, 0), &s)
		if !sameError(err, rerr) || !bytes.HasPrefix(in, s.buf.Bytes()) {
			t.Fatalf("copier error %v, reader error %v; passed on %d bytes", err, rerr, s.buf.Len())
		}
		sameCommands(t, got, want, h, 0)
		if err == io.EOF && s.buf.Len() != len(in) {
			t.Fatalf("io.EOF after %d bytes of %d", s.buf.Len(), len(in))
		}
		all := s.buf.Len() // what a run over the whole input passes on

		// Cut, then continue on the rest of the input.
		cut := int(split) % (len(in) + 1)
		var s2 sink
		cp := newC(bytes.NewReader(in[:cut]), 0)
		first, err := copyAll(cp, &s2)
		var fail *Error
		if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
			if !errors.As(err, &fail) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			return // bad bytes before the cut
		}
		passed := s2.buf.Len()
		cp.Continue(bufio.NewReaderSize(bytes.NewReader(in[passed:]), minGatherBuf), int64(passed))
		rest, err := copyAll(cp, &s2)
		if !sameError(err, rerr) || !samePassed(s2.buf.Len(), all, rerr) || !bytes.HasPrefix(in, s2.buf.Bytes()) {
			t.Fatalf("cut at %d, resumed at %d: %v (whole: %v); passed on %d bytes, whole %d", cut, passed, err, rerr, s2.buf.Len(), all)
		}
		if len(first)+len(rest) != len(got) {
			t.Fatalf("cut at %d: %d + %d commands, whole %d", cut, len(first), len(rest), len(got))
		}

		// Scan the prefix passed on by the whole run, and continue from there.
		sc := NewCopier(h)
		sc.SetLimits(1000, 1<<20)
		k := min(cut, all)
		if err := sc.Scan(bytes.NewReader(in[:k]), 0); err != nil {
			t.Fatalf("Scan of %d good bytes: %v", k, err)
		}
		var s3 sink
		s3.buf.Write(in[:k])
		sc.Continue(bufio.NewReaderSize(bytes.NewReader(in[k:]), minGatherBuf), int64(k))
		if _, err := copyAll(sc, &s3); !sameError(err, rerr) || !samePassed(s3.buf.Len(), all, rerr) || !bytes.HasPrefix(in, s3.buf.Bytes()) {
			t.Fatalf("after a Scan of %d bytes: %v (whole: %v), passed on %d, whole %d", k, err, rerr, s3.buf.Len(), all)
		}
	})
}

// samePassed says whether a Copier that passed on n bytes agrees with one that passed on all of
// the same input and failed with err: the same bytes, but before bad input a Copier passes on
// what its reads happened to bring before the bad token, never the token (the CR of a bad CRLF,
// whose error is at the CR, may be passed on).
func samePassed(n, all int, err error) bool {
	var e *Error
	if errors.Is(err, ErrProtocol) && errors.As(err, &e) {
		return int64(n) <= e.Offset+1
	}
	return n == all
}
