package redisctl

import (
	"fmt"
	"testing"
)

func TestParseKeyspace(t *testing.T) {
	info := "# Keyspace\r\ndb0:keys=10,expires=1,avg_ttl=5\r\ndb12:keys=3,expires=0,avg_ttl=0\r\n"
	got, err := ParseKeyspace(info)
	if err != nil || fmt.Sprint(got) != "map[0:10 12:3]" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"dbx:keys=1", "db0:keys=-1", "db0:expires=1", "db-1:keys=1"} {
		if _, err := ParseKeyspace(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got, err := ParseKeyspace("# Keyspace\r\n"); err != nil || len(got) != 0 {
		t.Errorf("empty keyspace: %v, %v", got, err)
	}
}

func FuzzParseKeyspace(f *testing.F) {
	f.Add("# Keyspace\r\ndb0:keys=10,expires=1,avg_ttl=5\r\n")
	f.Add("db1:keys=x")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseKeyspace(s)
		if err == nil {
			for db, n := range m {
				if db < 0 || n < 0 {
					t.Fatalf("%q: db %d keys %d", s, db, n)
				}
			}
		}
	})
}
