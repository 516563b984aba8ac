package redistest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

// DatasetFromFixtureJSON reads a fixture's expected contents (testdata/rdb/X.json, format in
// testdata/README.md) into a Dataset, skipping keys whose expire_ms has already passed. The
// fixture lacks stream details (entries-read, consumers by name, PELs): Detailed is false, so
// Diff compares only what both sides have.
func DatasetFromFixtureJSON(path string) (*Dataset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fixture: %w", err)
	}
	return DatasetFromFixtureBytes(path, data)
}

// DatasetFromFixtureBytes is DatasetFromFixtureJSON for JSON already read; path names it in
// errors and in Dataset.Source.
func DatasetFromFixtureBytes(path string, data []byte) (*Dataset, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var root map[string]json.RawMessage
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("fixture %s: %w", path, err)
	}
	ds := &Dataset{Source: path, DBs: map[int]map[string]*Value{}}
	now := time.Now().UnixMilli()
	for name, raw := range root {
		if name == "functions" {
			if err := fixtureFunctions(ds, raw); err != nil {
				return nil, fmt.Errorf("fixture %s: functions: %w", path, err)
			}
			continue
		}
		db, err := strconv.Atoi(name)
		if err != nil {
			return nil, fmt.Errorf("fixture %s: top-level key %q is neither a db nor functions", path, name)
		}
		var keys map[string]fixtureKey
		if err := decodeNumbers(raw, &keys); err != nil {
			return nil, fmt.Errorf("fixture %s: db %d: %w", path, db, err)
		}
		values := map[string]*Value{}
		for k, fk := range keys {
			v, err := fk.value()
			if err != nil {
				return nil, fmt.Errorf("fixture %s: db %d key %s: %w", path, db, Escape(latin1(k)), err)
			}
			if v.ExpireMs != 0 && v.ExpireMs <= now {
				continue
			}
			values[latin1(k)] = v
		}
		if len(values) > 0 {
			ds.DBs[db] = values
		}
	}
	for _, db := range ds.DBs {
		for _, v := range db {
			if len(v.FieldExpireMs) > 0 {
				ds.FieldTTL = true
			}
		}
	}
	return ds, nil
}

type fixtureKey struct {
	Type          string                 `json:"type"`
	ExpireMs      *json.Number           `json:"expire_ms"`
	Value         json.RawMessage        `json:"value"`
	FieldExpireMs map[string]json.Number `json:"field_expire_ms"`
}

type fixtureStream struct {
	Entries         [][2]json.RawMessage `json:"entries"`
	Length          int64                `json:"length"`
	LastGeneratedID string               `json:"last_generated_id"`
	Groups          []struct {
		Name            string `json:"name"`
		LastDeliveredID string `json:"last_delivered_id"`
		Pending         int64  `json:"pending"`
		Consumers       int64  `json:"consumers"`
	} `json:"groups"`
}

func decodeNumbers(raw json.RawMessage, into interface{}) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(into)
}

func (fk fixtureKey) value() (*Value, error) {
	v := &Value{Type: fk.Type}
	if fk.ExpireMs != nil {
		ms, err := fk.ExpireMs.Int64()
		if err != nil {
			return nil, fmt.Errorf("expire_ms: %w", err)
		}
		v.ExpireMs = ms
	}
	for f, n := range fk.FieldExpireMs {
		ms, err := n.Int64()
		if err != nil {
			return nil, fmt.Errorf("field_expire_ms: %w", err)
		}
		if v.FieldExpireMs == nil {
			v.FieldExpireMs = map[string]int64{}
		}
		v.FieldExpireMs[latin1(f)] = ms
	}
	var err error
	switch fk.Type {
	case "string":
		var s string
		err = json.Unmarshal(fk.Value, &s)
		v.Str = latin1(s)
	case "list":
		err = json.Unmarshal(fk.Value, &v.List)
		latin1All(v.List)
	case "set":
		err = json.Unmarshal(fk.Value, &v.Set)
		latin1All(v.Set)
		sort.Strings(v.Set) // sorted by code point in the JSON; by byte here
	case "hash":
		var h map[string]string
		err = json.Unmarshal(fk.Value, &h)
		v.Hash = make(map[string]string, len(h))
		for f, x := range h {
			v.Hash[latin1(f)] = latin1(x)
		}
	case "zset":
		var pairs [][2]interface{}
		if err = decodeNumbers(fk.Value, &pairs); err == nil {
			for _, p := range pairs {
				m, ok := p[0].(string)
				if !ok {
					return nil, fmt.Errorf("zset member %v is not a string", p[0])
				}
				score, err := fixtureScore(p[1])
				if err != nil {
					return nil, err
				}
				v.ZSet = append(v.ZSet, ZMember{Member: latin1(m), Score: score})
			}
		}
	case "stream":
		v.Stream, err = fixtureStreamValue(fk.Value)
	default:
		return nil, fmt.Errorf("type %q not supported by the harness", fk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s value: %w", fk.Type, err)
	}
	return v, nil
}

func fixtureScore(x interface{}) (float64, error) {
	switch x := x.(type) {
	case string:
		return strconv.ParseFloat(x, 64)
	case json.Number:
		return strconv.ParseFloat(string(x), 64)
	default:
		return 0, fmt.Errorf("zset score %v is neither a string nor a number", x)
	}
}

func fixtureStreamValue(raw json.RawMessage) (*Stream, error) {
	var fs fixtureStream
	if err := json.Unmarshal(raw, &fs); err != nil {
		return nil, err
	}
	s := &Stream{Length: fs.Length, LastGeneratedID: fs.LastGeneratedID}
	for _, e := range fs.Entries {
		var id string
		var fields []string
		if err := json.Unmarshal(e[0], &id); err != nil {
			return nil, fmt.Errorf("entry id: %w", err)
		}
		if err := json.Unmarshal(e[1], &fields); err != nil {
			return nil, fmt.Errorf("entry %s fields: %w", id, err)
		}
		latin1All(fields)
		s.Entries = append(s.Entries, StreamEntry{ID: id, Fields: fields})
	}
	for _, g := range fs.Groups {
		s.Groups = append(s.Groups, StreamGroup{
			Name: latin1(g.Name), LastDeliveredID: g.LastDeliveredID, Pending: g.Pending, ConsumerCount: g.Consumers,
		})
	}
	sort.Slice(s.Groups, func(i, j int) bool { return s.Groups[i].Name < s.Groups[j].Name })
	return s, nil
}

func fixtureFunctions(ds *Dataset, raw json.RawMessage) error {
	var libs []struct {
		Name string `json:"library_name"`
		Code string `json:"library_code"`
	}
	if err := json.Unmarshal(raw, &libs); err != nil {
		return err
	}
	ds.Functions = map[string]string{}
	for _, l := range libs {
		ds.Functions[latin1(l.Name)] = latin1(l.Code)
	}
	return nil
}

// latin1 turns a JSON string whose code points stand for bytes (0xff is "\u00ff") back into
// those bytes. Code points above 0xff cannot come from the fixtures; they are kept as UTF-8.
func latin1(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r <= 0xff {
			b = append(b, byte(r))
		} else {
			b = append(b, string(r)...)
		}
	}
	return string(b)
}

func latin1All(ss []string) {
	for i := range ss {
		ss[i] = latin1(ss[i])
	}
}
