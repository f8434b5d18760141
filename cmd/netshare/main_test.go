package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build compiles the netshare binary once per test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "netshare")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func waitFor(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
}

// TestServeLifecycle runs the real binary: it serves on a socket of mode
// 0660, refuses a second daemon on the same socket or state, answers the
// CLI, and stops cleanly on SIGTERM and SIGINT, removing its socket.
func TestServeLifecycle(t *testing.T) {
	bin := build(t)
	dir, err := os.MkdirTemp("", "netshare-bin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	state, sock := filepath.Join(dir, "state"), filepath.Join(dir, "run", "netshare.sock")

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		var logs bytes.Buffer
		serve := exec.Command(bin, "serve", "--backend=fake", "--state-dir", state, "--socket", sock)
		serve.Stderr = &logs
		if err := serve.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, sock)
		fi, _ := os.Stat(sock)
		if fi.Mode().Perm() != 0o660 {
			t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
		}
		out, err := exec.Command(bin, "--socket", sock, "connection", "list").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "wan0") {
			t.Fatalf("connection list: %v\n%s", err, out)
		}
		cmd := exec.Command(bin, "sharing", "enable", "wan0", "--public")
		cmd.Env = append(os.Environ(), "NETSHARE_SOCKET="+sock)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sharing enable: %v\n%s", err, out)
		}
		// A second daemon is refused, by the socket and by the state file.
		out, err = exec.Command(bin, "serve", "--backend=fake", "--state-dir", filepath.Join(dir, "other"), "--socket", sock).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "E_FAIL: another netshare daemon is listening on "+sock) {
			t.Errorf("second daemon on the socket: %v\n%s", err, out)
		}
		out, err = exec.Command(bin, "serve", "--backend=fake", "--state-dir", state, "--socket", sock+"2").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is locked by another process") {
			t.Errorf("second daemon on the state: %v\n%s", err, out)
		}
		serve.Process.Signal(sig)
		if err := serve.Wait(); err != nil {
			t.Fatalf("serve exited with %v after %v\n%s", err, sig, logs.String())
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind after %v", sig)
		}
		if !strings.Contains(logs.String(), "msg=stopping") {
			t.Errorf("no stop in the log:\n%s", logs.String())
		}
	}
	// The second run found the first one's state.
	var logs bytes.Buffer
	serve := exec.Command(bin, "serve", "--backend=fake", "--state-dir", state, "--socket", sock)
	serve.Stderr = &logs
	serve.Start()
	waitFor(t, sock)
	out, _ := exec.Command(bin, "--socket", sock, "sharing", "show").CombinedOutput()
	serve.Process.Signal(syscall.SIGTERM)
	serve.Wait()
	if !strings.Contains(string(out), "Public: wan0") {
		t.Fatalf("state lost over restarts: %s", out)
	}
}

// TestServeRefusesCorruptState checks that a damaged state file stops the
// daemon with a clear message and is left as it was.
func TestServeRefusesCorruptState(t *testing.T) {
	bin := build(t)
	state := t.TempDir()
	junk := bytes.Repeat([]byte("garbage!"), 8192)
	path := filepath.Join(state, "netshare.db")
	os.WriteFile(path, junk, 0o600)
	out, err := exec.Command(bin, "serve", "--backend=fake", "--state-dir", state, "--socket", filepath.Join(t.TempDir(), "s")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "E_FAIL: state file "+path+" is unreadable") {
		t.Fatalf("serve on a corrupt state: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, junk) {
		t.Fatal("the corrupt state file was changed")
	}
}
