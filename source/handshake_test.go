package source

import (
	"errors"
	"strings"
	"testing"
)

const testReplid = "0123456789abcdef0123456789abcdef01234567"

func TestParsePSYNCReply(t *testing.T) {
	tests := []struct {
		line    string
		want    psyncReply
		errCode string // ReplyError code expected; "" with wantErr for a malformed reply
		wantErr bool
	}{
		{line: "+FULLRESYNC " + testReplid + " 0", want: psyncReply{Kind: psyncFull, Replid: testReplid, Offset: 0}},
		{line: "+FULLRESYNC " + testReplid + " 1234567890123", want: psyncReply{Kind: psyncFull, Replid: testReplid, Offset: 1234567890123}},
		{line: "+CONTINUE", want: psyncReply{Kind: psyncContinue}},
		{line: "+CONTINUE " + testReplid, want: psyncReply{Kind: psyncContinue, Replid: testReplid}},
		{line: "+CONTINUE " + testReplid + " ", want: psyncReply{Kind: psyncContinue, Replid: testReplid}},
		{line: "-NOMASTERLINK Can't SYNC while not connected with my master", wantErr: true, errCode: "NOMASTERLINK"},
		{line: "-ERR unknown command 'PSYNC'", wantErr: true, errCode: "ERR"},
		{line: "+FULLRESYNC " + testReplid, wantErr: true},
		{line: "+FULLRESYNC " + testReplid + " -1", wantErr: true},
		{line: "+FULLRESYNC " + testReplid + " 12x", wantErr: true},
		{line: "+FULLRESYNC " + testReplid[:39] + " 1", wantErr: true},
		{line: "+FULLRESYNC " + strings.Replace(testReplid, "0", "g", 1) + " 1", wantErr: true},
		{line: "+FULLRESYNC " + testReplid + " 99999999999999999999", wantErr: true},
		{line: "+CONTINUE abc", wantErr: true},
		{line: "+OK", wantErr: true},
		{line: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parsePSYNCReply(tt.line)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parsePSYNCReply(%q) = %+v, want an error", tt.line, got)
				continue
			}
			var re *ReplyError
			if isRE := errors.As(err, &re); isRE != (tt.errCode != "") || isRE && re.Code != tt.errCode {
				t.Errorf("parsePSYNCReply(%q) error %v, want reply error code %q", tt.line, err, tt.errCode)
			}
			if tt.errCode == "" && !errors.Is(err, errBadReply) {
				t.Errorf("parsePSYNCReply(%q) error %v does not wrap errBadReply", tt.line, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parsePSYNCReply(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestParseBulkHeader(t *testing.T) {
	tests := []struct {
		line    string
		size    int64
		mark    string
		wantErr bool
	}{
		{line: "$0", size: 0},
		{line: "$175", size: 175},
		{line: "$EOF:" + testReplid, size: -1, mark: testReplid},
		{line: "$EOF:" + testReplid[:39], wantErr: true},
		{line: "$EOF:" + testReplid + "x", wantErr: true},
		{line: "$-1", wantErr: true},
		{line: "$", wantErr: true},
		{line: "$1x", wantErr: true},
		{line: "+OK", wantErr: true},
		{line: "-ERR BGSAVE failed", wantErr: true},
	}
	for _, tt := range tests {
		h, err := parseBulkHeader(tt.line)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseBulkHeader(%q) = %+v, want an error", tt.line, h)
			}
			continue
		}
		if err != nil || h.Size != tt.size || string(h.Mark) != tt.mark {
			t.Errorf("parseBulkHeader(%q) = %+v, %v; want size %d mark %q", tt.line, h, err, tt.size, tt.mark)
		}
	}
}

func TestReplyErrorHidesNothingButSaysStep(t *testing.T) {
	err := newReplyError("AUTH", "-WRONGPASS invalid username-password pair or user is disabled.")
	if err.Code != "WRONGPASS" || !strings.Contains(err.Error(), "AUTH") || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("got %+v / %q", err, err.Error())
	}
}

func FuzzParsePSYNCReply(f *testing.F) {
	for _, s := range []string{"+FULLRESYNC " + testReplid + " 10", "+CONTINUE", "+CONTINUE " + testReplid, "-ERR x", "$EOF:" + testReplid, "$12"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := parsePSYNCReply(line)
		if err == nil && (r.Kind == psyncFull && (!validReplid(r.Replid) || r.Offset < 0) || r.Kind == psyncContinue && r.Replid != "" && !validReplid(r.Replid)) {
			t.Fatalf("accepted %q as %+v", line, r)
		}
		h, err := parseBulkHeader(line)
		if err == nil && (h.Size < -1 || h.Size == -1 && len(h.Mark) != replidLen) {
			t.Fatalf("accepted header %q as %+v", line, h)
		}
	})
}
