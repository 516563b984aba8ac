package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mapEnv(m map[string]string) LookupEnv {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

func TestExpandEnv(t *testing.T) {
	env := mapEnv(map[string]string{"A": "alpha", "EMPTY": "", "N": "42"})
	tests := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x${A}y${N}z", "xalphay42z", ""},
		{"${UNSET:-dflt}", "dflt", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${EMPTY}", "", ""},
		{"${A:-dflt}", "alpha", ""},
		{"${UNSET:-}", "", ""},
		{"$${A}", "${A}", ""},
		{"pa$$w0rd$", "pa$$w0rd$", ""},
		{"${UNSET}", "", "${UNSET} is not set"},
		{"${A", "", "without its closing }"},
		{"${1A}", "", "not a variable name"},
		{"${}", "", "not a variable name"},
		{"${A B}", "", "not a variable name"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %q, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestLoadEnvExpands(t *testing.T) {
	env := mapEnv(map[string]string{"SRC": "10.0.0.1:6379", "THREADS": "3", "PASS": "s3cret", "SAFE": "false"})
	cfg, err := LoadEnv("x.yaml", []byte(`
source:
  servers:
    - ${SRC}
    - "${OTHER:-10.0.0.2:6379}"
target:
  servers: [127.0.0.1:7000]
  redis_auth: ${PASS}
common:
  threads: ${THREADS}
  source_safe: ${SAFE}
  requirepass: "${THREADS}"
`), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Source.Servers, ","); got != "10.0.0.1:6379,10.0.0.2:6379" {
		t.Errorf("servers %q", got)
	}
	if cfg.Target.RedisAuth != "s3cret" || cfg.Common.Threads != 3 || cfg.Common.SourceSafe || cfg.Common.RequirePass != "3" {
		t.Errorf("got %+v %+v", cfg.Target, cfg.Common)
	}
	_, err = LoadEnv("x.yaml", []byte("source:\n  servers: [a:1]\ntarget:\n  servers: [b:2]\ncommon:\n  dir: ${DIR}\n  threads: ${T:-x}\n"), env)
	want := "x.yaml:6: common.dir: ${DIR} is not set (set it, or give a default: ${DIR:-value})\n" +
		`x.yaml:7: common.threads: "x" is not an integer`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"RMT_SOURCE_SERVERS":        "10.0.0.1:6379, 10.0.0.2:6379",
		"RMT_SOURCE_TYPE":           "redis cluster",
		"RMT_TARGET_SERVERS":        "127.0.0.1:7000",
		"RMT_TARGET_AUTH":           "user:pw",
		"RMT_COMMON_THREADS":        "2",
		"RMT_COMMON_METRICS_LISTEN": "127.0.0.1:9121",
		"RMT_SOURCE_TLS_ENABLED":    "false",
		"HOME":                      "/root",
	}
	environ := func(m map[string]string) []string {
		var out []string
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		return out
	}
	cfg, err := FromEnv(environ(env), mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File = "environment"
	want.Source.Type = TypeRedisCluster
	want.Source.Servers = []string{"10.0.0.1:6379", "10.0.0.2:6379"}
	want.Target.Servers = []string{"127.0.0.1:7000"}
	want.Target.RedisAuth = "user:pw"
	want.Common.Threads = 2
	want.Common.MetricsListen = "127.0.0.1:9121"
	if !sameConfig(cfg, want) {
		t.Errorf("got  %v\nwant %v", cfg, want)
	}

	env["RMT_COMMON_THREADS"] = "many"
	env["RMT_SOURCE_SERVRES"] = "typo"
	env["RMT_TARGET_SERVERS"] = "nohost"
	_, err = FromEnv(environ(env), mapEnv(env))
	for _, w := range []string{
		`RMT_COMMON_THREADS: common.threads: "many" is not an integer`,
		"RMT_SOURCE_SERVRES: not a setting of rmtd",
		`RMT_TARGET_SERVERS: target.servers[0]: "nohost" is not host:port`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors %v lack %q", err, w)
		}
	}

	if cfg, err := FromEnv([]string{"HOME=/root"}, mapEnv(map[string]string{"HOME": "/root"})); cfg != nil || err != nil {
		t.Errorf("an environment without servers: %v, %v; want nil, nil", cfg, err)
	}
}

func TestRedisAuthFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "password")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "source:\n  servers: [a:1]\n  redis_auth_file: " + secret + "\ntarget:\n  servers: [b:2]\n"
	cfg, err := Load("x.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if u, p := cfg.Source.Auth(); u != "" || p != "s3cret" {
		t.Errorf("Auth() = %q, %q", u, p)
	}
	if r := cfg.Redacted(); strings.Contains(r.String(), "s3cret") {
		t.Errorf("secret shown: %s", r.String())
	}
	for _, tt := range []struct{ yaml, want string }{
		{strings.Replace(base, "  redis_auth_file:", "  redis_auth: pw\n  redis_auth_file:", 1), "x.yaml:4: source.redis_auth_file: set with source.redis_auth: give one of them"},
		{strings.Replace(base, secret, filepath.Join(dir, "none"), 1), "x.yaml:3: source.redis_auth_file: open "},
	} {
		if _, err := Load("x.yaml", []byte(tt.yaml)); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q...", tt.yaml, err, tt.want)
		}
	}
}

func TestNewKeysValidated(t *testing.T) {
	base := "source:\n  servers: [a:1]\ntarget:\n  servers: [b:2]\n"
	tests := []struct{ extra, want string }{
		{"source:\n  type: sentinel\n  servers: [s:26379]\ntarget:\n  servers: [b:2]\n",
			"x.yaml:1: source.master_name: empty: a sentinel pool names the master the Sentinels watch"},
		{"source:\n  servers: [a:1]\n  master_name: m\ntarget:\n  servers: [b:2]\n", "x.yaml:3: source.master_name: only for type sentinel"},
		{"source:\n  type: rdb file\n  servers: [env_test.go]\n  mode: scan\ntarget:\n  servers: [b:2]\n",
			`x.yaml:4: source.mode: "scan" reads a live server, not files (type rdb file)`},
		{"source:\n  servers: [a:1]\n  mode: sync\ntarget:\n  servers: [b:2]\n", `x.yaml:3: source.mode: "sync" is not one of psync, scan, scan_live`},
		{base + "  psync_command: PSYNC-AWS\n", "x.yaml:5: target.psync_command: only a source has it"},
		{"source:\n  servers: [a:1]\n  psync_command: \"\"\ntarget:\n  servers: [b:2]\n", `x.yaml:3: source.psync_command: "" is not a command name`},
		{"source:\n  servers: [a:1]\n  prefer_replica: true\ntarget:\n  servers: [b:2]\n",
			"x.yaml:3: source.prefer_replica: only for types redis cluster and sentinel"},
		{base + "common:\n  shard: 2/2\n", `x.yaml:6: common.shard: "2/2" is not i/n with 0 <= i < n, as in 0/2`},
		{base + "common:\n  target_not_empty: keep\n", `x.yaml:6: common.target_not_empty: "keep" is not one of refuse, merge, flush`},
		{base + "common:\n  listen: 127.0.0.1:8888\n  metrics_listen: 127.0.0.1:8888\n",
			`x.yaml:7: common.metrics_listen: "127.0.0.1:8888" is the admin port's address too`},
	}
	for _, tt := range tests {
		if _, err := Load("x.yaml", []byte(tt.extra)); err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n got %v\nwant %s", tt.extra, err, tt.want)
		}
	}
	cfg, err := Load("x.yaml", []byte(base+"common:\n  shard: 1/3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if i, n := cfg.Common.ShardRule(); i != 1 || n != 3 {
		t.Errorf("ShardRule() = %d, %d", i, n)
	}
}
