// Package conf reads rmt.yaml (and RMT's legacy rmt.conf): the schema, RMT's defaults, strict
// decoding, and validation whose every error names the file, the line and the key.
//
//	cfg, err := conf.LoadFile("rmt.yaml")  // decoded, defaulted and validated
//	if err != nil { ... }                  // rmt.yaml:7: target.type: "redis-cluster" is not one of ...
//	err = cfg.Override(fromFlag, toFlag)   // -f / -t replace the servers, then re-validate
//	log.Info("config", zap.Stringer("conf", cfg)) // String never shows a password
//
// Errors come back as Errors, a list of *Error, all problems at once. The package has no state of
// its own: nothing global, no logging, no os.Args, no exit.
package conf
