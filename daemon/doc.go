// Package daemon wires a migration job from a conf.Config: the source's nodes (a single server,
// a cluster's masters, a twemproxy pool's backends, or files), one replica link and one writer
// per node, checkpoints and resume, the key filter and ownership rules, the admin port with
// INFO, and the -C jobs redis_check and redis_testinsert.
//
//	d, err := daemon.New(cfg, daemon.Options{Logger: log})
//	err = d.Run(ctx) // until ctx is cancelled or SHUTDOWN; file sources end by themselves
//
// Data crosses from source to target only here, as rdb.Entry and aof.Command values.
package daemon
