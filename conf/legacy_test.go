package conf

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// rmtReadme is the first example of RMT's README, as printed there (tabs included).
const rmtReadme = `[source]
type: single
servers:
 - 127.0.0.1:6379
 - 127.0.0.1:6380
 - 127.0.0.1:6381
 - 127.0.0.1:6382

[target]
type: twemproxy
hash: fnv1a_64
hash_tag: "{}"
distribution: ketama
servers:
 - 127.0.0.1:6380:1 server1
 - 127.0.0.1:6381:1 server2
 - 127.0.0.1:6382:1 server3
 - 127.0.0.1:6383:1 server4
	
[common]
listen: 0.0.0.0:8888
threads: 2
step: 1
mbuf_size: 1024
source_safe: true
`

// rmtSample is RMT's own rmt.conf (items written "-addr", key "servers :").
const rmtSample = `[source]
type: twemproxy
hash: fnv1a_64
hash_tag: "{}"
distribution: ketama
servers : 
-127.0.0.1:12345:1 server1
-127.0.1.1:12345:1 server2
-127.0.2.1:12345:1 server3
-127.0.3.1:12345:1 server4

[target]
type: redis cluster
servers:
-127.0.0.1:23456

[common]
listen: 0.0.0.0:8888`

func TestLoadRMTConf(t *testing.T) {
	cfg, err := LoadRMTConf("rmt.conf", []byte(rmtReadme))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File = "rmt.conf"
	want.Source.Servers = []string{"127.0.0.1:6379", "127.0.0.1:6380", "127.0.0.1:6381", "127.0.0.1:6382"}
	want.Target = Pool{Mode: ModePSync, PSyncCommand: DefaultPSyncCommand, ReplconfCommand: DefaultReplconfCommand, Type: TypeTwemproxy, Hash: "fnv1a_64", HashTag: "{}", Distribution: "ketama", Timeout: DefaultTimeout,
		Servers: []string{"127.0.0.1:6380:1 server1", "127.0.0.1:6381:1 server2", "127.0.0.1:6382:1 server3", "127.0.0.1:6383:1 server4"}}
	want.Common.Listen = "0.0.0.0:8888"
	want.Common.Threads = 2
	want.Common.MbufSize = 1024
	if !sameConfig(cfg, want) {
		t.Errorf("got  %v\nwant %v", cfg, want)
	}

	cfg, err = LoadRMTConf("rmt.conf", []byte(rmtSample))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Source.Servers; len(got) != 4 || got[3] != "127.0.3.1:12345:1 server4" {
		t.Errorf("source servers %q", got)
	}
	if cfg.Target.Type != TypeRedisCluster || !reflect.DeepEqual(cfg.Target.Servers, []string{"127.0.0.1:23456"}) {
		t.Errorf("target %v", cfg.Target)
	}

	cfg, err = LoadRMTConf("rmt.conf", []byte(`# comment
[source]
type: single   # trailing comment
servers:
 - 127.0.0.1:6379
timeout: 3000
redis_db: 2
redis_auth: pw:with:colons
[target]
type: rdb file
[common]
maxmemory: 1G
noreply: true
source_safe: false
dir: /tmp
filter: abc*
requirepass: x
big_key_bytes: 1024
max_spool_bytes: 2048
max_clients: 5
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Timeout != 3*time.Second || cfg.Source.RedisAuth != "pw:with:colons" || cfg.Target.Type != TypeRDBFile ||
		!cfg.Common.NoReply || cfg.Common.SourceSafe || cfg.Common.Dir != "/tmp" || cfg.Common.Filter != "abc*" ||
		cfg.Common.RequirePass != "x" || cfg.Common.BigKeyBytes != 1024 || cfg.Common.MaxSpoolBytes != 2048 || cfg.Common.MaxClients != 5 {
		t.Errorf("values: %#v", cfg)
	}
	wantWarn := []string{
		"rmt.conf:7: source.redis_db: ignored: RMT never used it; every db is migrated",
		"rmt.conf:12: common.maxmemory: ignored: rmt spools the stream to disk; see max_spool_bytes",
	}
	if !reflect.DeepEqual(cfg.Warnings, wantWarn) {
		t.Errorf("warnings %q, want %q", cfg.Warnings, wantWarn)
	}
	if got, want := cfg.Inert(), []string{"rmt.conf:13: common.noreply: ignored: rmtd checks every reply of the target (RMT's noreply lost errors)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Inert() = %q, want %q", got, want)
	}
}

func TestLoadRMTConfErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown key and bad values", `[source]
type: single
sevrers:
 - 127.0.0.1:6379
servers:
 - 127.0.0.1
timeout: 3s
[target]
type: redis-cluster
servers: 127.0.0.1:6380
[common]
noreply: yes
threads: two
listen: localhost
`, []string{
			`rmt.conf:3: source.sevrers: unknown key`,
			`rmt.conf:6: source.servers[0]: "127.0.0.1" is not host:port`,
			`rmt.conf:7: source.timeout: "3s" is not a number of milliseconds`,
			`rmt.conf:9: target.type: "redis-cluster" is not one of single, twemproxy, redis cluster, sentinel, rdb file`,
			`rmt.conf:10: target.servers: want a list: "servers:" then one "- 127.0.0.1:6380" line per server`,
			`rmt.conf:12: common.noreply: "yes" is not true or false`,
			`rmt.conf:13: common.threads: "two" is not a number`,
			`rmt.conf:14: common.listen: "localhost" is not host:port`,
		}},
		{"structure", `type: single
[source]
type: single
type: twemproxy
servers:
- 127.0.0.1:6379
just words
[sorce]
type: x
[target
[target]
- 127.0.0.1:6380
[source]
`, []string{
			`rmt.conf:1: "type: single" comes before any [section]`,
			`rmt.conf:4: source.type: duplicate key (first at line 3)`,
			`rmt.conf:7: source.just words: no ':' on the line (want key: value)`,
			`rmt.conf:8: [sorce]: unknown section (want source, target or common)`,
			`rmt.conf:10: "[target" is not a [section] line`,
			`rmt.conf:11: target.servers: no servers: list them as host:port`,
			`rmt.conf:12: target: "- 127.0.0.1:6380": a list item with no key above it (as "servers:")`,
			`rmt.conf:13: source: duplicate section (first at line 2)`,
		}},
		{"hash tag", "[source]\nservers:\n - a:1\n[target]\nservers:\n - b:2\nhash_tag: \"{\"\n", []string{
			`rmt.conf:7: target.hash_tag: "{" is not empty or two characters, as in "{}"`,
		}},
		{"empty", "", []string{`rmt.conf: file is empty: want the sections [source], [target] and [common]`}},
		{"comments", "# a\n\n  # b\n", []string{`rmt.conf: file is empty: want the sections [source], [target] and [common]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadRMTConf("rmt.conf", []byte(tt.text))
			if err == nil {
				t.Fatalf("no error; config %v", cfg)
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestIsRMTConf(t *testing.T) {
	tests := []struct {
		name, text string
		want       bool
	}{
		{"rmt.conf", "source:\n", true},
		{"x.CONF", "", true},
		{"rmt.yaml", "# c\n\n[source]\ntype: single\n", true},
		{"rmt.yaml", "  [common]  \n", true},
		{"rmt.yaml", "[a, b]\n", false},
		{"rmt.yaml", "source:\n  type: single\n", false},
		{"rmt", "[target]\n", true},
		{"rmt", "", false},
	}
	for _, tt := range tests {
		if got := IsRMTConf(tt.name, []byte(tt.text)); got != tt.want {
			t.Errorf("IsRMTConf(%q, %q) = %v", tt.name, tt.text, got)
		}
	}
}
