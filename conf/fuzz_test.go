package conf

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func addSeeds(f *testing.F) {
	f.Add([]byte(good))
	if b, err := os.ReadFile(filepath.Join("..", "rmt.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(rmtReadme))
	f.Add([]byte(rmtSample))
	for _, s := range []string{"", "~", "- a", "source: *x", "&a [*a]", "a: &a [*a, *a]\n",
		"source:\n  <<: {type: single}\n", "source: !!binary aGVsbG8=\n", "---\n---\n",
		"source:\n  servers: [a:1, [b], {c: d}, ~]\n", "common:\n  max_clients: 0x7fffffffffffffff\n",
		"[source]\n- a\nservers:\n-\n", "[common]\nthreads: -1\ntimeout: 99999999999999999999\n"} {
		f.Add([]byte(s))
	}
}

// FuzzLoad: Load never panics; what it accepts validates, matches yaml.v3's own strict decoding
// (KnownFields) of the same text, and renders (String) to text that loads back the same.
func FuzzLoad(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load("f.yaml", data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config and error both returned")
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted what Validate refuses: %v", err)
		}
		strict := Default()
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(strict); err != nil {
			t.Fatalf("Load accepted what yaml.v3 KnownFields refuses: %v", err)
		}
		strict.File = cfg.File
		if !sameConfig(cfg, strict) {
			t.Fatalf("Load and yaml.v3 disagree:\n%v\n%v", cfg, strict)
		}
		back, err := Load("f.yaml", []byte(cfg.String()))
		if err != nil && !strings.Contains(cfg.String(), RedactedMark) {
			t.Fatalf("String() does not load back: %v\n%s", err, cfg.String())
		}
		if err == nil && cfg.Source.RedisAuth == "" && cfg.Target.RedisAuth == "" && cfg.Common.RequirePass == "" && !sameConfig(back, cfg) {
			t.Fatalf("round trip:\n%v\n%v", cfg, back)
		}
	})
}

// FuzzLoadRMTConf: the legacy reader never panics, and what it accepts validates.
func FuzzLoadRMTConf(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadRMTConf("f.conf", data)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted what Validate refuses: %v", err)
		}
	})
}
