// Package status is a migration job's state as one value, and its renderings. A Snapshot holds
// the Server, Clients, Memory, Group and Stats sections of RMT's INFO, one entry per source
// node and per target node, and the counters of what could not be applied or was left out, by
// reason. It shares nothing with live state: the daemon builds it from every component's
// Stats, and any number of readers (the admin port, a metrics scraper) render it with no lock
// held and no side effect.
//
//	s := d.Snapshot()                         // built by the daemon
//	text := status.RenderInfo(s, []string{"sources"}) // INFO's bulk reply
package status
