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

// asRoot skips a test that needs root (chown, mounts), except under CI,
// which must run it.
func asRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root, and CI must run it")
		}
		t.Skip("needs root")
	}
}

// TestServeRefusesUntrustedState replays the attacks on the state
// directory: a directory another user made, with a token of theirs, let
// them log in to the UI; a ui-token linked to a root-only file was
// printed by 'netshare ui url'; a dangling netshare.db link made root
// create a file anywhere. The daemon now refuses to start, says why, and
// creates nothing.
func TestServeRefusesUntrustedState(t *testing.T) {
	asRoot(t)
	bin := build(t)
	const planted = "PLANTED-TOKEN-0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, state string)
		want  string
	}{
		{"a directory of another user", func(t *testing.T, state string) {
			os.WriteFile(filepath.Join(state, "ui-token"), []byte(planted), 0o600)
			os.Chown(filepath.Join(state, "ui-token"), 65534, 65534)
			os.Chown(state, 65534, 65534)
		}, "belongs to user 65534"},
		{"a directory others may write", func(t *testing.T, state string) {
			os.Chmod(state, 0o777)
		}, "may be written by others"},
		{"a token of another user", func(t *testing.T, state string) {
			os.WriteFile(filepath.Join(state, "ui-token"), []byte(planted), 0o600)
			os.Chown(filepath.Join(state, "ui-token"), 65534, 65534)
		}, "belongs to user 65534"},
		{"a token linked to a secret", func(t *testing.T, state string) {
			secret := filepath.Join(t.TempDir(), "shadow")
			os.WriteFile(secret, []byte(planted), 0o600)
			os.Symlink(secret, filepath.Join(state, "ui-token"))
		}, "symbolic link"},
		{"a dangling state file link", func(t *testing.T, state string) {
			os.Symlink(filepath.Join(state, "..", "elsewhere.db"), filepath.Join(state, "netshare.db"))
		}, "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			state := filepath.Join(base, "state")
			os.Mkdir(state, 0o700)
			tc.setup(t, state)
			sock := filepath.Join(base, "s")
			out, err := exec.Command(bin, "serve", "--backend=fake", "--state-dir", state, "--socket", sock, "--http", "127.0.0.1:0").CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("serve: %v\n%s\nwant a refusal saying %q", err, out, tc.want)
			}
			if strings.Contains(string(out), planted) {
				t.Fatalf("the planted secret was printed:\n%s", out)
			}
			if _, err := os.Lstat(sock); err == nil {
				t.Error("the daemon made its socket")
			}
			if _, err := os.Lstat(filepath.Join(base, "elsewhere.db")); err == nil {
				t.Error("a file was created through the link")
			}
		})
	}
}

// TestServeOnAFullDisk replays a first start on a full disk: it said the
// state file was unreadable and to restore a backup, and left an empty
// file behind. It must say the disk is full and leave nothing. The disk
// is a tiny tmpfs in a mount namespace of the test's own.
func TestServeOnAFullDisk(t *testing.T) {
	asRoot(t)
	bin := build(t)
	dir := t.TempDir()
	script := `mount -t tmpfs -o size=8k tmpfs "$1" && "$2" serve --backend=fake --state-dir "$1/state" --socket "$1/s"; echo "exit=$?"; ls -A "$1/state"`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dir, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("unshare: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "no space left") || strings.Contains(text, "unreadable") || !strings.Contains(text, "exit=1") {
		t.Fatalf("serve on a full disk:\n%s", text)
	}
	if _, left, _ := strings.Cut(text, "exit=1"); strings.TrimSpace(left) != "" {
		t.Fatalf("files were left in the state directory: %s", left)
	}
}
