package daemon

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/rmt-project/rmt/aof"
)

// respCommand is args as a RESP array.
func respCommand(args ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.Bytes()
}

// readCommand reads the one command in wire with a stream reader holding at most hold bytes of
// it, as the replay does: over hold it is a big command, its keys past the head in its Input.
func readCommand(t *testing.T, wire []byte, hold int64) *aof.Command {
	t.Helper()
	r := aof.NewStreamReader(bytes.NewReader(wire), 0)
	r.SetHold(hold)
	r.SetInput(bytes.NewReader(wire))
	c := new(aof.Command)
	if err := r.Next(c); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return c
}

// TestFilterBigCommands: common.filter keeps a command when any of its keys matches, also for a
// big command whose matching key comes after the arguments the reader held (read from its
// input); a big command none of whose keys match is left out, as a small one is.
func TestFilterBigCommands(t *testing.T) {
	f := newKeyFilter("keep:*")
	many := func(last string) []string {
		args := []string{"DEL"}
		for i := range 20000 {
			args = append(args, fmt.Sprintf("other:%05d:%s", i, strings.Repeat("x", 40)))
		}
		return append(args, last)
	}
	mset := []string{"MSET"}
	for i := range 20000 {
		mset = append(mset, fmt.Sprintf("other:%05d", i), strings.Repeat("v", 40))
	}
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"small match", []string{"DEL", "other", "keep:1"}, true},
		{"small no match", []string{"DEL", "other", "other2"}, false},
		{"big DEL, the match last", many("keep:last"), true},
		{"big DEL, no match", many("other:last"), false},
		{"big MSET, a matching key last", slices.Concat(mset, []string{"keep:k", "v"}), true},
		{"big MSET, a matching value only", slices.Concat(mset, []string{"other:k", "keep:v"}), false},
	} {
		for _, hold := range []int64{aof.DefaultHoldBytes, 4 << 10} {
			cmd := readCommand(t, respCommand(tc.args...), hold)
			if big := len(tc.args) > 100 && hold < aof.DefaultHoldBytes; big != cmd.Big() {
				t.Fatalf("%s, hold %d: Big() = %v", tc.name, hold, cmd.Big())
			}
			if got := f.keepCommand(cmd); got != tc.want {
				t.Errorf("%s, hold %d (big %v): keepCommand = %v, want %v", tc.name, hold, cmd.Big(), got, tc.want)
			}
		}
	}
}
