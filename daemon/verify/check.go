package verify

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/internal/redisfmt"
)

// CheckOptions tunes the redis_check job. Zero values take the defaults.
type CheckOptions struct {
	Keys          int           // keys to sample; default 1000
	Rounds        int           // checks of a differing key before it is reported; default 3
	RoundInterval time.Duration // pause between rounds; default 5s
	TTLTolerance  time.Duration // allowed expiry difference; default 2s
	Workers       int           // keys compared in parallel; default 8
	Out           io.Writer     // the report (RMT's text); nil: discarded
	Color         bool          // colour the report (set when Out is a terminal)
	Logger        *zap.Logger   // every bad key is logged here; nil: none

	afterRound func(round int) // tests: called after each round but the last
}

// CheckResult counts the sampled keys by outcome, RMT's way: each key is in exactly one of
// OK, ValueDiff, ExpireDiff, OtherErr.
type CheckResult struct {
	Checked    int
	ValueDiff  int
	ExpireDiff int
	OtherErr   int
	OK         int
	Bad        []BadKey // the keys still differing after the last round
	Elapsed    time.Duration
}

// BadKey is one key that still differed after the last round.
type BadKey struct {
	Node     string // source server
	DB       int
	Key      string
	Type     string // its type on the source
	Category CheckCategory
	Reason   string
}

// sampledKey is a key drawn from one db of one source server.
type sampledKey struct {
	node *cmdNode
	db   int
	key  string
}

func (o *CheckOptions) defaults() {
	if o.Keys <= 0 {
		o.Keys = 1000
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.RoundInterval <= 0 {
		o.RoundInterval = 5 * time.Second
	}
	if o.TTLTolerance <= 0 {
		o.TTLTolerance = 2 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// RunCheck samples opts.Keys distinct keys of the source (RANDOMKEY, or SCAN when a db holds
// little more than its share) across every db in proportion to the dbs' sizes, compares each
// with the target (type, whole value, expiry), re-checks the differing ones in further rounds,
// writes RMT's report to opts.Out and logs every key that still differs.
func RunCheck(ctx context.Context, cfg *conf.Config, opts CheckOptions) (CheckResult, error) {
	opts.defaults()
	log := opts.Logger.With(zap.String("job", "redis_check"))
	for _, e := range []error{checkNodeSetPool("source", cfg.Source), checkNodeSetPool("target", cfg.Target)} {
		if e != nil {
			return CheckResult{}, fmt.Errorf("redis_check: %w", e)
		}
	}
	src, err := openNodeSet(ctx, "source", cfg.Source, opts.Workers)
	if err != nil {
		return CheckResult{}, fmt.Errorf("redis_check: %w", err)
	}
	defer src.Close()
	tgt, err := openNodeSet(ctx, "target", cfg.Target, opts.Workers)
	if err != nil {
		return CheckResult{}, fmt.Errorf("redis_check: %w", err)
	}
	defer tgt.Close()

	fmt.Fprintln(opts.Out, "Check job is running...")
	start := time.Now()
	keys, err := sampleKeys(ctx, src, opts.Keys, log)
	if err != nil {
		return CheckResult{}, fmt.Errorf("redis_check: %w", err)
	}
	verdicts := make([]keyVerdict, len(keys))
	todo := make([]int, len(keys))
	for i := range todo {
		todo[i] = i
	}
	for round := 1; ; round++ {
		if err := checkKeys(ctx, tgt, keys, todo, verdicts, opts); err != nil {
			return CheckResult{}, fmt.Errorf("redis_check: round %d: %w", round, err)
		}
		bad := todo[:0]
		for _, i := range todo {
			if verdicts[i].cat != CheckOK {
				bad = append(bad, i)
			}
		}
		todo = bad
		if len(todo) > 0 && round < opts.Rounds {
			log.Info("keys differ, checking them again", zap.Int("round", round), zap.Int("differing", len(todo)),
				zap.Duration("in", opts.RoundInterval))
		}
		if len(todo) == 0 || round >= opts.Rounds {
			break
		}
		if opts.afterRound != nil {
			opts.afterRound(round)
		}
		t := time.NewTimer(opts.RoundInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return CheckResult{}, fmt.Errorf("redis_check: %w", ctx.Err())
		case <-t.C:
		}
	}

	res := CheckResult{Checked: len(keys), Elapsed: time.Since(start)}
	for i, v := range verdicts {
		switch v.cat {
		case CheckOK:
			res.OK++
			continue
		case CheckValue:
			res.ValueDiff++
		case CheckExpire:
			res.ExpireDiff++
		default:
			res.OtherErr++
		}
		k := keys[i]
		b := BadKey{Node: k.node.addr, DB: k.db, Key: k.key, Type: v.typ, Category: v.cat, Reason: v.reason}
		res.Bad = append(res.Bad, b)
		log.Error("key checked failed", zap.String("node", b.Node), zap.Int("db", b.DB),
			zap.String("key", redisfmt.Quote(b.Key)), zap.String("type", b.Type),
			zap.Stringer("category", b.Category), zap.String("reason", b.Reason))
	}
	writeCheckReport(opts.Out, res, opts.Color)
	return res, nil
}

// checkKeys compares keys[i] for every i in idx, opts.Workers at a time, into verdicts[i].
func checkKeys(ctx context.Context, tgt *nodeSet, keys []sampledKey, idx []int, verdicts []keyVerdict, opts CheckOptions) error {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < opts.Workers && w < len(idx); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				k := keys[i]
				c := keyComparer{src: k.node, tgt: tgt.nodeFor(k.key), db: k.db, tgtDB: tgt.dbFor(k.db),
					key: k.key, tol: opts.TTLTolerance, now: time.Now}
				verdicts[i] = c.compare(ctx)
			}
		}()
	}
	var err error
feed:
	for _, i := range idx {
		select {
		case work <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	return err
}

// writeCheckReport prints RMT's summary. Colours (RMT's: red, yellow, green) only when color.
func writeCheckReport(w io.Writer, r CheckResult, color bool) {
	paint := func(code string, n int, text string) string {
		if !color || n == 0 {
			return text
		}
		return "\033[" + code + "m" + text + "\033[0m"
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Checked keys: %d\n", r.Checked)
	fmt.Fprintln(w, paint("31", r.ValueDiff, fmt.Sprintf("Inconsistent value keys: %d", r.ValueDiff)))
	fmt.Fprintln(w, paint("33", r.ExpireDiff, fmt.Sprintf("Inconsistent expire keys : %d", r.ExpireDiff)))
	fmt.Fprintln(w, paint("31", r.OtherErr, fmt.Sprintf("Other check error keys: %d", r.OtherErr)))
	fmt.Fprintf(w, "Checked OK keys: %d\n", r.OK)
	fmt.Fprintln(w)
	if r.ValueDiff+r.ExpireDiff+r.OtherErr == 0 {
		fmt.Fprintln(w, paint("32", 1, "All keys checked OK!"))
	}
	fmt.Fprintf(w, "Check job finished, used %.3fs\n", r.Elapsed.Seconds())
}
