package verify

import (
	"context"
	"fmt"
	"sort"

	"github.com/mediocregopher/radix/v4"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/internal/redisctl"
)

// sampleKeys draws up to n distinct keys from the source, spread over every (server, db) that
// holds keys in proportion to its size (INFO keyspace). A key is never returned twice. When the
// keyspace holds fewer than n keys, the sample is what exists.
func sampleKeys(ctx context.Context, s *nodeSet, n int, log *zap.Logger) ([]sampledKey, error) {
	type unit struct {
		node *cmdNode
		db   int
	}
	var units []unit
	var sizes []int64
	for _, node := range s.nodes {
		ks, err := node.keyspace(ctx)
		if err != nil {
			return nil, err
		}
		dbs := make([]int, 0, len(ks))
		for db := range ks {
			dbs = append(dbs, db)
		}
		sort.Ints(dbs)
		for _, db := range dbs {
			units = append(units, unit{node, db})
			sizes = append(sizes, ks[db])
		}
	}
	quotas := apportion(n, sizes)
	var out []sampledKey
	notOwned := 0
	for i, u := range units {
		if quotas[i] == 0 {
			continue
		}
		keys, err := sampleDB(ctx, u.node, u.db, sizes[i], quotas[i])
		if err != nil {
			return nil, err
		}
		if len(keys) < quotas[i] {
			log.Info("fewer keys sampled than asked", zap.String("node", u.node.addr), zap.Int("db", u.db),
				zap.Int("wanted", quotas[i]), zap.Int("got", len(keys)))
		}
		for _, k := range keys {
			// A key a cluster master or pool backend holds but does not own (dirty data the
			// migration drops, counted as not_owned) is not checked.
			if s.route != nil && u.db == 0 && s.route(k) != u.node {
				notOwned++
				continue
			}
			out = append(out, sampledKey{node: u.node, db: u.db, key: k})
		}
	}
	if notOwned > 0 {
		log.Warn("sampled keys held by a node that does not own them, not checked", zap.String("side", s.side),
			zap.Int("keys", notOwned))
	}
	return out, nil
}

// sampleDB draws up to want distinct keys of one db holding about size keys. When the db holds
// at most twice as many keys as wanted, SCAN walks it (RANDOMKEY would need many draws to find
// the last few keys); otherwise RANDOMKEY draws, pipelined, give up after 4×want+64 draws.
func sampleDB(ctx context.Context, node *cmdNode, db int, size int64, want int) ([]string, error) {
	hint := min(want, 4096) // want comes from the user: grow as keys come, not up front
	seen := make(map[string]struct{}, hint)
	out := make([]string, 0, hint)
	add := func(k string) {
		if _, dup := seen[k]; dup || len(out) >= want {
			return
		}
		seen[k] = struct{}{}
		out = append(out, k)
	}
	if size <= 2*int64(want) {
		cursor := "0"
		for len(out) < want {
			next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return node.do(ctx, db, a) }, cursor)
			if err != nil {
				return nil, fmt.Errorf("%s: SCAN (db %d): %w", node, db, err)
			}
			for _, k := range keys {
				add(k)
			}
			if next == "0" {
				break
			}
			cursor = next
		}
		return out, nil
	}
	const batch = 128
	keys := make([]string, batch)
	mb := make([]radix.Maybe, batch)
	for draws := 0; len(out) < want && draws < 4*want+64; {
		nb := min(batch, 2*(want-len(out))+8)
		p := radix.NewPipeline()
		for i := 0; i < nb; i++ {
			mb[i] = radix.Maybe{Rcv: &keys[i]}
			p.Append(radix.Cmd(&mb[i], "RANDOMKEY"))
		}
		if err := node.do(ctx, db, p); err != nil {
			return nil, fmt.Errorf("%s: RANDOMKEY (db %d): %w", node, db, err)
		}
		draws += nb
		for i := 0; i < nb; i++ {
			if mb[i].Null {
				return out, nil // the db emptied meanwhile
			}
			add(keys[i])
		}
	}
	return out, nil
}
