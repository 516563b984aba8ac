// Package daemon wires a migration job from a conf.Config: one replica link per source node, one
// writer per source node on the target, the admin port with INFO, and the -C jobs redis_check and
// redis_testinsert.
//
//	d, err := daemon.New(cfg, daemon.Options{Logger: log})
//	err = d.Run(ctx) // until ctx is cancelled or SHUTDOWN; file sources end by themselves
//
// Data crosses from source to target only here, as rdb.Entry and aof.Command values.
package daemon
