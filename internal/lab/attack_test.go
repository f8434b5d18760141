package lab_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

// The hardening tests replay attacks on netshare from the private side,
// the public side and a local user, with tools nobody here wrote where
// they fit (scapy, nmap, hping3), and check that each now fails.

// scapy runs a Python program with Debian's python3-scapy in namespace ns.
func scapy(t *testing.T, l *lab.Lab, ns, program string) string {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import scapy").CombinedOutput(); err != nil {
		t.Fatalf("python3-scapy is needed (apt-get install python3-scapy): %v %s", err, out)
	}
	p := filepath.Join(t.TempDir(), "attack.py")
	if err := os.WriteFile(p, []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := l.Output(ns, "/usr/bin/python3", p)
	if err != nil {
		t.Fatalf("scapy: %v\n%s", err, out)
	}
	return out
}

// rss returns the resident memory of a process, in kB.
func rss(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// lease runs udhcpc once on a host of the lan namespace, trying every
// second, and returns how long it took to get a lease.
func lease(t *testing.T, l *lab.Lab, iface string) time.Duration {
	t.Helper()
	start := time.Now()
	// -n: exit with an error when no lease came.
	out, err := l.Output(l.LAN, "udhcpc", "-i", iface, "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", "/bin/true")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("udhcpc on %s got no lease in %v: %v\n%s", iface, took, err, out)
	}
	return took
}

// TestDHCPStarvation replays the DHCP starvation attacks from a host on
// the private network: the reported burst of 2,000 DISCOVERs from random
// hardware addresses (scapy), then a flood of 100,000 a second. Real
// clients, one reserved and one new, get a lease within 2 s during the
// flood; the daemon's memory stays bounded; the API keeps answering.
// Before the fix a new client waited 12.6 minutes after the burst, and
// the flood took the daemon from 20 to 176 MB.
func TestDHCPStarvation(t *testing.T) {
	needTools(t, "udhcpc")
	l, m := up(t)
	lan := config(t, m, "lan0")
	base := rss(t, l.DaemonPID)

	// The burst as reported: 2,000 DISCOVERs, each from a new address.
	out := scapy(t, l, l.LAN, `
import time
from scapy.all import Ether, IP, UDP, BOOTP, DHCP, RandMAC, sendp, conf
conf.verb = 0
pkts = []
for i in range(2000):
    mac = str(RandMAC())
    pkts.append(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") /
                UDP(sport=68, dport=67) / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=i) /
                DHCP(options=[("message-type", "discover"), "end"]))
start = time.time()
sendp(pkts, iface="eth0")
print("burst of %d in %.2f s" % (len(pkts), time.time() - start))
`)
	t.Log(strings.TrimSpace(out))
	host(t, l, "new0")
	if took := lease(t, l, "new0"); took > 2*time.Second {
		t.Errorf("a new client after the burst waited %v for a lease, want under 2 s", took)
	} else {
		t.Logf("a new client after the burst: lease in %v", took)
	}

	// The flood: 100,000 DISCOVERs a second for 10 s.
	macK := host(t, l, "known0")
	_, err := lan.Reserve(ctx, hnetcfg.Reservation{MAC: macK, IP: "192.168.137.88", Name: "known"})
	must(t, err)
	host(t, l, "fresh0")
	flood := start(t, l, l.LAN, bin, "lab", "dhcp-flood", "--interface", "eth0", "--rate", "100000", "--duration", "10s")
	time.Sleep(2 * time.Second) // well into the flood
	for _, iface := range []string{"known0", "fresh0"} {
		if took := lease(t, l, iface); took > 2*time.Second {
			t.Errorf("%s waited %v for a lease during the flood, want under 2 s", iface, took)
		} else {
			t.Logf("%s: lease in %v during the flood", iface, took)
		}
	}
	began := time.Now()
	if _, err := m.Leases(ctx); err != nil || time.Since(began) > time.Second {
		t.Errorf("the API during the flood: %v after %v", err, time.Since(began))
	}
	peak := rss(t, l.DaemonPID)
	line, _ := flood.wait(t, "sent=", 0)
	t.Logf("flood: %s; daemon memory %d kB before, %d kB during", line, base, peak)
	if peak-base > 32<<10 {
		t.Errorf("the daemon's memory grew from %d kB to %d kB under the flood", base, peak)
	}
	// The drops are counted and said, in one line every 10 s.
	for deadline := time.Now().Add(12 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		logText, _ := os.ReadFile(filepath.Join(l.Dir, "daemon.log"))
		if strings.Contains(string(logText), "DHCP packets dropped") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon's log does not say that the flood was dropped")
		}
	}
	// Afterwards a new client is served at once, and memory is back
	// near where it was.
	host(t, l, "after0")
	if took := lease(t, l, "after0"); took > time.Second {
		t.Errorf("a new client after the flood waited %v", took)
	}
	if after := rss(t, l.DaemonPID); after-base > 32<<10 {
		t.Errorf("the daemon's memory is %d kB after the flood, %d kB before", after, base)
	}
}

// TestLabDirUntrusted replays the local attack on 'netshare lab down': a
// user who can write the lab's directory (once the default, under /tmp)
// writes a lab.json that names a process to kill, a namespace to delete
// and a directory to remove. Root must refuse such a directory and file,
// and even with a lab.json of root's, stop only processes in the lab's
// own namespaces.
func TestLabDirUntrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root, and CI must run it")
		}
		t.Skip("needs root (chown, and root acting on the lab's files)")
	}
	victim := exec.Command("sleep", "60")
	must(t, victim.Start())
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	precious := t.TempDir()
	must(t, os.WriteFile(filepath.Join(precious, "keep"), []byte("x"), 0o600))
	binAbs, err := filepath.Abs(bin)
	must(t, err)

	planted := func(t *testing.T, dir string, mode os.FileMode, edit func(*lab.Lab)) {
		t.Helper()
		l := lab.Lab{Dir: dir, ID: "abc123", WAN: "nsl-abc123-wan", GW: "nsl-abc123-gw", LAN: "nsl-abc123-lan",
			Socket: filepath.Join(dir, "netshare.sock"), Binary: binAbs, DaemonPID: victim.Process.Pid, ServerPID: victim.Process.Pid}
		if edit != nil {
			edit(&l)
		}
		data, _ := json.Marshal(l)
		must(t, os.WriteFile(filepath.Join(dir, "lab.json"), data, mode))
		must(t, os.Chmod(filepath.Join(dir, "lab.json"), mode))
	}
	newDir := func(t *testing.T, mode os.FileMode, uid int) string {
		t.Helper()
		parent := t.TempDir()
		dir := filepath.Join(parent, "lab")
		must(t, os.Mkdir(dir, mode))
		must(t, os.Chmod(dir, mode))
		must(t, os.Chown(dir, uid, uid))
		return dir
	}
	for _, tc := range []struct {
		name    string
		dir     func(t *testing.T) string
		refused string // what Load says; "" if Load accepts the lab
	}{
		{"directory of another user", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			planted(t, d, 0o600, nil)
			must(t, os.Chown(d, 65534, 65534))
			return d
		}, "belongs to user 65534"},
		{"directory others may write", func(t *testing.T) string {
			d := newDir(t, 0o777, 0)
			planted(t, d, 0o600, nil)
			return d
		}, "may be written by others"},
		{"lab.json of another user", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			planted(t, d, 0o600, nil)
			must(t, os.Chown(filepath.Join(d, "lab.json"), 65534, 65534))
			return d
		}, "belongs to user 65534"},
		{"lab.json others may write", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			planted(t, d, 0o666, nil)
			return d
		}, "may be written by others"},
		{"lab.json a symbolic link", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			other := t.TempDir()
			planted(t, other, 0o600, nil)
			must(t, os.Symlink(filepath.Join(other, "lab.json"), filepath.Join(d, "lab.json")))
			return d
		}, "symbolic link"},
		{"a directory to remove elsewhere", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			planted(t, d, 0o600, func(l *lab.Lab) { l.Dir = precious })
			return d
		}, "the lab says it lives in"},
		{"another namespace", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			planted(t, d, 0o600, func(l *lab.Lab) { l.GW = "important" })
			return d
		}, "is not the lab's own"},
		{"a binary to run", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			planted(t, d, 0o600, func(l *lab.Lab) { l.Binary = "/tmp/evil" })
			return d
		}, "binary"},
		{"pids outside the lab", func(t *testing.T) string {
			d := newDir(t, 0o700, 0)
			planted(t, d, 0o600, nil)
			return d
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			_, err := lab.Load(dir)
			if tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)) {
				t.Fatalf("Load: %v, want an error saying %q", err, tc.refused)
			}
			if tc.refused == "" && err != nil {
				t.Fatalf("Load refused a lab of root's: %v", err)
			}
			out, err := exec.Command(bin, "lab", "down", "--dir", dir).CombinedOutput()
			if tc.refused != "" && err == nil {
				t.Fatalf("lab down accepted it: %s", out)
			}
			if !alive(victim.Process.Pid) {
				t.Fatalf("lab down killed a process outside the lab: %s", out)
			}
			if _, err := os.Stat(filepath.Join(precious, "keep")); err != nil {
				t.Fatalf("lab down removed a directory outside the lab: %s", out)
			}
			if tc.refused == "" && !strings.Contains(string(out), "left alone") {
				t.Errorf("lab down did not say it left the process alone: %s", out)
			}
		})
	}
}

// alive reports whether pid runs (a zombie, killed but not yet reaped,
// does not).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// TestLabDefaultDir checks that the default lab directory is one only
// root may write.
func TestLabDefaultDir(t *testing.T) {
	if !strings.HasPrefix(lab.DefaultDir, "/run/") {
		t.Fatalf("the default lab directory %s is not under /run", lab.DefaultDir)
	}
}

// TestProbeSeesHostsThatDropPing puts a host with a static address in the
// DHCP pool, a host that answers no ping, and checks that the server
// never offers its address: the probe is ARP, which every host answers.
func TestProbeSeesHostsThatDropPing(t *testing.T) {
	needTools(t, "udhcpc")
	l, m := up(t)
	host(t, l, "static0")
	for _, args := range [][]string{
		{"ip", "addr", "add", "192.168.137.200/24", "dev", "static0"},
		{"sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"},
	} {
		if _, err := l.Output(l.LAN, args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Output(l.GW, "ping", "-c", "1", "-W", "1", "192.168.137.200"); err == nil {
		t.Fatal("the static host answers ping: the test would not show anything")
	}
	// A pool of two addresses, the static host's first.
	lan := config(t, m, "lan0")
	start, end := "192.168.137.200", "192.168.137.201"
	_, err := lan.SetDHCP(ctx, hnetcfg.DHCPEdit{PoolStart: &start, PoolEnd: &end})
	must(t, err)
	host(t, l, "client0")
	hook := script(t, udhcpcHook)
	out, err := l.Output(l.LAN, "udhcpc", "-i", "client0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", hook)
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	if !strings.Contains(out, "bound ip=192.168.137.201 ") {
		t.Fatalf("the client was not given the one free address, 192.168.137.201:\n%s", out)
	}
	logText, _ := os.ReadFile(filepath.Join(l.Dir, "daemon.log"))
	if !strings.Contains(string(logText), `address answers a probe but has no lease: setting it aside" component=services interface=lan0 ip=192.168.137.200`) {
		t.Fatalf("the daemon did not say it found 192.168.137.200 in use:\n%s", logText)
	}
}
