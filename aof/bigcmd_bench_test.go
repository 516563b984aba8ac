package aof

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// smallStream is BenchmarkReader's input: about 1 MiB of typical small writes.
func smallStream() []byte {
	var in []byte
	for i := 0; len(in) < 1<<20; i++ {
		in = AppendCommandString(in, "SET", fmt.Sprintf("key:%08d", i), strings.Repeat("v", 64))
		in = AppendCommandString(in, "HSET", fmt.Sprintf("hash:%04d", i%1000), "field", "value", "f2", "v2")
	}
	return in
}

// BenchmarkStreamReader is BenchmarkReader through NewStreamReader (big-command mode, stream
// limits): small commands take the same path.
func BenchmarkStreamReader(b *testing.B) {
	in := smallStream()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	br := bytes.NewReader(in)
	r := NewStreamReader(br, 0)
	var c Command
	for b.Loop() {
		br.Reset(in)
		r.Reset(br)
		for {
			if err := r.Next(&c); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// BenchmarkCopier drains the same stream as the replica link does (64 KiB hold), the gathered
// commands copied to a buffer as the link's batch does.
func BenchmarkCopier(b *testing.B) {
	in := smallStream()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	br := bytes.NewReader(in)
	bufr := bufio.NewReaderSize(br, 256<<10)
	c := NewCopier(64 << 10)
	batch := make([]byte, 0, 256<<10)
	var cmd Command
	for b.Loop() {
		br.Reset(in)
		bufr.Reset(br)
		c.Restart()
		c.Continue(bufr, 0)
		for {
			if err := c.Next(&cmd, io.Discard); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			if len(batch)+len(cmd.Raw) > cap(batch) {
				batch = batch[:0]
			}
			batch = append(batch, cmd.Raw...)
		}
	}
}

// BenchmarkCopierBig drains one 64 MiB SET: written in pieces from the read buffer.
func BenchmarkCopierBig(b *testing.B) {
	in := AppendCommandString(nil, "SET", "k", strings.Repeat("v", 64<<20))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	br := bytes.NewReader(in)
	bufr := bufio.NewReaderSize(br, 256<<10)
	c := NewCopier(64 << 10)
	var cmd Command
	for b.Loop() {
		br.Reset(in)
		bufr.Reset(br)
		c.Restart()
		c.Continue(bufr, 0)
		if err := c.Next(&cmd, io.Discard); err != nil || cmd.N != int64(len(in)) {
			b.Fatal(err)
		}
	}
}

// BenchmarkBigCommand reads one 64 MiB SET in big-command mode and writes it whole from the
// input (WriteCommand): the replay of a big command, read twice, held never.
func BenchmarkBigCommand(b *testing.B) {
	in := AppendCommandString(nil, "SET", "k", strings.Repeat("v", 64<<20))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	br := bytes.NewReader(in)
	r := NewStreamReader(br, 0)
	buf := make([]byte, 256<<10)
	var c Command
	for b.Loop() {
		br.Reset(in)
		r.Reset(br)
		if err := r.Next(&c); err != nil || !c.Big() {
			b.Fatal(err)
		}
		if _, err := WriteCommand(io.Discard, &c, bytes.NewReader(in), buf); err != nil {
			b.Fatal(err)
		}
	}
}
