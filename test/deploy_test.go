package test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks deploy/systemd/rmtd.service: its sections, a restart on failure, and
// an ExecStart that rmtd accepts (run with -h after the unit's own flags); systemd-analyze
// verifies it too where systemd is installed.
func TestSystemdUnit(t *testing.T) {
	const path = "../deploy/systemd/rmtd.service"
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: line %q is not key=value in a section", path, line)
			}
			keys[section+k] = v
		}
	}
	for k, want := range map[string]string{"[Service]Restart": "on-failure", "[Service]KillSignal": "SIGTERM",
		"[Install]WantedBy": "multi-user.target"} {
		if keys[k] != want {
			t.Errorf("%s = %q, want %q", k, keys[k], want)
		}
	}
	exec_ := strings.Fields(keys["[Service]ExecStart"])
	if len(exec_) < 3 || !strings.HasSuffix(exec_[0], "/rmtd") || exec_[1] != "-c" {
		t.Fatalf("ExecStart %q: want rmtd -c <config>", keys["[Service]ExecStart"])
	}
	if code, out, errOut := runRmtd(t, t.TempDir(), append(exec_[1:], "-h")...); code != 0 || !strings.Contains(out, "-c") {
		t.Errorf("rmtd %v -h: exit %d %q %q", exec_[1:], code, out, errOut)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// The unit as installed: its ExecStart binary exists (here, the one just built).
		unit, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(t.TempDir(), "rmtd.service")
		unit = []byte(strings.Replace(string(unit), exec_[0], rmtdBinary(t), 1))
		if err := os.WriteFile(copyPath, unit, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("systemd-analyze", "verify", copyPath).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}
