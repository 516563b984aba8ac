package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mediocregopher/radix/v4"
	"github.com/mediocregopher/radix/v4/resp/resp3"

	"github.com/rmt-project/rmt/internal/redisctl"
	"github.com/rmt-project/rmt/internal/redisfmt"
	"github.com/rmt-project/rmt/internal/shard"
	"github.com/rmt-project/rmt/internal/topology"
)

// What a target holds, apart from the data rmtd writes into it: before a job loads anything,
// the daemon asks whether the target is empty (Inventory), and before a snapshot replaces one
// of its own, it removes what that source node loaded (DeleteKeys). Both work node by node:
// the single server, a cluster's masters, a pool's backends; an rdb file holds nothing yet.

// Inventory is what a target holds besides rmtd's own keys.
type Inventory struct {
	Keys   int64    // keys in every db of every data node, rmtd's own left out
	Sample []string // some of their names, as redis-cli quotes them
}

// inventorySample is how many key names an Inventory shows.
const inventorySample = 5

// dataNode is one server of a target that holds keys.
type dataNode struct {
	addr   string
	dialer radix.Dialer
}

// dataNodes are the servers of a target, for its inventory.
func dataNodesOf(o Options, addrs []string) []dataNode {
	d := redisctl.NewDialer(o.Username, o.Password, o.TLS, o.Timeout)
	out := make([]dataNode, len(addrs))
	for i, a := range addrs {
		out[i] = dataNode{addr: a, dialer: d}
	}
	return out
}

// inventory counts the keys of nodes outside rmtd's own (those starting with own + ":"); with
// owns, only those it reports (found by SCAN).
func inventory(ctx context.Context, nodes []dataNode, owns func(db int, key []byte) bool, own string) (Inventory, error) {
	if owns != nil {
		return ownedInventory(ctx, nodes, owns, own)
	}
	var inv Inventory
	for _, n := range nodes {
		err := n.do(ctx, func(c radix.Conn) error {
			dbs, err := keyspace(ctx, c)
			if err != nil {
				return err
			}
			for db, keys := range dbs {
				if keys == 0 {
					continue
				}
				if err := c.Do(ctx, radix.Cmd(nil, "SELECT", strconv.Itoa(db))); err != nil {
					return err
				}
				mine := int64(0)
				if db == 0 && own != "" {
					if mine, err = countMatching(ctx, c, own+":*"); err != nil {
						return err
					}
				}
				inv.Keys += keys - mine
				if len(inv.Sample) < inventorySample && keys > mine {
					if err := sampleKeys(ctx, c, own, db, &inv.Sample); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return inv, fmt.Errorf("target %s: %w", n.addr, err)
		}
	}
	return inv, nil
}

// ownedInventory is inventory over the keys owns reports: every db of every node scanned.
func ownedInventory(ctx context.Context, nodes []dataNode, owns func(db int, key []byte) bool, own string) (Inventory, error) {
	var inv Inventory
	for _, n := range nodes {
		err := n.do(ctx, func(c radix.Conn) error {
			return ownedKeys(ctx, c, owns, own, func(db int, keys []string) error {
				inv.Keys += int64(len(keys))
				for _, k := range keys[:min(len(keys), inventorySample-len(inv.Sample))] {
					inv.Sample = append(inv.Sample, sampleName(db, k))
				}
				return nil
			})
		})
		if err != nil {
			return inv, fmt.Errorf("target %s: %w", n.addr, err)
		}
	}
	return inv, nil
}

// ownedKeys scans every db of the server c is connected to and gives page, a SCAN page at a
// time, the keys owns reports, rmtd's own (under own + ":") left out.
func ownedKeys(ctx context.Context, c radix.Conn, owns func(db int, key []byte) bool, own string, page func(db int, keys []string) error) error {
	dbs, err := keyspace(ctx, c)
	if err != nil {
		return err
	}
	for db, n := range dbs {
		if n == 0 {
			continue
		}
		if err := c.Do(ctx, radix.Cmd(nil, "SELECT", strconv.Itoa(db))); err != nil {
			return err
		}
		cursor := "0"
		for {
			next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return c.Do(ctx, a) }, cursor)
			if err != nil {
				return err
			}
			var mine []string
			for _, k := range keys {
				if (own == "" || !strings.HasPrefix(k, own+":")) && owns(db, []byte(k)) {
					mine = append(mine, k)
				}
			}
			if len(mine) > 0 {
				if err := page(db, mine); err != nil {
					return err
				}
			}
			if cursor = next; cursor == "0" {
				break // the next db
			}
		}
	}
	return nil
}

// sampleName is a key's name in an Inventory's sample: quoted as redis-cli does, with its db.
func sampleName(db int, key string) string {
	name := redisfmt.Quote(key)
	if db != 0 {
		name = "db" + strconv.Itoa(db) + ":" + name
	}
	return name
}

// deleteKeys removes, from every db of nodes, the keys owns says are a source node's (every
// key when owns is nil, by FLUSHALL), leaving rmtd's own alone; it returns how many it removed.
func deleteKeys(ctx context.Context, nodes []dataNode, owns func(db int, key []byte) bool, own string) (int64, error) {
	var removed int64
	for _, n := range nodes {
		err := n.do(ctx, func(c radix.Conn) error {
			dbs, err := keyspace(ctx, c)
			if err != nil {
				return err
			}
			if owns == nil {
				for _, keys := range dbs {
					removed += keys
				}
				if err := c.Do(ctx, radix.Cmd(nil, "FLUSHALL")); err != nil {
					return err
				}
				// Function libraries outlive FLUSHALL; a server before 7.0 has none (and refuses).
				if err := c.Do(ctx, radix.Cmd(nil, "FUNCTION", "FLUSH")); err != nil && !isRadixReplyError(err) {
					return err
				}
				return nil
			}
			return ownedKeys(ctx, c, owns, own, func(_ int, doomed []string) error {
				n, err := unlink(ctx, c, doomed)
				removed += n
				return err
			})
		})
		if err != nil {
			return removed, fmt.Errorf("target %s: %w", n.addr, err)
		}
	}
	return removed, nil
}

// unlink removes keys with one UNLINK, or, on a cluster node that refuses keys of several
// slots in one command (CROSSSLOT), one UNLINK per slot.
func unlink(ctx context.Context, c radix.Conn, keys []string) (int64, error) {
	var n int64
	err := c.Do(ctx, radix.Cmd(&n, "UNLINK", keys...))
	var re resp3.SimpleError
	if !errors.As(err, &re) || !strings.HasPrefix(re.S, "CROSSSLOT") {
		return n, err
	}
	bySlot := map[int][]string{}
	for _, k := range keys {
		s := shard.Slot([]byte(k))
		bySlot[s] = append(bySlot[s], k)
	}
	n = 0
	for _, group := range bySlot {
		var m int64
		if err := c.Do(ctx, radix.Cmd(&m, "UNLINK", group...)); err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func (n dataNode) do(ctx context.Context, fn func(radix.Conn) error) error {
	c, err := n.dialer.Dial(ctx, "tcp", n.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// isRadixReplyError reports whether err is the server's error reply (the command refused), not
// a broken connection.
func isRadixReplyError(err error) bool {
	var re resp3.SimpleError
	return errors.As(err, &re)
}

// keyspace reads INFO keyspace: db → keys.
func keyspace(ctx context.Context, c radix.Conn) (map[int]int64, error) {
	var info string
	if err := c.Do(ctx, radix.Cmd(&info, "INFO", "keyspace")); err != nil {
		return nil, fmt.Errorf("INFO keyspace: %w", err)
	}
	return redisctl.ParseKeyspace(info)
}

// countMatching counts the keys of the selected db that match pattern (rmtd's own: a few).
func countMatching(ctx context.Context, c radix.Conn, pattern string) (int64, error) {
	var n int64
	cursor := "0"
	for {
		next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return c.Do(ctx, a) }, cursor, pattern)
		if err != nil {
			return 0, err
		}
		n += int64(len(keys))
		if cursor = next; cursor == "0" {
			return n, nil
		}
	}
}

// sampleKeys adds the names of a few keys of the selected db that are not rmtd's own.
func sampleKeys(ctx context.Context, c radix.Conn, own string, db int, sample *[]string) error {
	cursor := "0"
	for range 10 { // a few pages are enough for a message
		next, keys, err := redisctl.ScanKeys(func(a radix.Action) error { return c.Do(ctx, a) }, cursor)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if own != "" && strings.HasPrefix(k, own+":") {
				continue
			}
			*sample = append(*sample, sampleName(db, k))
			if len(*sample) >= inventorySample {
				return nil
			}
		}
		if cursor = next; cursor == "0" {
			return nil
		}
	}
	return nil
}

// The kinds' data nodes.

func (t *singleTarget) Inventory(ctx context.Context, owns func(int, []byte) bool, own string) (Inventory, error) {
	return inventory(ctx, dataNodesOf(t.conn, []string{t.conn.Addr}), owns, own)
}

func (t *singleTarget) DeleteKeys(ctx context.Context, owns func(int, []byte) bool, own string) (int64, error) {
	return deleteKeys(ctx, dataNodesOf(t.conn, []string{t.conn.Addr}), owns, own)
}

func (t *twemproxyTarget) Inventory(ctx context.Context, owns func(int, []byte) bool, own string) (Inventory, error) {
	return inventory(ctx, dataNodesOf(t.cfg.Conn, t.pool.Addrs()), owns, own)
}

func (t *twemproxyTarget) DeleteKeys(ctx context.Context, owns func(int, []byte) bool, own string) (int64, error) {
	return deleteKeys(ctx, dataNodesOf(t.cfg.Conn, t.pool.Addrs()), owns, own)
}

func (t *clusterTarget) Inventory(ctx context.Context, owns func(int, []byte) bool, own string) (Inventory, error) {
	nodes, err := t.masters(ctx)
	if err != nil {
		return Inventory{}, err
	}
	return inventory(ctx, nodes, owns, own)
}

func (t *clusterTarget) DeleteKeys(ctx context.Context, owns func(int, []byte) bool, own string) (int64, error) {
	nodes, err := t.masters(ctx)
	if err != nil {
		return 0, err
	}
	return deleteKeys(ctx, nodes, owns, own)
}

// masters are the cluster's masters serving slots, from the first seed that answers.
func (t *clusterTarget) masters(ctx context.Context) ([]dataNode, error) {
	var lastErr error
	for _, seed := range dataNodesOf(t.cfg.Conn, t.seeds) {
		var text string
		err := seed.do(ctx, func(c radix.Conn) error { return c.Do(ctx, radix.Cmd(&text, "CLUSTER", "NODES")) })
		if err != nil {
			lastErr = err
			continue
		}
		host, _, _ := net.SplitHostPort(seed.addr)
		m, err := topology.ParseNodes([]byte(text), topology.Options{DefaultHost: host})
		if err != nil {
			return nil, fmt.Errorf("target cluster %s: %w", seed.addr, err)
		}
		var addrs []string
		for _, ms := range m.Serving() {
			addrs = append(addrs, ms.Addr)
		}
		return dataNodesOf(t.cfg.Conn, addrs), nil
	}
	return nil, fmt.Errorf("target cluster: no seed answered CLUSTER NODES: %w", lastErr)
}

// An rdb file is written anew by each job: it holds nothing before.

func (t *rdbFileTarget) Inventory(context.Context, func(int, []byte) bool, string) (Inventory, error) {
	return Inventory{}, nil
}

func (t *rdbFileTarget) DeleteKeys(context.Context, func(int, []byte) bool, string) (int64, error) {
	return 0, nil
}

// ErrTargetLost is wrapped by the errors of a target that lost what rmtd wrote into it: its
// checkpoint is gone (the server restarted empty) or behind the one it acknowledged (it
// restarted from an older save). The stream cannot go on: the source node needs a full sync.
var ErrTargetLost = errors.New("target lost data")
