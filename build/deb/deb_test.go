package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackage builds the package from this tree and checks it: its
// control fields, the files it holds, the binary's version, and Debian's
// lintian, which must find no error.
func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("building the package compiles netshare; not with -short")
	}
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		t.Fatal("lintian is needed: apt-get install lintian (what .ci/run does)")
	}
	out := t.TempDir()
	path, err := build(options{Root: "../..", Out: out, Version: "1.2.3~test"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "netshare_1.2.3~test-1_amd64.deb" {
		t.Errorf("package file %s", path)
	}
	field := func(name string) string {
		v, err := exec.Command("dpkg-deb", "-f", path, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", name, err)
		}
		return strings.TrimSpace(string(v))
	}
	for name, want := range map[string]string{"Package": "netshare", "Version": "1.2.3~test-1", "Architecture": "amd64", "Section": "net"} {
		if got := field(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", path, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	for _, f := range []string{
		"usr/bin/netshare", "usr/lib/systemd/system/netshare.service", "usr/lib/sysusers.d/netshare.conf",
		"usr/share/man/man1/netshare.1.gz", "usr/share/man/man1/netshare-serve.1.gz", "usr/share/man/man1/netshare-mapping-add.1.gz",
		"usr/share/bash-completion/completions/netshare", "usr/share/zsh/vendor-completions/_netshare", "usr/share/fish/vendor_completions.d/netshare.fish",
		"usr/share/doc/netshare/copyright", "usr/share/doc/netshare/changelog.Debian.gz",
	} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the package lacks /%s", f)
		}
	}
	// Hidden commands (the lab's traffic streams, the bench's load) get
	// no page.
	for _, hidden := range []string{"netshare-lab-stream.1.gz", "netshare-bench-load.1.gz"} {
		if _, err := os.Stat(filepath.Join(root, "usr/share/man/man1", hidden)); err == nil {
			t.Errorf("a hidden command has a man page: %s", hidden)
		}
	}
	if v, err := exec.Command(filepath.Join(root, "usr/bin/netshare"), "version").Output(); err != nil || !strings.HasPrefix(string(v), "netshare 1.2.3~test\n") {
		t.Errorf("the packaged netshare version: %q, %v", v, err)
	}
	scripts, err := exec.Command("dpkg-deb", "-I", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if !strings.Contains(string(scripts), " "+s+" ") {
			t.Errorf("no %s script:\n%s", s, scripts)
		}
	}
	lint, _ := exec.Command(lintian, "--tag-display-limit", "0", path).CombinedOutput()
	var errs []string
	for _, line := range strings.Split(string(lint), "\n") {
		if strings.HasPrefix(line, "E: ") {
			errs = append(errs, line)
		}
	}
	t.Logf("lintian:\n%s", lint)
	if len(errs) > 0 {
		t.Errorf("lintian finds errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestShorten(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"short", "short"},
		{"fw: compile port mappings into a DNAT map", "fw: compile port..."},
		{"averyveryveryverylongword", "averyveryveryvery..."},
	} {
		if got := shorten(tt.in, 20); got != tt.want || len(got) > 20 {
			t.Errorf("shorten(%q, 20) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
