package main

import (
	"fmt"
	"strconv"
	"strings"
)

// options are rmtd's command-line settings: RMT's flags, with the same letters and long names.
type options struct {
	help, version, daemonize, information, noreply bool

	verbosity  int
	output     string
	confFile   string
	pidFile    string
	mbufSize   int
	command    string
	sourceRole string
	targetRole string
	threads    int
	buffer     int64
	from       string
	to         string
	step       int

	set map[string]bool // long names given on the command line
}

type flagSpec struct {
	short    byte
	long     string
	hasValue bool
	help     string
	apply    func(o *options, v string) error
}

var flagSpecs = []flagSpec{
	{'h', "help", false, "this help", func(o *options, _ string) error { o.help = true; return nil }},
	{'V', "version", false, "show version and exit", func(o *options, _ string) error { o.version = true; return nil }},
	{'d', "daemonize", false, "run as a daemon", func(o *options, _ string) error { o.daemonize = true; return nil }},
	{'I', "information", false, "print the supported commands and roles", func(o *options, _ string) error { o.information = true; return nil }},
	{'n', "noreply", false, "don't wait for the target's replies (unsafe; kept for RMT compatibility)", func(o *options, _ string) error { o.noreply = true; return nil }},
	{'v', "verbosity", true, "set logging level (default: 5, min: 0, max: 11)", func(o *options, v string) error {
		n, err := parseInt(v, 0, 11)
		o.verbosity = n
		return err
	}},
	{'o', "output", true, "set logging file (default: stderr)", func(o *options, v string) error { o.output = v; return nil }},
	{'c', "conf-file", true, "set configuration file (default: rmt.yaml, or rmt.conf in RMT's format)", func(o *options, v string) error { o.confFile = v; return nil }},
	{'p', "pid-file", true, "set pid file (default: off)", func(o *options, v string) error { o.pidFile = v; return nil }},
	{'m', "mbuf-size", true, "set mbuf size (default: 512)", func(o *options, v string) error {
		n, err := parseInt(v, 1, 1<<30)
		o.mbufSize = n
		return err
	}},
	{'C', "command", true, "set command to execute (default: redis_migrate)", func(o *options, v string) error { o.command = v; return nil }},
	{'r', "source-role", true, "set the source role (single, twemproxy, redis_cluster, rdb_file, aof_file)", func(o *options, v string) error { o.sourceRole = v; return nil }},
	{'R', "target-role", true, "set the target role (single, twemproxy, redis_cluster, rdb_file)", func(o *options, v string) error { o.targetRole = v; return nil }},
	{'T', "thread", true, "set how many threads run the job (default: number of CPUs)", func(o *options, v string) error {
		n, err := parseInt(v, 0, 1024)
		o.threads = n
		return err
	}},
	{'b', "buffer", true, "set buffer size (unit: G/M/K; kept for RMT compatibility)", func(o *options, v string) error {
		n, err := parseSize(v)
		o.buffer = n
		return err
	}},
	{'f', "from", true, "set source redis address(es), comma-separated", func(o *options, v string) error { o.from = v; return nil }},
	{'t', "to", true, "set target redis address(es), comma-separated", func(o *options, v string) error { o.to = v; return nil }},
	{'s', "step", true, "set step (default: 1)", func(o *options, v string) error {
		n, err := parseInt(v, 1, 1<<20)
		o.step = n
		return err
	}},
}

// parseArgs reads RMT's flags the way getopt_long does: "-c f", "-cf", "-dn", "--conf-file=f",
// "--conf-file f". Anything that is not a flag is an error: rmtd takes no operands.
func parseArgs(args []string) (*options, error) {
	o := &options{verbosity: 5, command: "redis_migrate", set: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, val, hasVal := strings.Cut(a[2:], "=")
			spec := lookupLong(name)
			if spec == nil {
				return nil, fmt.Errorf("unknown option --%s", name)
			}
			if spec.hasValue && !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option --%s needs a value", name)
				}
				i++
				val = args[i]
			} else if !spec.hasValue && hasVal {
				return nil, fmt.Errorf("option --%s takes no value", name)
			}
			if err := spec.apply(o, val); err != nil {
				return nil, fmt.Errorf("option --%s: %w", name, err)
			}
			o.set[spec.long] = true
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				spec := lookupShort(a[j])
				if spec == nil {
					return nil, fmt.Errorf("unknown option -%c", a[j])
				}
				val := ""
				if spec.hasValue {
					if j+1 < len(a) {
						val = a[j+1:]
					} else if i+1 < len(args) {
						i++
						val = args[i]
					} else {
						return nil, fmt.Errorf("option -%c needs a value", a[j])
					}
					j = len(a)
				}
				if err := spec.apply(o, val); err != nil {
					return nil, fmt.Errorf("option -%c: %w", spec.short, err)
				}
				o.set[spec.long] = true
			}
		default:
			return nil, fmt.Errorf("unexpected argument %q", a)
		}
	}
	return o, nil
}

func lookupLong(name string) *flagSpec {
	for i := range flagSpecs {
		if flagSpecs[i].long == name {
			return &flagSpecs[i]
		}
	}
	return nil
}

func lookupShort(c byte) *flagSpec {
	if c == '?' {
		c = 'h'
	}
	for i := range flagSpecs {
		if flagSpecs[i].short == c {
			return &flagSpecs[i]
		}
	}
	return nil
}

func parseInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

// parseSize reads "1048576", "512K", "140M", "2G".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.ToUpper(strings.TrimSpace(s))
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (like 1048576, 512K, 140M, 1G)", s)
	}
	return n * mult, nil
}

func usage() string {
	var b strings.Builder
	b.WriteString("Usage: rmtd [-?hVdIn] [-v verbosity level] [-o output file]\n" +
		"            [-c conf file] [-p pid file] [-m mbuf size] [-C command]\n" +
		"            [-r source role] [-R target role] [-T thread number]\n" +
		"            [-b buffer size] [-f source address] [-t target address] [-s step]\n\nOptions:\n")
	for _, s := range flagSpecs {
		long := "--" + s.long
		if s.hasValue {
			if s.long == "verbosity" || s.long == "mbuf-size" || s.long == "thread" || s.long == "step" {
				long += "=N"
			} else {
				long += "=S"
			}
		}
		fmt.Fprintf(&b, "  -%c, %-20s : %s\n", s.short, long, s.help)
	}
	b.WriteString("\nCommands:\n" +
		"    redis_migrate                    : migrate data from the source group to the target group\n" +
		"    redis_check [N]                  : sample N keys (default 1000) and compare source and target\n" +
		"    redis_testinsert [TYPES] [N]     : insert N test keys (default 1000) into the source;\n" +
		"                                       TYPES: string|list|set|zset|hash|stream|all\n")
	return b.String()
}
