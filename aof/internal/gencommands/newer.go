package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// jsonCommand is the part of Redis's src/commands/*.json the table needs.
type jsonCommand struct {
	Since    string     `json:"since"`
	Arity    int64      `json:"arity"`
	Flags    []string   `json:"command_flags"`
	KeySpecs []jsonSpec `json:"key_specs"`
}

type jsonSpec struct {
	Flags       []string `json:"flags"`
	BeginSearch struct {
		Index   *struct{ Pos int64 } `json:"index"`
		Keyword *struct {
			Keyword   string
			StartFrom int64
		} `json:"keyword"`
	} `json:"begin_search"`
	FindKeys struct {
		Range *struct {
			LastKey int64
			Step    int64
			Limit   int64
		} `json:"range"`
		Keynum *struct {
			KeyNumIdx int64
			FirstKey  int64
			Step      int64
		} `json:"keynum"`
	} `json:"find_keys"`
}

// addNewer adds the commands of the JSON file that cmds (the server's reply) lacks: top-level
// ones ("NAME") and subcommands of containers the server has ("CONTAINER|SUB").
func addNewer(cmds []*command, path string) ([]*command, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	byName := map[string]*command{}
	for _, c := range cmds {
		byName[c.name] = c
		for _, s := range c.subs {
			byName[s.name] = s
		}
	}
	var names []string
	for n := range all {
		if !strings.HasPrefix(n, "_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		name := strings.ToLower(n)
		if byName[name] != nil {
			continue // the server knows it: its own answer wins
		}
		var jc jsonCommand
		if err := json.Unmarshal(all[n], &jc); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, n, err)
		}
		c, err := fromJSON(name, jc)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, n, err)
		}
		if parent, _, ok := strings.Cut(name, "|"); ok {
			p := byName[parent]
			if p == nil {
				return nil, fmt.Errorf("%s: %s: no container %q", path, n, parent)
			}
			p.subs = append(p.subs, c)
			sort.Slice(p.subs, func(i, j int) bool { return p.subs[i].name < p.subs[j].name })
		} else {
			cmds = append(cmds, c)
		}
		byName[name] = c
	}
	return cmds, nil
}

// fromJSON builds a command as COMMAND would show it: flags in lower case, movablekeys when a
// spec is not index+range, and the legacy first/last/step from the index+range specs.
func fromJSON(name string, jc jsonCommand) (*command, error) {
	c := &command{name: name, arity: jc.Arity, since: jc.Since}
	for _, f := range jc.Flags {
		c.flags = append(c.flags, strings.ToLower(f))
	}
	movable := false
	for _, js := range jc.KeySpecs {
		var ks keySpec
		for _, f := range js.Flags {
			if strings.ToUpper(f) == f && len(f) == 2 {
				ks.flags = append(ks.flags, f) // RO RW OW RM
			} else {
				ks.flags = append(ks.flags, strings.ToLower(f))
			}
		}
		switch bs := js.BeginSearch; {
		case bs.Index != nil:
			ks.begin, ks.index = "index", bs.Index.Pos
		case bs.Keyword != nil:
			ks.begin, ks.keyword, ks.startFrom = "keyword", bs.Keyword.Keyword, bs.Keyword.StartFrom
		default:
			ks.begin = "unknown"
		}
		switch fk := js.FindKeys; {
		case fk.Range != nil:
			ks.find, ks.lastKey, ks.keyStep, ks.limit = "range", fk.Range.LastKey, fk.Range.Step, fk.Range.Limit
		case fk.Keynum != nil:
			ks.find, ks.keyNumIdx, ks.firstKey, ks.keyStep = "keynum", fk.Keynum.KeyNumIdx, fk.Keynum.FirstKey, fk.Keynum.Step
		default:
			ks.find = "unknown"
		}
		c.specs = append(c.specs, ks)
		if ks.begin != "index" || ks.find != "range" {
			movable = true
			continue
		}
		// Redis's populateCommandLegacyRangeSpec, for the common case of adjacent ranges.
		last := ks.index + ks.lastKey
		if ks.lastKey < 0 {
			last = ks.lastKey
		}
		if c.firstKey == 0 {
			c.firstKey, c.lastKey, c.step = ks.index, last, ks.keyStep
		} else if ks.lastKey >= 0 && last > c.lastKey {
			c.lastKey = last
		}
	}
	if movable {
		c.flags = append(c.flags, "movablekeys")
	}
	return c, nil
}
