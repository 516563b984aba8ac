package rdb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// frameValues are values of every type frameBuffered takes, with elements in every string
// encoding the encoder writes (integers, short and 14-bit and 32-bit lengths, LZF).
func frameValues() []*Value {
	elems := func(n int) [][]byte {
		out := [][]byte{}
		for i := range n {
			switch i % 5 {
			case 0:
				out = append(out, []byte(strconv.Itoa(i*977-3000))) // an integer encoding
			case 1:
				out = append(out, []byte(strings.Repeat("x", 70+i))) // LZF, 14-bit length
			case 2:
				out = append(out, []byte(fmt.Sprintf("m%d-%x", i, i*7919))) // random-ish text
			case 3:
				out = append(out, []byte{})
			default:
				out = append(out, bytes.Repeat([]byte{byte(i)}, 16500)) // 32-bit length
			}
		}
		return out
	}
	var vs []*Value
	for _, n := range []int{0, 1, 7, 130} {
		e := elems(n)
		z := make([]ZMember, len(e))
		h := make([]HashField, len(e))
		for i, m := range e {
			z[i] = ZMember{Member: m, Score: float64(i) * 1.5}
			h[i] = HashField{Field: m, Value: e[len(e)-1-i]}
		}
		vs = append(vs, &Value{List: e}, &Value{Set: e}, &Value{ZSet: z}, &Value{Hash: h})
	}
	return vs
}

func TestFrameBuffered(t *testing.T) {
	for i, v := range frameValues() {
		raw, typ, err := AppendValue(nil, v, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, cut := range []int{len(raw), len(raw) - 1, len(raw) / 2, 0} {
			in := input{tab: crcTables()}
			in.cr.r = bytes.NewReader(raw[:cut])
			in.br = bufio.NewReaderSize(&in.cr, len(raw)+16)
			_, _ = in.br.Peek(cut)
			in.startCapture()
			in.maxRaw = 1 << 30
			ok := frameBuffered(&in, typ)
			switch {
			case cut == len(raw) && (!ok || in.br.Buffered() != 0 || !bytes.Equal(in.raw, raw) || in.crc != CRC64(0, raw)):
				t.Errorf("value %d (type %d, %d bytes): framed %v, %d bytes left, %d captured", i, typ, len(raw), ok, in.br.Buffered(), len(in.raw))
			case cut < len(raw) && (ok || in.br.Buffered() != cut || in.rawLen != 0 || in.crc != 0):
				t.Errorf("value %d (type %d) cut to %d of %d bytes: framed %v, consumed %d", i, typ, cut, len(raw), ok, cut-in.br.Buffered())
			}
		}
	}
}

// chunkReader returns reads of 1, 2, ... 97 bytes in turn, so that values fall across the
// bufio.Reader's fills at every position.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.n = c.n%97 + 1
	return c.r.Read(p[:min(len(p), c.n)])
}

func TestFrameBufferedAgrees(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf, 10)
	if err := enc.WriteHeader(); err != nil {
		t.Fatal(err)
	}
	for i, v := range frameValues() {
		if err := enc.WriteEntry([]byte("k"+strconv.Itoa(i)), v, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	want, err := decodeAll(t, iotest.OneByteReader(bytes.NewReader(data)), -1) // element by element
	if err != io.EOF {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"whole":  bytes.NewReader(data),
		"chunks": &chunkReader{r: bytes.NewReader(data)},
	} {
		got, err := decodeAll(t, r, -1)
		if err != io.EOF {
			t.Fatalf("%s: %v", name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: entries differ from one-byte reads", name)
		}
	}
}
