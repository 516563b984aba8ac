package redistest

import (
	"fmt"
	"testing"
)

// MergeDatasets joins the datasets of several servers that split a keyspace between them (the
// masters of a cluster, the backends of a twemproxy pool) into one, named name. A key present
// in two of them fails the test.
func MergeDatasets(t testing.TB, name string, parts ...*Dataset) *Dataset {
	t.Helper()
	d, err := Merge(name, parts...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return d
}

// Merge is MergeDatasets returning an error. Functions are taken from the first part that has
// them (every master of a cluster holds the same libraries); Detailed and FieldTTL hold if they
// hold for every part.
func Merge(name string, parts ...*Dataset) (*Dataset, error) {
	out := &Dataset{Source: name, DBs: map[int]map[string]*Value{}, Detailed: true, FieldTTL: true}
	for _, p := range parts {
		out.Detailed = out.Detailed && p.Detailed
		out.FieldTTL = out.FieldTTL && p.FieldTTL
		if out.Functions == nil && p.Functions != nil {
			out.Functions = p.Functions
		}
		for db, keys := range p.DBs {
			dst := out.DBs[db]
			if dst == nil {
				dst = map[string]*Value{}
				out.DBs[db] = dst
			}
			for k, v := range keys {
				if _, dup := dst[k]; dup {
					return nil, fmt.Errorf("merge %s: db %d key %s is in two parts (second: %s)", name, db, Escape(k), p.Source)
				}
				dst[k] = v
			}
		}
	}
	return out, nil
}
