package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// good is a minimal valid rmt.yaml; cases below append to it or replace it.
const good = `source:
  type: single
  servers: [127.0.0.1:6379]
target:
  type: single
  servers: [127.0.0.1:6380]
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // the exact lines of the error, in order
	}{
		{"unknown key", `source:
  type: single
  sevrers: [127.0.0.1:6379]
  servers: [127.0.0.1:6379]
target:
  servers: [127.0.0.1:6380]
  type: redis-cluster
`, []string{
			`rmt.yaml:3: source.sevrers: unknown key`,
			`rmt.yaml:7: target.type: "redis-cluster" is not one of single, twemproxy, redis cluster, sentinel, rdb file`,
		}},
		{"unknown section and nested key", good + `commons:
  listen: 1.2.3.4:1
common:
  tls: {}
  listen: 127.0.0.1:8888
  listen_addr: x
`, []string{
			`rmt.yaml:7: commons: unknown key`,
			`rmt.yaml:10: common.tls: unknown key`,
			`rmt.yaml:12: common.listen_addr: unknown key`,
		}},
		{"duplicate keys", `source:
  type: single
  servers: [127.0.0.1:6379]
  type: twemproxy
target:
  servers: [127.0.0.1:6380]
source:
  type: single
`, []string{
			`rmt.yaml:4: source.type: duplicate key (first at line 2)`,
			`rmt.yaml:7: source: duplicate key (first at line 1)`,
		}},
		{"source types", `source:
  type: aof
  servers: [x.aof]
target:
  type: aof file
  servers: [127.0.0.1:6380]
`, []string{
			`rmt.yaml:2: source.type: "aof" is not one of single, twemproxy, redis cluster, sentinel, rdb file, aof file`,
			`rmt.yaml:5: target.type: "aof file" is not one of single, twemproxy, redis cluster, sentinel, rdb file`,
		}},
		{"servers", `source:
  type: single
  servers:
    - 127.0.0.1:6379
    - 127.0.0.1
    - 127.0.0.1:0
    - 127.0.0.1:65536
    - :6379
    - 127.0.0.1:6379
    - [a]
    - "[::1]:6379"
target:
  type: redis cluster
  servers: []
`, []string{
			`rmt.yaml:5: source.servers[1]: "127.0.0.1" is not host:port`,
			`rmt.yaml:6: source.servers[2]: "127.0.0.1:0": port "0" is not a number in 1..65535`,
			`rmt.yaml:7: source.servers[3]: "127.0.0.1:65536": port "65536" is not a number in 1..65535`,
			`rmt.yaml:8: source.servers[4]: ":6379" has no host`,
			`rmt.yaml:9: source.servers[5]: "127.0.0.1:6379" is listed twice (also source.servers[0])`,
			`rmt.yaml:10: source.servers[6]: want a string, got a list`,
			`rmt.yaml:14: target.servers: no servers: list them as host:port`,
		}},
		{"servers not a list", `source:
  servers: 127.0.0.1:6379
target:
  servers: [127.0.0.1:6380]
`, []string{
			`rmt.yaml:2: source.servers: want a list, as in servers: [127.0.0.1:6379], got "127.0.0.1:6379"`,
		}},
		{"twemproxy", `source:
  type: single
  servers: [127.0.0.1:6379]
target:
  type: twemproxy
  hash: sha1
  distribution: consistent
  hash_tag: "{"
  servers:
    - 127.0.0.1:6380:1 server1
    - 127.0.0.1:6381
    - 127.0.0.1:6382:0 server3
    - 127.0.0.1:6383:1 server4 extra
    - 127.0.0.1:6384:x
    - 127.0.0.1:6385:2
`, []string{
			`rmt.yaml:6: target.hash: "sha1" is not one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins`,
			`rmt.yaml:7: target.distribution: "consistent" is not one of ketama, modula, random`,
			`rmt.yaml:8: target.hash_tag: "{" is not empty or two characters, as in "{}"`,
			`rmt.yaml:11: target.servers[1]: "127.0.0.1:6381" has no weight: want host:port:weight [name]`,
			`rmt.yaml:12: target.servers[2]: "127.0.0.1:6382:0 server3": weight "0" is not a number > 0`,
			`rmt.yaml:13: target.servers[3]: "127.0.0.1:6383:1 server4 extra": want host:port:weight [name]`,
			`rmt.yaml:14: target.servers[4]: "127.0.0.1:6384:x": weight "x" is not a number > 0`,
		}},
		{"hash_tag unquoted", good + `  hash_tag: {}
`, []string{
			`rmt.yaml:7: target.hash_tag: want a string, got a mapping: quote it, as in hash_tag: "{}"`,
		}},
		{"scalars", good + `  timeout: 5
common:
  listen: localhost
  max_clients: 0
  threads: -1
  step: 0
  mbuf_size: 511
  noreply: maybe
  source_safe:
  dir: ""
  big_key_bytes: 1.5
  max_spool_bytes: -1
`, []string{
			`rmt.yaml:7: target.timeout: "5" has no unit: write it as 5s or 5ms`,
			`rmt.yaml:9: common.listen: "localhost" is not host:port`,
			`rmt.yaml:10: common.max_clients: 0 is not > 0`,
			`rmt.yaml:11: common.threads: -1 is not >= 0 (0: one per CPU)`,
			`rmt.yaml:12: common.step: 0 is not > 0`,
			`rmt.yaml:13: common.mbuf_size: 511 is not in 512..16777216`,
			`rmt.yaml:14: common.noreply: "maybe" is not true or false`,
			`rmt.yaml:15: common.source_safe: has no value (remove the key to keep the default)`,
			`rmt.yaml:16: common.dir: empty: the spool and checkpoints need a directory`,
			`rmt.yaml:17: common.big_key_bytes: "1.5" is not an integer`,
			`rmt.yaml:18: common.max_spool_bytes: -1 is not >= 0 (0: no limit)`,
		}},
		{"timeouts", good + `  timeout: 0s
common:
  mbuf_size: 16777217
`, []string{
			`rmt.yaml:7: target.timeout: 0s is not > 0`,
			`rmt.yaml:9: common.mbuf_size: 16777217 is not in 512..16777216`,
		}},
		{"bad duration", good + `  timeout: soon
`, []string{
			`rmt.yaml:7: target.timeout: "soon" is not a duration (write it as 120s, 500ms, 2m)`,
		}},
		{"integer overflow", good + `common:
  max_clients: 99999999999999999999
`, []string{
			`rmt.yaml:8: common.max_clients: "99999999999999999999" is not an integer`,
		}},
		{"missing section", `source:
  servers: [127.0.0.1:6379]
`, []string{
			`rmt.yaml: target.servers: no servers: list them as host:port`,
		}},
		{"section not a mapping", `source: [127.0.0.1:6379]
target:
  servers: [127.0.0.1:6380]
`, []string{
			`rmt.yaml:1: source: want a mapping of keys, got a list`,
		}},
		{"empty source servers key", `source:
  servers:
target:
  servers: [127.0.0.1:6380]
`, []string{
			`rmt.yaml:2: source.servers: no servers: list them as host:port`,
		}},
		{"both rdb file", `source:
  type: rdb file
  servers: [load_test.go]
target:
  type: rdb file
`, []string{
			`rmt.yaml:5: target.type: "rdb file" cannot be both source and target`,
		}},
		{"file source", `source:
  type: rdb file
  servers: [/nonexistent/a.aof, ., ""]
target:
  servers: [127.0.0.1:6380]
`, []string{
			`rmt.yaml:3: source.servers[0]: "/nonexistent/a.aof" does not exist`,
			`rmt.yaml:3: source.servers[1]: "." is a directory`,
			`rmt.yaml:3: source.servers[2]: empty path`,
		}},
		{"tls", good + `  tls:
    enabled: true
    ca_file: /nonexistent/ca.pem
    cert_file: load_test.go
`, []string{
			`rmt.yaml:7: target.tls.key_file: missing: cert_file needs its key`,
			`rmt.yaml:9: target.tls.ca_file: "/nonexistent/ca.pem" does not exist`,
		}},
		{"tls off ignores files", good + `  tls: {enabled: false, ca_file: /nonexistent/ca.pem}
`, nil},
		{"syntax", "source:\n  type: single\n servers: [a]\n", []string{
			`rmt.yaml:2: did not find expected key`, // yaml.v3 names the line where the mapping began
		}},
		{"tab", "source:\n\ttype: single\n", []string{
			`rmt.yaml:2: found character that cannot start any token`,
		}},
		{"empty", "", []string{`rmt.yaml: file is empty: want the sections source, target and common`}},
		{"blank", " \n\n\t\n", []string{`rmt.yaml: file is empty: want the sections source, target and common`}},
		{"comments only", "# nothing\n", []string{`rmt.yaml: file has only comments: want the sections source, target and common`}},
		{"null document", "~\n", []string{`rmt.yaml: file is empty: want the sections source, target and common`}},
		{"not a mapping", "- source\n", []string{`rmt.yaml:1: want a mapping with the sections source, target and common`}},
		{"two documents", good + "---\nsource: {}\n", []string{`rmt.yaml:7: a second YAML document (---): want exactly one`}},
		{"unknown anchor", "source: *x\n", []string{`rmt.yaml: unknown anchor 'x' referenced`}},
		{"non-scalar key", good + "[a]: 1\n", []string{`rmt.yaml:7: a key must be a plain name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("rmt.yaml", []byte(tt.yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want no error, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors, got none (config %v)", cfg)
			}
			if cfg != nil {
				t.Errorf("a config came back with the errors")
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadValues(t *testing.T) {
	cfg, err := Load("x.yaml", []byte(`# every kind of value
source:
  type: twemproxy
  servers:
    - 10.0.0.1:6379:1 s1
    - "10.0.0.2:6379:2"
  redis_auth: 123456
  timeout: 1500ms
  hash: murmur
  hash_tag: "{}"
  distribution: modula
  tls: {enabled: true, ca_file: load_test.go, insecure_skip_verify: true}
target:
  type: redis cluster
  servers: [10.0.1.1:7000, "[::1]:7001"]
  redis_auth: default:s3cret
common:
  listen: 0.0.0.0:0
  requirepass: adminpw
  max_clients: 7
  threads: 3
  step: 2
  mbuf_size: 1024
  noreply: true
  source_safe: false
  dir: /var/lib/rmt
  filter: "abc*"
  big_key_bytes: 0x100000
  max_spool_bytes: 1073741824
  checkpoint_key: "migration:pos"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Source = Pool{Mode: ModePSync, PSyncCommand: DefaultPSyncCommand, ReplconfCommand: DefaultReplconfCommand, Type: TypeTwemproxy, Servers: []string{"10.0.0.1:6379:1 s1", "10.0.0.2:6379:2"},
		RedisAuth: "123456", Timeout: 1500 * time.Millisecond, Hash: "murmur", HashTag: "{}", Distribution: "modula",
		TLS: TLS{Enabled: true, CAFile: "load_test.go", InsecureSkipVerify: true}}
	want.Target.Type = TypeRedisCluster
	want.Target.Servers = []string{"10.0.1.1:7000", "[::1]:7001"}
	want.Target.RedisAuth = "default:s3cret"
	want.Common = Common{Listen: "0.0.0.0:0", RequirePass: "adminpw", MaxClients: 7, Threads: 3, Step: 2,
		MbufSize: 1024, NoReply: true, SourceSafe: false, Dir: "/var/lib/rmt", Filter: "abc*",
		BigKeyBytes: 1 << 20, MaxSpoolBytes: 1 << 30, CheckpointKey: "migration:pos",
		TargetNotEmpty: TargetNotEmptyRefuse, ResyncGuard: true}
	want.File = "x.yaml"
	if !sameConfig(cfg, want) {
		t.Errorf("got\n%#v\nwant\n%#v", cfg, want)
	}
	if u, p := cfg.Target.Auth(); u != "default" || p != "s3cret" {
		t.Errorf("Auth() = %q, %q", u, p)
	}
	wantInert := []string{
		"x.yaml:22: common.step: ignored: rmtd sizes its own batches (an MSET of up to 512 RDB strings, transactions of up to 1,000 stream commands)",
		"x.yaml:24: common.noreply: ignored: rmtd checks every reply of the target (RMT's noreply lost errors)",
	}
	if got := cfg.Inert(); !reflect.DeepEqual(got, wantInert) {
		t.Errorf("Inert() = %q, want %q", got, wantInert)
	}
	// Set by a flag after loading (rmtd -n, -s), or by nobody: the flag is named.
	cfg.SetByFlag("common.noreply", "-n")
	if got := cfg.Inert(); len(got) != 2 || !strings.HasPrefix(got[1], "-n: common.noreply: ignored") {
		t.Errorf("Inert() after -n = %q", got)
	}
	if got := Default().Inert(); len(got) != 0 {
		t.Errorf("Inert() of the defaults = %q", got)
	}
}

// sameConfig compares what the user configured, not the remembered positions.
func sameConfig(a, b *Config) bool {
	x, y := *a, *b
	x.where, y.where = nil, nil
	return reflect.DeepEqual(x, y)
}

func TestDefaults(t *testing.T) {
	d := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", d.Common.Listen, "127.0.0.1:8888"},
		{"max_clients", d.Common.MaxClients, 100},
		{"threads", d.Common.Threads, 0},
		{"step", d.Common.Step, 1},
		{"mbuf_size", d.Common.MbufSize, 512},
		{"noreply", d.Common.NoReply, false},
		{"source_safe", d.Common.SourceSafe, true},
		{"dir", d.Common.Dir, "./data"},
		{"big_key_bytes", d.Common.BigKeyBytes, int64(8 << 20)},
		{"max_spool_bytes", d.Common.MaxSpoolBytes, int64(0)},
		{"filter", d.Common.Filter, ""},
		{"requirepass", d.Common.RequirePass, ""},
	}
	for _, p := range []Pool{d.Source, d.Target} {
		checks = append(checks, []struct {
			name      string
			got, want any
		}{
			{"type", p.Type, "single"},
			{"servers", len(p.Servers), 0},
			{"timeout", p.Timeout, 120 * time.Second},
			{"hash", p.Hash, "fnv1a_64"},
			{"distribution", p.Distribution, "ketama"},
			{"hash_tag", p.HashTag, ""},
			{"tls", p.TLS, TLS{}},
		}...)
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Absent keys keep their defaults.
	cfg, err := Load("rmt.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File = "rmt.yaml"
	want.Source.Servers = []string{"127.0.0.1:6379"}
	want.Target.Servers = []string{"127.0.0.1:6380"}
	if !sameConfig(cfg, want) {
		t.Errorf("got %v\nwant %v", cfg, want)
	}
	// Default alone lacks only servers.
	err = Default().Validate()
	wantErr := "config: source.servers: no servers: list them as host:port\nconfig: target.servers: no servers: list them as host:port"
	if err == nil || err.Error() != wantErr {
		t.Errorf("Default().Validate() = %v, want %s", err, wantErr)
	}
}

// TestExampleFile keeps /rmt.yaml at the repository root equal to the defaults plus its two
// servers, and loadable.
func TestExampleFile(t *testing.T) {
	path := filepath.Join("..", "rmt.yaml")
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File = path
	want.Source.Servers = []string{"127.0.0.1:6379"}
	want.Target.Servers = []string{"127.0.0.1:6380"}
	if !sameConfig(cfg, want) {
		t.Errorf("got %v\nwant %v", cfg, want)
	}
	// Every key of the schema appears in the example.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for p := range leafValues(Default()) {
		if slices.Contains(sourceOnlyKeys, strings.TrimPrefix(p, "target.")) {
			continue // refused under target
		}
		if !strings.Contains(p, "[") && cfg.where.lines[p] == 0 {
			t.Errorf("the example lacks %s", p)
		}
	}
	if !strings.Contains(string(data), "#") {
		t.Errorf("the example has no comments")
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	legacy := "[source]\ntype: single\nservers:\n - 127.0.0.1:6379\n[target]\ntype: single\nservers:\n - 127.0.0.1:6380\n"
	for _, name := range []string{"rmt.conf", "rmt.cfg", "rmt.yaml"} {
		p := write(name, legacy)
		cfg, err := LoadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.File != p || cfg.Target.Servers[0] != "127.0.0.1:6380" {
			t.Errorf("%s: got %v", name, cfg)
		}
	}
	p := write("bad.yaml", "source:\n  sevrers: []\n")
	_, err := LoadFile(p)
	if err == nil || !strings.Contains(err.Error(), "\n"+p+":2: source.sevrers: unknown key\n") {
		t.Errorf("error %v does not name %s:2", err, p)
	}
	p = write("empty.yaml", "")
	if _, err := LoadFile(p); err == nil || err.Error() != p+": file is empty: want the sections source, target and common" {
		t.Errorf("empty file: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadFile(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}
