package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the most "systemd-analyze security" may rate the unit
// (0 is the safest, 10 the least safe; 2.7 when written): a change that
// loosens the sandbox fails here first.
const maxExposure = 3.0

// TestUnit checks the systemd unit with systemd's own tools: "verify"
// finds nothing wrong, and "security" rates its exposure at most
// maxExposure.
func TestUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed: apt-get install systemd (what .ci/run does)")
	}
	unit, err := os.ReadFile("netshare.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants ExecStart's program to exist: this test's binary
	// stands in for /usr/bin/netshare.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "netshare.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/netshare", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The man pages are the package's, not this machine's.
	if out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for netshare.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no overall rating:\n%s", out)
	}
	level, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f", level)
	if level > maxExposure {
		t.Errorf("the unit's exposure is %.1f, above %.1f:\n%s", level, maxExposure, out)
	}
}
