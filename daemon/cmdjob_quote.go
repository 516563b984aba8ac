package daemon

import "github.com/rmt-project/rmt/internal/redisfmt"

// cmdjobQuote writes a key as redis-cli shows it (sdscatrepr).
func cmdjobQuote(key string) string { return redisfmt.Quote(key) }
