package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmt-project/rmt/internal/redistest"
)

// TestTerminalProgressBars runs rmtd on a pseudo-terminal (script(1), sized 250x40) loading an rdb file into
// a slow target (a proxy at 2 MB/s, about 8 s): the terminal shows a progress bar for the node
// (percent, keys, MB/s, ETA, then the keys loaded) and the other log lines, but not the
// progress log lines the bars stand in for; with -o the log file has those lines while the
// terminal shows the bars.
func TestTerminalProgressBars(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed: no pseudo-terminal to run rmtd on")
	}
	src := redistest.StartRedis(t, redistest.WithArgs("enable-debug-command yes"))
	src.Do(t, "DEBUG", "POPULATE", "40000", "key", "400")
	src.Do(t, "SAVE")
	rdbPath := filepath.Join(src.Dir, "dump.rdb")
	for _, logFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("log_file_%v", logFile), func(t *testing.T) {
			dst := redistest.StartRedis(t)
			proxy := redistest.StartProxy(t, dst.Addr)
			proxy.SetRate(2 << 20)
			dir := t.TempDir()
			writeConfig(t, dir, fmt.Sprintf("source:\n  type: rdb file\n  servers: [%s]\ntarget:\n  type: single\n  servers: [%s]\n"+
				"common:\n  listen: 127.0.0.1:0\n  dir: %s\n", rdbPath, proxy.Addr, filepath.Join(dir, "data")))
			command := "stty cols 250 rows 40; " + rmtdBinary(t) + " -c rmt.yaml"
			if logFile {
				command += " -o rmtd.log"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, scriptBin, "-qfec", command, "/dev/null")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			terminal := string(out)
			if err != nil {
				t.Fatalf("rmtd on a terminal: %v\n%s", err, terminal)
			}
			for _, want := range []string{"source0 " + rdbPath, "% ", " keys", " MB/s", "ETA ", "loaded, 40000 keys"} {
				if !strings.Contains(terminal, want) {
					t.Errorf("the terminal does not show %q:\n%s", want, terminal)
				}
			}
			if strings.Contains(terminal, "loading the snapshot") {
				t.Errorf("the terminal shows progress log lines beside the bars:\n%s", terminal)
			}
			logText := terminal
			if logFile {
				b, err := os.ReadFile(filepath.Join(dir, "rmtd.log"))
				if err != nil {
					t.Fatal(err)
				}
				logText = string(b)
				if !strings.Contains(logText, "loading the snapshot") {
					t.Errorf("the log file has no progress line:\n%s", logText)
				}
			}
			if !strings.Contains(logText, "RDB loaded") {
				t.Errorf("the log lines are missing:\n%s", logText)
			}
			if n := dst.Do(t, "DBSIZE"); n != int64(40000) {
				t.Errorf("target DBSIZE %v, want 40000", n)
			}
		})
	}
}
