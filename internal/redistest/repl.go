package redistest

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// ReplicaOf makes r a replica of master (REPLICAOF), passing the master's credentials, and
// waits until the link is up and r has caught up (WaitReplicaSynced).
func (r *Redis) ReplicaOf(t testing.TB, master *Redis) {
	t.Helper()
	if master.pass != "" {
		r.Do(t, "CONFIG", "SET", "masterauth", master.pass)
	}
	if master.user != "" {
		r.Do(t, "CONFIG", "SET", "masteruser", master.user)
	}
	r.Do(t, "REPLICAOF", "127.0.0.1", master.Port)
	WaitReplicaSynced(t, master, r, 30*time.Second)
}

// WaitReplicaSynced waits until replica's link to master is up and the offset the replica has
// processed equals the master's master_repl_offset.
func WaitReplicaSynced(t testing.TB, master, replica *Redis, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, func() error {
		rep := replica.Info(t, "replication")
		if rep["master_link_status"] != "up" {
			return fmt.Errorf("replica %s: master_link_status %q, want up", replica.Addr, rep["master_link_status"])
		}
		if rep["master_port"] != strconv.Itoa(master.Port) {
			return fmt.Errorf("replica %s replicates port %s, not %d", replica.Addr, rep["master_port"], master.Port)
		}
		m := master.Info(t, "replication")
		mo, err1 := strconv.ParseInt(m["master_repl_offset"], 10, 64)
		ro, err2 := strconv.ParseInt(rep["slave_repl_offset"], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("offsets: master %q replica %q", m["master_repl_offset"], rep["slave_repl_offset"])
		}
		if mo != ro {
			return fmt.Errorf("master %s offset %d, replica %s offset %d", master.Addr, mo, replica.Addr, ro)
		}
		return nil
	})
}
