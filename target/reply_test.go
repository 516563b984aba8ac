package target

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		in         string
		kind       byte
		int        int64
		str        string
		prefix     string
		nestedErrs int
		err        bool
	}{
		{in: "+OK\r\n", kind: KindSimple, str: "OK"},
		{in: "-ERR unknown command\r\n", kind: KindError, str: "ERR unknown command", prefix: "ERR"},
		{in: "-WRONGTYPE Operation\r\n", kind: KindError, str: "WRONGTYPE Operation", prefix: "WRONGTYPE"},
		{in: "-MOVED 3999 127.0.0.1:6381\r\n", kind: KindError, prefix: "MOVED", str: "MOVED 3999 127.0.0.1:6381"},
		{in: "-NEWCODE x\r\n", kind: KindError, prefix: "NEWCODE", str: "NEWCODE x"},
		{in: "-lower case\r\n", kind: KindError, prefix: "ERR", str: "lower case"},
		{in: ":-12\r\n", kind: KindInteger, int: -12},
		{in: ":9223372036854775807\r\n", kind: KindInteger, int: 1<<63 - 1},
		{in: ":9223372036854775808\r\n", err: true},
		{in: "$3\r\nabc\r\n", kind: KindBulk, int: 3, str: "abc"},
		{in: "$0\r\n\r\n", kind: KindBulk, int: 0},
		{in: "$-1\r\n", kind: KindBulk, int: -1},
		{in: "*-1\r\n", kind: KindArray, int: -1},
		{in: "*0\r\n", kind: KindArray},
		{in: "*3\r\n:1\r\n*2\r\n$1\r\na\r\n-ERR x\r\n-OOM y\r\n", kind: KindArray, int: 3, nestedErrs: 2},
		{in: "*2\r\n*1\r\n*1\r\n+deep\r\n$2\r\nok\r\n", kind: KindArray, int: 2},
		{in: "$3\r\nabcd\r\n", err: true},
		{in: "$3\r\nab", err: true},
		{in: "$-2\r\n", err: true},
		{in: "$536870913\r\n", err: true},
		{in: "*2\r\n:1\r\n", err: true},
		{in: "*1\r\n?x\r\n", err: true},
		{in: "?what\r\n", err: true},
		{in: "+OK\n", err: true},
		{in: ":\r\n", err: true},
		{in: ":1x\r\n", err: true},
		{in: "", err: true},
		{in: "+" + strings.Repeat("x", 80) + "\r\n", err: true}, // longer than the reader's buffer
		{in: "$80\r\n" + strings.Repeat("x", 80) + "\r\n", kind: KindBulk, int: 80, str: strings.Repeat("x", 80)},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			rr := replyReader{br: bufio.NewReaderSize(r, 64)}
			var rep Reply
			err := rr.read(&rep)
			if (err != nil) != tc.err {
				t.Errorf("%q: err %v, want error %v", tc.in, err, tc.err)
				continue
			}
			if err != nil {
				continue
			}
			if rep.Kind != tc.kind || rep.Int != tc.int || string(rep.Str) != tc.str || rep.NestedErrs != tc.nestedErrs {
				t.Errorf("%q: got %q %d %q nested %d", tc.in, rep.Kind, rep.Int, rep.Str, rep.NestedErrs)
			}
			if tc.prefix != "" {
				var re *ReplyError
				if !errors.As(rep.Err, &re) || re.Prefix != tc.prefix {
					t.Errorf("%q: error %v, want prefix %s", tc.in, rep.Err, tc.prefix)
				}
			}
			if _, err := rr.br.ReadByte(); err != io.EOF {
				t.Errorf("%q: reply not fully consumed", tc.in)
			}
		}
	}
}

func TestReplyErrorRedirect(t *testing.T) {
	tests := []struct {
		msg  string
		slot int
		addr string
		ok   bool
	}{
		{"MOVED 3999 127.0.0.1:6381", 3999, "127.0.0.1:6381", true},
		{"ASK 1 [::1]:7000", 1, "[::1]:7000", true},
		{"MOVED 16384 a:1", 0, "", false},
		{"MOVED x a:1", 0, "", false},
		{"ERR MOVED 1 a:1", 0, "", false},
	}
	for _, tc := range tests {
		slot, addr, ok := newReplyError([]byte(tc.msg)).Redirect()
		if slot != tc.slot || addr != tc.addr || ok != tc.ok {
			t.Errorf("%q: %d %q %v", tc.msg, slot, addr, ok)
		}
	}
	for msg, want := range map[string]bool{"LOADING x": true, "BUSY y": true, "TRYAGAIN": true, "ERR": false, "BUSYKEY k": false} {
		if got := newReplyError([]byte(msg)).Retryable(); got != want {
			t.Errorf("%q retryable %v", msg, got)
		}
	}
}

func TestQuoteKey(t *testing.T) {
	tests := map[string]string{
		"abc":          `"abc"`,
		"a\x00b":       `"a\x00b"`,
		"q\"\\\n\r\t":  `"q\"\\\n\r\t"`,
		"\a\b\xff\x7f": `"\a\b\xff\x7f"`,
		"":             `""`,
	}
	for in, want := range tests {
		if got := keyString([]byte(in)); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestParseServerInfo(t *testing.T) {
	tests := []struct {
		info      string
		rdb       int
		absttl    bool
		functions bool
		err       bool
	}{
		{"# Server\r\nredis_version:2.8.24\r\n", 6, false, false, false},
		{"redis_version:2.6.17\r\n", 6, false, false, false},
		{"redis_version:3.2.12\r\n", 7, false, false, false},
		{"redis_version:4.0.14\r\n", 8, false, false, false},
		{"redis_version:5.0.14\r\n", 9, true, false, false},
		{"redis_version:6.2.16\r\n", 9, true, false, false},
		{"redis_version:7.0.15\r\n", 10, true, true, false},
		{"redis_version:7.2.6\r\n", 11, true, true, false},
		{"redis_version:7.4.1\r\n", 12, true, true, false},
		{"redis_version:8.0.2\r\n", 12, true, true, false},
		{"redis_version:7.2.4\r\nvalkey_version:8.0.1\r\n", 11, true, true, false},
		{"redis_version:7.2.4\r\nvalkey_version:9.0.0\r\n", 80, true, true, false},
		{"redis_version:x\r\n", 0, false, false, true},
		{"nothing:here\r\n", 0, false, false, true},
	}
	for _, tc := range tests {
		si, err := parseServerInfo([]byte(tc.info))
		if (err != nil) != tc.err {
			t.Errorf("%q: %v", tc.info, err)
			continue
		}
		if err == nil && (si.RDBVersion != tc.rdb || si.AbsTTL != tc.absttl || si.Functions != tc.functions || si.Replace != (si.Major >= 3 || si.ValkeyVersion != "")) {
			t.Errorf("%q: %+v", tc.info, si)
		}
	}
}

func TestCanRestore(t *testing.T) {
	tests := []struct {
		src, tgt int
		want     bool
	}{
		{10, 10, true}, {9, 10, true}, {11, 10, false}, {12, 12, true}, {0, 10, false},
		{11, 80, true}, {12, 80, false}, {80, 80, true}, {80, 12, false},
	}
	for _, tc := range tests {
		if got := canRestore(tc.src, tc.tgt); got != tc.want {
			t.Errorf("canRestore(%d, %d) = %v", tc.src, tc.tgt, got)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n", "*2\r\n$1\r\na\r\n*1\r\n-E\r\n", "$-1\r\n", "*-1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := replyReader{br: bufio.NewReaderSize(bytes.NewReader(in), 16)}
		var rep Reply
		for range 100 {
			if err := rr.read(&rep); err != nil {
				return
			}
			if rep.Kind == KindBulk && rep.Int >= 0 && int64(len(rep.Str)) != rep.Int {
				t.Fatalf("bulk of %d bytes has %d", rep.Int, len(rep.Str))
			}
		}
	})
}
