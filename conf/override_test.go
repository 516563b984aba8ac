package conf

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSplitServers(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"127.0.0.1:6379", []string{"127.0.0.1:6379"}},
		{"127.0.0.1:6379,127.0.0.1:6380", []string{"127.0.0.1:6379", "127.0.0.1:6380"}},
		{" a:1 , b:2 ,,", []string{"a:1", "b:2"}},
		{",", nil},
	}
	for _, tt := range tests {
		if got := SplitServers(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitServers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOverride(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string // "" : Default() built in code
		from, to string
		want     string // the error text, "" for none
		source   []string
	}{
		{"replace both", good, "10.0.0.1:1,10.0.0.2:2", "10.0.0.3:3", "", []string{"10.0.0.1:1", "10.0.0.2:2"}},
		{"keep file servers", good, "", "", "", []string{"127.0.0.1:6379"}},
		{"bad -f", good, "10.0.0.1", "", `-f: source.servers[0]: "10.0.0.1" is not host:port`, nil},
		{"bad -t and -f", good, "a:1,a:1", "b", "-f: source.servers[1]: \"a:1\" is listed twice (also source.servers[0])\n" +
			`-t: target.servers[0]: "b" is not host:port`, nil},
		{"empty -f list", good, ",", "", `-f: source.servers: no servers: list them as host:port`, nil},
		{"in code", "", "127.0.0.1:6379", "127.0.0.1:6380", "", []string{"127.0.0.1:6379"}},
		{"in code bad", "", "127.0.0.1:6379", "x", `-t: target.servers[0]: "x" is not host:port`, nil},
		{"in code without -t", "", "127.0.0.1:6379", "", `config: target.servers: no servers: list them as host:port`, nil},
		{"other errors keep their line", good + "common:\n  step: 0\n", "", "", "", nil}, // Load refuses it first
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			if tt.yaml != "" {
				var err error
				if cfg, err = Load("rmt.yaml", []byte(tt.yaml)); err != nil {
					if tt.name == "other errors keep their line" {
						if err.Error() != "rmt.yaml:8: common.step: 0 is not > 0" {
							t.Fatalf("Load: %v", err)
						}
						return
					}
					t.Fatal(err)
				}
			}
			err := cfg.Override(tt.from, tt.to)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Override: %v", err)
				}
				if !reflect.DeepEqual(cfg.Source.Servers, tt.source) {
					t.Errorf("source servers %q, want %q", cfg.Source.Servers, tt.source)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Override error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

// TestChangedValueLosesLine: a value changed after loading (a flag such as -R) is no longer
// reported at the line that says something else.
func TestChangedValueLosesLine(t *testing.T) {
	cfg, err := Load("rmt.yaml", []byte(good+"common:\n  mbuf_size: 1024\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Target.Type = "aof file"
	cfg.Common.MbufSize = 1
	cfg.Common.Step = 0 // absent from the file: reported at its section's line
	want := "rmt.yaml:7: common.step: 0 is not > 0\n" +
		`rmt.yaml: target.type: "aof file" is not one of single, twemproxy, redis cluster, sentinel, rdb file` + "\n" +
		"rmt.yaml: common.mbuf_size: 1 is not in 512..16777216"
	err = cfg.Validate()
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	var list Errors
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("errors.As(Errors) failed on %T", err)
	}
	var one *Error
	if !errors.As(err, &one) || one.Line != 7 || one.Path != "common.step" {
		t.Errorf("errors.As(*Error) = %+v", one)
	}
}

func TestValidateInCode(t *testing.T) {
	cfg := &Config{
		Source: Pool{Mode: ModePSync, PSyncCommand: DefaultPSyncCommand, ReplconfCommand: DefaultReplconfCommand, Type: "redis-cluster", Servers: []string{"a:1"}, Timeout: -1, Hash: "fnv1a_64", Distribution: "ketama"},
		Target: Pool{Mode: ModePSync, PSyncCommand: DefaultPSyncCommand, ReplconfCommand: DefaultReplconfCommand, Type: TypeTwemproxy, Servers: []string{"b:2:1 n"}, Timeout: 1, Hash: "md5", Distribution: "random", HashTag: "$$"},
		Common: Common{Listen: "127.0.0.1:8888", MaxClients: 1, Step: 1, MbufSize: 512, Dir: "d", BigKeyBytes: 1,
			TargetNotEmpty: TargetNotEmptyRefuse},
		File: "job.yaml",
	}
	want := `job.yaml: source.type: "redis-cluster" is not one of single, twemproxy, redis cluster, sentinel, rdb file, aof file` + "\n" +
		"job.yaml: source.timeout: -1ns is not > 0"
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	cfg.Source.Type, cfg.Source.Timeout = TypeSingle, 1
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		typ, in string
		want    Server
		err     string
	}{
		{TypeSingle, "127.0.0.1:6379", Server{Addr: "127.0.0.1:6379", Weight: 1}, ""},
		{TypeRedisCluster, "[::1]:7000", Server{Addr: "[::1]:7000", Weight: 1}, ""},
		{TypeTwemproxy, "127.0.0.1:6379:1 server1", Server{Addr: "127.0.0.1:6379", Weight: 1, Name: "server1"}, ""},
		{TypeTwemproxy, "127.0.0.1:6379:20", Server{Addr: "127.0.0.1:6379", Weight: 20}, ""},
		{TypeTwemproxy, "127.0.0.1:6379:-1", Server{}, `"127.0.0.1:6379:-1": weight "-1" is not a number > 0`},
		{TypeTwemproxy, "6379:1", Server{}, `"6379:1" has no weight: want host:port:weight [name]`},
		{TypeRDBFile, "/d/dump.rdb", Server{Addr: "/d/dump.rdb"}, ""},
		{TypeAOFFile, " ", Server{}, "empty path"},
		{TypeSingle, "h:p", Server{}, `"h:p": port "p" is not a number in 1..65535`},
		{TypeSingle, "a b:1", Server{}, `"a b:1": host has a space`},
	}
	for _, tt := range tests {
		got, err := ParseServer(tt.typ, tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseServer(%q, %q) error %v, want %s", tt.typ, tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseServer(%q, %q) = %+v, %v; want %+v", tt.typ, tt.in, got, err, tt.want)
		}
	}
}

func TestRedacted(t *testing.T) {
	cfg, err := Load("rmt.yaml", []byte(good+"  redis_auth: alice:tgt-secret\ncommon:\n  requirepass: admin-secret\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source.RedisAuth = "src-secret"
	r := cfg.Redacted()
	if r.Source.RedisAuth != RedactedMark || r.Target.RedisAuth != "alice:"+RedactedMark || r.Common.RequirePass != RedactedMark {
		t.Errorf("Redacted: %q %q %q", r.Source.RedisAuth, r.Target.RedisAuth, r.Common.RequirePass)
	}
	if cfg.Source.RedisAuth != "src-secret" || cfg.Common.RequirePass != "admin-secret" {
		t.Errorf("Redacted changed the original")
	}
	r.Source.Servers[0] = "changed"
	if cfg.Source.Servers[0] != "127.0.0.1:6379" {
		t.Errorf("Redacted shares the servers slice")
	}
	r.Source.Servers[0] = "127.0.0.1:6379"
	for _, s := range []string{cfg.String(), cfg.Source.String(), cfg.Target.String(), cfg.Common.String(),
		fmtAll(cfg), fmtAll(*cfg), fmtAll(cfg.Source), fmtAll(cfg.Common)} {
		if strings.Contains(s, "secret") {
			t.Errorf("a password shows in %s", s)
		}
	}
	if !strings.Contains(cfg.String(), "127.0.0.1:6380") || strings.Contains(cfg.String(), "\n") {
		t.Errorf("String() = %q, want one line with the servers", cfg.String())
	}
	// The rendering is YAML that loads back to the same config (passwords aside).
	_, err = Load("back.yaml", []byte(Default().String()))
	if err == nil || !strings.Contains(err.Error(), "source.servers: no servers") {
		t.Errorf("Default().String() does not load back: %v", err)
	}
	back, err := Load("back.yaml", []byte(r.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.String())
	}
	r.File = "back.yaml"
	if !sameConfig(back, &r) {
		t.Errorf("round trip:\n%v\n%v", back, &r)
	}
}

func fmtAll(v any) string {
	return fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
}

func TestSetByFlag(t *testing.T) {
	cfg, err := Load("rmt.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Common.MbufSize = 100
	cfg.SetByFlag("common.mbuf_size", "-m")
	cfg.Target.Type = "aof file"
	cfg.SetByFlag("target.type", "-R")
	want := `-R: target.type: "aof file" is not one of single, twemproxy, redis cluster, sentinel, rdb file` + "\n" +
		"-m: common.mbuf_size: 100 is not in 512..16777216"
	if err := cfg.Override("", ""); err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}

// TestCRLF: files written on Windows load the same, with the same lines.
func TestCRLF(t *testing.T) {
	crlf := func(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }
	a, err := Load("rmt.yaml", crlf(good))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadRMTConf("rmt.conf", crlf(rmtReadme))
	if err != nil {
		t.Fatal(err)
	}
	if a.Target.Servers[0] != "127.0.0.1:6380" || b.Common.Listen != "0.0.0.0:8888" || b.Target.HashTag != "{}" {
		t.Errorf("CRLF: %v / %v", a, b)
	}
	_, err = Load("rmt.yaml", crlf(good+"  sevrers: []\n"))
	if err == nil || err.Error() != "rmt.yaml:7: target.sevrers: unknown key" {
		t.Errorf("CRLF error: %v", err)
	}
}
