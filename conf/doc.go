// Package conf reads a job's configuration: rmt.yaml, or RMT's legacy rmt.conf. It holds the
// schema (Config, Pool, Common, TLS), RMT's defaults (Default), strict decoding (unknown and
// duplicate keys are errors) and validation whose every error names the file, the line and the
// key, all problems at once.
//
//	cfg, err := conf.LoadFile("rmt.yaml") // or rmt.conf; decoded over Default() and validated
//	if err != nil {
//		return err // rmt.yaml:7: target.type: "redis-cluster" is not one of single, twemproxy, ...
//	}
//	err = cfg.Override(fromFlag, toFlag)  // -f / -t replace the servers ("-f: ..."), re-validate
//	log.Info("config", zap.Stringer("conf", cfg)) // String never shows a password
//
// Errors come back as Errors, a list of *Error (errors.As finds either). A config built in code
// validates too; its errors name Config.File, or "config", with no line. The package has no
// state of its own: nothing global, no logging, no os.Args, no exit.
package conf
