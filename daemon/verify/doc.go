// Package verify holds rmtd's -C jobs, which talk to the source and the target with a client of
// their own and share nothing with the migration:
//
//   - redis_check [N]: sample N keys on the source and compare each with the target: type,
//     whole value (zset scores and hash values included; big keys by SCAN pages and LRANGE
//     ranges, never one huge reply) and absolute expiry; keys that differ are checked again in
//     a few rounds, so that only what still differs is reported (RunCheck).
//
//   - redis_testinsert [TYPES] [N]: fill the source with test keys of the given types and read
//     each back (RunTestInsert).
//
//     res, err := verify.RunCheck(ctx, cfg, verify.CheckOptions{Keys: 1000, Out: os.Stdout})
//
// Both print RMT's report format; cmd/rmtd turns their result into the exit code.
package verify
