// Command rmtd migrates live Redis data between deployments: it acts as a replica of every source
// master, spools each master's RDB and replication stream to disk, loads the RDB into the target
// and replays the stream in order, while its admin port (redis-cli -p 8888 info) shows progress.
//
//	rmtd -c rmt.yaml -d                       # migrate, as a daemon
//	rmtd -c rmt.yaml -C "redis_check 1000"    # compare source and target
//	rmtd -c rmt.yaml -C "redis_testinsert 5000"
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	_ "golang.org/x/crypto/x509roots/fallback" // CA roots for TLS where the system has none (a scratch image)
	"golang.org/x/sys/unix"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/rmt-project/rmt/conf"
	"github.com/rmt-project/rmt/daemon"
	"github.com/rmt-project/rmt/daemon/verify"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

// daemonEnv marks the re-executed child of -d.
const daemonEnv = "RMTD_DAEMONIZED"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "rmtd: %v\n\n%s", err, usage())
		return 1
	}
	switch {
	case o.help:
		fmt.Fprint(stdout, usage())
		return 0
	case o.version:
		fmt.Fprintf(stdout, "This is rmtd-%s\n", version)
		return 0
	case o.information:
		fmt.Fprint(stdout, information())
		return 0
	}

	cfg, err := loadConfig(o)
	if err != nil {
		fmt.Fprintf(stderr, "rmtd: %v\n", err)
		return 1
	}
	job, jobArgs, err := parseCommand(o.command)
	if err != nil {
		fmt.Fprintf(stderr, "rmtd: %v\n", err)
		return 1
	}

	if o.daemonize && os.Getenv(daemonEnv) == "" {
		if err := daemonize(); err != nil {
			fmt.Fprintf(stderr, "rmtd: daemonize: %v\n", err)
			return 1
		}
		return 0
	}

	// On a terminal, a snapshot's progress is a bar per node; log lines print above the bars.
	var bars *progressBars
	logOut := stderr
	if !o.daemonize && terminalWidth(stderr) > 0 {
		bars = newProgressBars(stderr)
		logOut = bars.Log()
	}
	log, closeLog, err := newLogger(o, logOut)
	if err != nil {
		fmt.Fprintf(stderr, "rmtd: %v\n", err)
		return 1
	}
	defer closeLog()

	if o.pidFile != "" {
		if err := writePidFile(o.pidFile); err != nil {
			log.Error("cannot write pid file", zap.String("file", o.pidFile), zap.Error(err))
			fmt.Fprintf(stderr, "rmtd: %v\n", err)
			return 1
		}
		defer os.Remove(o.pidFile)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	switch job {
	case "redis_check":
		return runCheck(ctx, cfg, jobArgs, stdout, log)
	case "redis_testinsert":
		return runTestInsert(ctx, cfg, jobArgs, stdout, log)
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: log, ConfigFile: cfg.File, Version: version,
		QuietProgress: bars != nil && o.output == ""})
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		fmt.Fprintf(stderr, "rmtd: %v\n", err)
		return 1
	}
	stopBars := func() {}
	if bars != nil {
		barsCtx, cancel := context.WithCancel(ctx)
		barsDone := make(chan struct{})
		go func() { defer close(barsDone); bars.run(barsCtx, d.Snapshot, 250*time.Millisecond) }()
		stopBars = func() { cancel(); <-barsDone }
	}
	err = d.Run(ctx)
	stopBars() // the last frame, before any message below
	if err != nil {
		log.Error("migration stopped", zap.Error(err))
		fmt.Fprintf(stderr, "rmtd: %v\n", err)
		return 1
	}
	return 0
}

func runCheck(ctx context.Context, cfg *conf.Config, args []string, stdout io.Writer, log *zap.Logger) int {
	opts := verify.CheckOptions{Out: stdout, Color: isTerminal(stdout), Logger: log}
	switch len(args) {
	case 0:
	case 1:
		n, err := parseInt(args[0], 1, 1<<30)
		if err != nil {
			fmt.Fprintf(stdout, "rmtd: redis_check: %v\n", err)
			return 1
		}
		opts.Keys = n
	default:
		fmt.Fprintf(stdout, "rmtd: redis_check takes one number, got %q\n", strings.Join(args, " "))
		return 1
	}
	res, err := verify.RunCheck(ctx, cfg, opts)
	if err != nil {
		log.Error("check failed", zap.Error(err))
		fmt.Fprintf(stdout, "rmtd: redis_check: %v\n", err)
		return 1
	}
	if res.ValueDiff+res.ExpireDiff+res.OtherErr > 0 {
		return 1
	}
	return 0
}

func runTestInsert(ctx context.Context, cfg *conf.Config, args []string, stdout io.Writer, log *zap.Logger) int {
	types, n, err := verify.ParseTestInsertArgs(args)
	if err != nil {
		fmt.Fprintf(stdout, "rmtd: redis_testinsert: %v\n", err)
		return 1
	}
	res, err := verify.RunTestInsert(ctx, cfg, verify.TestInsertOptions{Types: types, Keys: n, Out: stdout, Logger: log})
	if err != nil {
		log.Error("test insert failed", zap.Error(err))
		fmt.Fprintf(stdout, "rmtd: redis_testinsert: %v\n", err)
		return 1
	}
	if res.Failed > 0 {
		return 1
	}
	return 0
}

// parseCommand splits -C into the job's name and its arguments.
func parseCommand(s string) (string, []string, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return "redis_migrate", nil, nil
	}
	switch f[0] {
	case "redis_migrate":
		if len(f) > 1 {
			return "", nil, fmt.Errorf("redis_migrate takes no arguments, got %q", strings.Join(f[1:], " "))
		}
	case "redis_check", "redis_testinsert":
	default:
		return "", nil, fmt.Errorf("unknown command %q (want redis_migrate, redis_check or redis_testinsert)", f[0])
	}
	return f[0], f[1:], nil
}

// loadConfig reads -c (or rmt.yaml / rmt.conf in the working directory) and applies the flags
// that override it, as RMT does. With no file at all, -f and -t alone describe a single-to-single job.
func loadConfig(o *options) (*conf.Config, error) {
	var cfg *conf.Config
	name := o.confFile
	if name == "" {
		for _, n := range []string{"rmt.yaml", "rmt.conf"} {
			if _, err := os.Stat(n); err == nil {
				name = n
				break
			}
		}
	}
	if name != "" {
		c, err := conf.LoadFile(name)
		if err != nil {
			return nil, err
		}
		cfg = c
	} else if o.from == "" || o.to == "" {
		// A container started with -e flags: the job from RMT_* variables alone.
		c, err := conf.FromEnv(os.Environ(), os.LookupEnv)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, errors.New("no configuration file (rmt.yaml) found; give one with -c, both -f and -t, " +
				"or RMT_SOURCE_SERVERS and RMT_TARGET_SERVERS in the environment")
		}
		cfg = c
	} else {
		cfg = conf.Default()
		cfg.File = "command line"
	}
	if o.set["source-role"] {
		cfg.Source.Type = roleType(o.sourceRole)
		cfg.SetByFlag("source.type", "-r")
	}
	if o.set["target-role"] {
		cfg.Target.Type = roleType(o.targetRole)
		cfg.SetByFlag("target.type", "-R")
	}
	if o.set["thread"] {
		cfg.Common.Threads = o.threads
		cfg.SetByFlag("common.threads", "-T")
	}
	if o.set["mbuf-size"] {
		cfg.Common.MbufSize = o.mbufSize
		cfg.SetByFlag("common.mbuf_size", "-m")
	}
	if o.set["noreply"] {
		cfg.Common.NoReply = true
		cfg.SetByFlag("common.noreply", "-n")
	}
	if o.set["step"] {
		cfg.Common.Step = o.step
		cfg.SetByFlag("common.step", "-s")
	}
	if err := cfg.Override(o.from, o.to); err != nil {
		return nil, err
	}
	return cfg, nil
}

// roleType turns RMT's role names (redis_cluster, rdb_file) into the config's spelling.
func roleType(role string) string {
	return strings.ReplaceAll(strings.ToLower(role), "_", " ")
}

func information() string {
	return "rmtd " + version + "\n\n" +
		"Source roles: single, twemproxy, redis cluster, rdb file, aof file\n" +
		"Target roles: single, twemproxy, redis cluster, rdb file\n" +
		"Commands:     redis_migrate, redis_check [N], redis_testinsert [TYPES] [N]\n" +
		"Admin port:   PING, ECHO, INFO [section ...], AUTH, COMMAND, QUIT, SHUTDOWN [seconds|asap]\n"
}

// newLogger logs to -o (rotated) or to stderr, at RMT's verbosity scale: 5 (notice) is info,
// 7 and above is debug, 3 and below only errors.
func newLogger(o *options, stderr io.Writer) (*zap.Logger, func(), error) {
	level := zapcore.InfoLevel
	switch {
	case o.verbosity >= 7:
		level = zapcore.DebugLevel
	case o.verbosity == 4:
		level = zapcore.WarnLevel
	case o.verbosity <= 3:
		level = zapcore.ErrorLevel
	}
	var sink zapcore.WriteSyncer
	closeFn := func() {}
	if o.output != "" {
		lj := &lumberjack.Logger{Filename: o.output, MaxSize: 256, MaxBackups: 5}
		sink = zapcore.AddSync(lj)
		closeFn = func() { lj.Close() }
	} else {
		sink = zapcore.AddSync(stderr)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(sink), level)
	log := zap.New(core) // no sampling: a migration log must not drop lines
	return log, func() { _ = log.Sync(); closeFn() }, nil
}

// terminalWidth is the width in columns of the terminal w is, 0 when it is none or says no
// size (a pseudo-terminal nobody sized), where bars could not be drawn.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(w) {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
