package shard

import (
	"fmt"
	"strings"
	"testing"
)

func TestKetamaPoints(t *testing.T) {
	tests := []struct {
		weight, total uint32
		n             int
		want          uint32
	}{
		{1, 1, 1, 160},
		{1, 3, 3, 160},   // float32(1/3) maths lands on 40.000002, floor 40
		{29, 60, 3, 228}, // float32 maths: 39.999996 → 39 hosts; exact arithmetic says 40 (232)
		{1, 60, 3, 8},
		{30, 60, 3, 240},
		{3, 11, 4, 172}, // the "mixed" pool of TestNutcracker
		{1, 121, 4, 4},  // the "names" pool: 40*4/121 = 1.32
	}
	for _, tt := range tests {
		if got := ketamaPoints(tt.weight, tt.total, tt.n); got != tt.want {
			t.Errorf("ketamaPoints(%d, %d, %d) = %d, want %d", tt.weight, tt.total, tt.n, got, tt.want)
		}
	}
}

func TestHashName(t *testing.T) {
	tests := []struct {
		s    Server
		want string
	}{
		{Server{Addr: "127.0.0.1:6379", Weight: 1}, "127.0.0.1:6379"},
		{Server{Addr: "127.0.0.1:6379", Weight: 1, Name: "redis-1"}, "redis-1"},
		{Server{Addr: "cache.local:11211", Weight: 3}, "cache.local"}, // libmemcached compatibility
		{Server{Addr: "cache.local:011211", Weight: 3}, "cache.local"},
		{Server{Addr: "::1:6379", Weight: 1}, "::1:6379"},
		{Server{Addr: "/tmp/redis.sock", Weight: 1}, "/tmp/redis.sock:"},
	}
	for _, tt := range tests {
		if got := tt.s.HashName(); got != tt.want {
			t.Errorf("%+v.HashName() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		line    string
		want    Server
		wantErr bool
	}{
		{line: "127.0.0.1:6379:1", want: Server{Addr: "127.0.0.1:6379", Weight: 1}},
		{line: "127.0.0.1:6379:10 server1", want: Server{Addr: "127.0.0.1:6379", Weight: 10, Name: "server1"}},
		{line: "redis.example.com:7000:2 r", want: Server{Addr: "redis.example.com:7000", Weight: 2, Name: "r"}},
		{line: "/var/run/redis.sock:1 local", want: Server{Addr: "/var/run/redis.sock", Weight: 1, Name: "local"}},
		{line: "127.0.0.1:6379", wantErr: true},      // no weight: "6379" read as the weight, "127.0.0.1" has no port
		{line: "127.0.0.1:6379:0", wantErr: true},    // twemproxy: "has a zero weight"
		{line: "127.0.0.1:6379:-1", wantErr: true},   //
		{line: "127.0.0.1:6379:x", wantErr: true},    //
		{line: "127.0.0.1:99999:1", wantErr: true},   // invalid port
		{line: "127.0.0.1:99999:1 n", wantErr: true}, // checked even with a name
		{line: "127.0.0.1:6379:+1", wantErr: true},   // nc_atoi: digits only
		{line: "127.0.0.1:06379:01 n", want: Server{Addr: "127.0.0.1:06379", Weight: 1, Name: "n"}},
		{line: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseServer(tt.line)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseServer(%q) error = %v, want error %v", tt.line, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("ParseServer(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestHashTag(t *testing.T) {
	tests := []struct {
		key, tag, want string
	}{
		{"user:{42}:name", "{}", "42"},
		{"user:{}:name", "{}", "user:{}:name"}, // empty tag: whole key
		{"{{a}}", "{}", "{a"},
		{"a}b{c", "{}", "a}b{c"}, // no '}' after the '{'
		{"{a}{b}", "{}", "a"},
		{"x:$tag$:y", "$$", "tag"}, // same byte opens and closes
		{"a<b>c", "<>", "b"},
		{"a<b>c", "", "a<b>c"},    // no tag
		{"a<b>c", "<>x", "a<b>c"}, // not two bytes: no tag
		{"", "{}", ""},
	}
	for _, tt := range tests {
		if got := string(HashTag([]byte(tt.key), tt.tag)); got != tt.want {
			t.Errorf("HashTag(%q, %q) = %q, want %q", tt.key, tt.tag, got, tt.want)
		}
	}
}

func TestTwemproxyOrder(t *testing.T) {
	servers := []Server{
		{Addr: "127.0.0.1:7001", Weight: 1},                   // "127.0.0.1:7001"
		{Addr: "127.0.0.1:7000", Weight: 1, Name: "zz"},       // "zz"
		{Addr: "127.0.0.1:7002", Weight: 1, Name: "b"},        // "b"
		{Addr: "127.0.0.1:7003", Weight: 1, Name: "\xc3\xa4"}, // 2 bytes, after "zz"? no: 0xc3 > 'z'
		{Addr: "127.0.0.1:6999", Weight: 1},                   // "127.0.0.1:6999" < "127.0.0.1:7001"
	}
	order, err := twemproxyOrder(servers)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(order)
	if want := "[2 1 3 4 0]"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
}

func TestNewRingErrors(t *testing.T) {
	one := []Server{{Addr: "127.0.0.1:6379", Weight: 1}}
	tests := []struct {
		name                string
		servers             []Server
		hash, dist, hashTag string
	}{
		{"no servers", nil, "", "", ""},
		{"unknown hash", one, "murmur3", "", ""},
		{"unknown distribution", one, "", "vnode", ""},
		{"tag of one byte", one, "", "", "{"},
		{"tag of three bytes", one, "", "", "{}}"},
		{"zero weight", []Server{{Addr: "127.0.0.1:6379"}}, "", "", ""},
		{"no port", []Server{{Addr: "localhost", Weight: 1}}, "", "", ""},
		{"same name", []Server{{Addr: "a:1", Weight: 1, Name: "x"}, {Addr: "b:1", Weight: 1, Name: "x"}}, "", "", ""},
		{"same default name", []Server{{Addr: "a:1", Weight: 1}, {Addr: "a:1", Weight: 2}}, "", "", ""},
		{"name equals a default name", []Server{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 1, Name: "a:1"}}, "", "", ""},
	}
	for _, tt := range tests {
		if _, err := NewRing(tt.servers, tt.hash, tt.dist, tt.hashTag); err == nil {
			t.Errorf("%s: NewRing gave no error", tt.name)
		}
	}
}

func TestRingDefaults(t *testing.T) {
	servers := []Server{{Addr: "127.0.0.1:7000", Weight: 1}, {Addr: "127.0.0.1:7001", Weight: 1}}
	def, err := NewRing(servers, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := NewRing(servers, "fnv1a_64", "ketama", "")
	if err != nil {
		t.Fatal(err)
	}
	if def.Distribution() != Ketama || !def.Deterministic() || def.Len() != 2 {
		t.Errorf("defaults: %s, deterministic %v, len %d", def.Distribution(), def.Deterministic(), def.Len())
	}
	for _, k := range testKeys(7, 500) {
		if a, b := def.Pick(k), explicit.Pick(k); a != b {
			t.Fatalf("Pick(%q): default ring %d, fnv1a_64/ketama %d", k, a, b)
		}
	}
}

// TestPickSingleServer: a pool of one server takes every key, whatever the distribution.
func TestPickSingleServer(t *testing.T) {
	for _, dist := range []string{Ketama, Modula, Random} {
		r, err := NewRing([]Server{{Addr: "127.0.0.1:7000", Weight: 5}}, "md5", dist, "{}")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range testKeys(3, 100) {
			if got := r.Pick(k); got != 0 {
				t.Fatalf("%s: Pick(%q) = %d", dist, k, got)
			}
		}
	}
}

func TestPickRandom(t *testing.T) {
	servers := []Server{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 100}, {Addr: "c:1", Weight: 1}}
	r, err := NewRing(servers, "", Random, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Deterministic() || r.Distribution() != Random {
		t.Fatalf("random ring: deterministic %v, distribution %s", r.Deterministic(), r.Distribution())
	}
	counts := make([]int, len(servers))
	for range 3000 {
		counts[r.Pick([]byte("same key"))]++
	}
	for i, c := range counts { // uniform, weights ignored: ~1000 each
		if c < 800 || c > 1200 {
			t.Errorf("server %d picked %d times of 3000: not uniform", i, c)
		}
	}
}

// TestPickModula checks modula's arithmetic by hand: crc32a of "a" is 0xe8b7be43 = 3904355907;
// servers sorted "s1" (weight 2), "s2" (weight 3): 3904355907 % 5 = 2, the first slot of s2.
func TestPickModula(t *testing.T) {
	servers := []Server{{Addr: "x:2", Weight: 3, Name: "s2"}, {Addr: "x:1", Weight: 2, Name: "s1"}}
	r, err := NewRing(servers, "crc32a", Modula, "")
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Hash([]byte("a")); h != 3904355907 {
		t.Fatalf("Hash(a) = %d", h)
	}
	if got := r.Pick([]byte("a")); got != 0 {
		t.Errorf("Pick(a) = %d, want 0 (s2)", got)
	}
	// "" hashes to 0: slot 0, s1.
	if got := r.Pick(nil); got != 1 {
		t.Errorf("Pick(\"\") = %d, want 1 (s1)", got)
	}
}

func BenchmarkPick(b *testing.B) {
	servers := make([]Server, 16)
	for i := range servers {
		servers[i] = Server{Addr: fmt.Sprintf("10.0.0.%d:6379", i+1), Weight: 1 + i%3}
	}
	key := []byte("user:{1234567}:session:" + strings.Repeat("x", 10))
	for _, dist := range []string{Ketama, Modula} {
		r, err := NewRing(servers, "fnv1a_64", dist, "{}")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(dist, func(b *testing.B) {
			b.ReportAllocs()
			s := 0
			for b.Loop() {
				s += r.Pick(key)
			}
			sink = fmt.Sprint(s)
		})
	}
}
