package confpool

import (
	"reflect"
	"strings"
	"testing"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/shard"
)

func TestServers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pool    conf.Pool
		want    []shard.Server
		wantErr string
	}{
		{"single", conf.Pool{Type: conf.TypeSingle, Servers: []string{"127.0.0.1:6379"}},
			[]shard.Server{{Addr: "127.0.0.1:6379", Weight: 1}}, ""},
		{"twemproxy", conf.Pool{Type: conf.TypeTwemproxy, Servers: []string{"10.0.0.1:6379:1 a", "[::1]:6380:3"}},
			[]shard.Server{{Addr: "10.0.0.1:6379", Weight: 1, Name: "a"}, {Addr: "[::1]:6380", Weight: 3}}, ""},
		{"files", conf.Pool{Type: conf.TypeRDBFile, Servers: []string{"/data/dump.rdb"}}, []shard.Server{{Addr: "/data/dump.rdb"}}, ""},
		{"none", conf.Pool{Type: conf.TypeTwemproxy}, []shard.Server{}, ""},
		{"no weight", conf.Pool{Type: conf.TypeTwemproxy, Servers: []string{"10.0.0.1:6379:1", "10.0.0.2:6379"}}, nil, "servers[1]: "},
		{"not host:port", conf.Pool{Type: conf.TypeRedisCluster, Servers: []string{"nowhere"}}, nil, "servers[0]: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Servers(tc.pool)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one starting %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
