package test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layoutRules are DESIGN.md's "may import" column: which of our packages each may import
// (a prefix ending in "/" stands for every package under it). cmd/rmtd, test and the test
// harness may import anything.
var layoutRules = map[string][]string{
	"conf":              nil,
	"rdb":               nil,
	"aof":               {"rdb", "aof/"},
	"source":            {"rdb", "aof", "internal/"},
	"target":            {"rdb", "aof", "internal/"},
	"daemon":            {"conf", "rdb", "aof", "source", "target", "daemon/status", "daemon/admin", "internal/"},
	"daemon/status":     {"internal/"},
	"daemon/admin":      {"daemon/status", "internal/"},
	"daemon/verify":     {"conf", "internal/"},
	"internal/topology": {"internal/shard"},
	"internal/shard":    nil,
	"internal/glob":     nil,
	"internal/redisctl": nil,
	"internal/redisfmt": nil,
	"internal/confpool": {"conf", "internal/"},
}

// TestLayout: every package imports only what DESIGN.md's layout allows it (source and target
// never each other, nor daemon; daemon never verify), and every package is in the table.
func TestLayout(t *testing.T) {
	const mod = "github.com/rmt-project/rmt/"
	out, err := exec.Command("go", "list", "-json", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, mod)
		if name == "cmd/rmtd" || name == "test" || strings.HasPrefix(name, "internal/redistest") ||
			strings.HasPrefix(name, "internal/testcert") || strings.HasPrefix(name, "aof/internal/") ||
			strings.HasPrefix(name, "daemon/status/statustest") {
			continue
		}
		allowed, ok := layoutRules[name]
		if !ok {
			t.Errorf("package %s is not in the layout table (DESIGN.md, and layoutRules here)", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, mod)
			if !ours {
				continue
			}
			if !slices.ContainsFunc(allowed, func(a string) bool {
				return dep == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a))
			}) {
				t.Errorf("%s imports %s, which the layout does not allow", name, dep)
			}
		}
	}
}
