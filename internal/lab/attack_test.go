package lab_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
// clients, one reserved and one new, get a lease within 3 s (three
// tries) during the flood; the daemon's memory stays bounded; the API keeps answering.
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
	// Within three of udhcpc's 1-second tries: a try can be lost in a
	// flood of 100,000 a second, and under CI, where other packages' tests
	// (a browser among them) share the 2 cores, a second one too; two runs
	// of CI saw 2.14 s. Starving, a client waited minutes.
	for _, iface := range []string{"known0", "fresh0"} {
		if took := lease(t, l, iface); took > 3*time.Second {
			t.Errorf("%s waited %v for a lease during the flood, want under 3 s", iface, took)
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

// msgSize returns what dig says of an answer: its size and whether TC
// was set.
func msgSize(t *testing.T, out string) (int, bool) {
	t.Helper()
	size := -1
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, ";; MSG SIZE  rcvd: "); ok {
			size, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if size < 0 {
		t.Fatalf("no answer size in:\n%s", out)
	}
	return size, flagsHave(out, "tc")
}

func flagsHave(out, flag string) bool {
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, ";; flags: "); ok {
			flags, _, _ := strings.Cut(rest, ";")
			return slices.Contains(strings.Fields(flags), flag)
		}
	}
	return false
}

// TestDNSAbuse replays the attacks on the DNS forwarder. Amplification: a
// 35-byte query got a 45,835-byte answer over UDP. Open resolver: with
// the public firewall off, the Internet got answers, private names
// included. Storm: with slow upstreams, queries from the private network
// took the daemon to its descriptor limit and the API stopped answering.
func TestDNSAbuse(t *testing.T) {
	needTools(t, "dig", "nmap")
	l, m := up(t)

	// Amplification: UDP answers fit 512 bytes, or the EDNS size offered
	// (at most 1,232), with TC set; TCP gets the whole answer.
	for _, tc := range []struct {
		args  []string
		limit int
		tc    bool
	}{
		{[]string{"+noedns", "+ignore"}, 512, true},
		{[]string{"+bufsize=1232", "+ignore"}, 1232, true},
		{[]string{"+bufsize=4096", "+ignore"}, 1232, true},
		{[]string{"+noedns", "+ignore"}, 512, true}, // from the cache
		{[]string{"+tcp"}, 65535, false},
	} {
		args := append([]string{"dig", "@" + lab.GatewayLAN, "+time=3", "+tries=1", lab.BigName, "TXT"}, tc.args...)
		out, err := l.Output(l.LAN, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		size, truncated := msgSize(t, out)
		t.Logf("dig %v: %d bytes, tc %v", tc.args, size, truncated)
		if size > tc.limit || truncated != tc.tc || (!tc.tc && size < 40000) {
			t.Errorf("dig %v: %d bytes, tc %v; want at most %d bytes, tc %v", tc.args, size, truncated, tc.limit, tc.tc)
		}
	}

	// The open resolver: from the wan host, with the public firewall off
	// and a route to the private network through the gateway.
	wan := config(t, m, "wan0")
	must(t, wan.DisableInternetFirewall(ctx))
	if _, err := l.Output(l.WAN, "ip", "route", "add", "192.168.137.0/24", "via", lab.GatewayWAN); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example.test", lab.LANHostName, lab.LANHostName + ".home.arpa"} {
		out, err := l.Output(l.WAN, "dig", "@"+lab.GatewayLAN, "+time=2", "+tries=1", name)
		if err != nil {
			t.Fatalf("dig %s from the wan host: %v", name, err)
		}
		if !strings.Contains(out, "status: REFUSED") || strings.Contains(out, lab.LANHost) {
			t.Errorf("dig %s from the wan host was answered:\n%s", name, out)
		}
	}
	out, err := l.Output(l.WAN, "nmap", "-sU", "-Pn", "-p", "53", "--script", "dns-recursion", lab.GatewayLAN)
	if err != nil {
		t.Fatalf("nmap: %v\n%s", err, out)
	}
	if strings.Contains(out, "Recursion appears to be enabled") {
		t.Errorf("nmap finds an open resolver:\n%s", out)
	}
	// The private side is still answered.
	if got, status := dig(t, l, lab.LANHostName); got != lab.LANHost || status != "NOERROR" {
		t.Errorf("dig %s from the lan host: %q %s", lab.LANHostName, got, status)
	}

	// The storm: upstreams that never answer (nothing at that address),
	// and 64 clients asking 4,000 new names a second for 8 s.
	_, err = m.SetDNS(ctx, hnetcfg.DNSEdit{Upstreams: []string{"198.51.100.99"}})
	must(t, err)
	var sources []string
	for i := 2; i < 66; i++ {
		a := fmt.Sprintf("192.168.137.%d", i)
		if a == lab.GatewayLAN {
			continue
		}
		if _, err := l.Output(l.LAN, "ip", "addr", "add", a+"/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, a)
	}
	fds := func() int { return fdCount(t, l.DaemonPID) }
	baseFDs, baseRSS := fds(), rss(t, l.DaemonPID)
	storm := start(t, l, l.LAN, bin, "lab", "dns-flood", "--source", strings.Join(sources, ","), "--rate", "4000", "--duration", "8s")
	maxFDs, maxRSS, slowest := 0, 0, time.Duration(0)
	for range 12 {
		time.Sleep(500 * time.Millisecond)
		maxFDs, maxRSS = max(maxFDs, fds()), max(maxRSS, rss(t, l.DaemonPID))
		began := time.Now()
		if _, err := m.Sharing(ctx); err != nil {
			t.Errorf("the API during the storm: %v", err)
		}
		slowest = max(slowest, time.Since(began))
	}
	line, _ := storm.wait(t, "sent=", 0)
	t.Logf("storm: %s; descriptors %d -> %d at most; memory %d -> %d kB; slowest API call %v", line, baseFDs, maxFDs, baseRSS, maxRSS, slowest)
	if maxFDs > baseFDs+dnsInFlight+50 {
		t.Errorf("descriptors grew from %d to %d under the storm", baseFDs, maxFDs)
	}
	if maxRSS-baseRSS > 64<<10 {
		t.Errorf("memory grew from %d to %d kB under the storm", baseRSS, maxRSS)
	}
	if slowest > time.Second {
		t.Errorf("an API call took %v during the storm", slowest)
	}
	// Most were answered SERVFAIL at once rather than left waiting.
	if sf, _ := strconv.Atoi(field(line, "SERVFAIL")); sf < 10000 {
		t.Errorf("only %d queries got a quick SERVFAIL: %s", sf, line)
	}
}

// dnsInFlight is the forwarder's default bound on queries in flight.
const dnsInFlight = 256

// TestWebUIAttacks replays the attacks on the web UI. Slow login bodies:
// 21,000 of them took the daemon to its descriptor limit, and an API call
// took 17 s. The public side: with --http on every address and the
// public firewall off, the UI answered from the Internet on the public
// connection's IPv6 addresses (global and link-local) and on the private
// address routed in over the public link; only the public IPv4 address
// was guarded.
func TestWebUIAttacks(t *testing.T) {
	needTools(t, "curl")
	l, m := up(t)

	// Slow bodies, 2,000 connections from one source to the lab's UI (on
	// this machine's loopback).
	baseFDs := fdCount(t, l.DaemonPID)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2000 {
		c, err := net.DialTimeout("tcp", l.UI, time.Second)
		if err != nil {
			continue // the backlog is full: the kernel said no
		}
		fmt.Fprintf(c, "POST /ui/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	fds := fdCount(t, l.DaemonPID)
	began := time.Now()
	_, err := m.Sharing(ctx)
	took := time.Since(began)
	t.Logf("2,000 slow logins: descriptors %d -> %d; an API call took %v", baseFDs, fds, took)
	if err != nil || took > time.Second {
		t.Errorf("the API during the slow logins: %v after %v", err, took)
	}
	if fds > baseFDs+webuiPerSource+10 {
		t.Errorf("descriptors grew from %d to %d", baseFDs, fds)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	// The public side: IPv6 on the wan link, a route to the private
	// network over it, the firewall off, and the UI on every address.
	for _, s := range []struct {
		ns   string
		args []string
	}{
		{l.GW, []string{"ip", "addr", "add", "2001:db8:1::1/64", "dev", "wan0", "nodad"}},
		{l.WAN, []string{"ip", "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad"}},
		{l.WAN, []string{"ip", "route", "add", "192.168.137.0/24", "via", lab.GatewayWAN}},
	} {
		if _, err := l.Output(s.ns, s.args...); err != nil {
			t.Fatal(err)
		}
	}
	must(t, config(t, m, "wan0").DisableInternetFirewall(ctx))
	must(t, l.StopDaemon())
	pid, err := l.Start(l.GW, "daemon.log", append(l.DaemonArgs(), "--http", "[::]:8443", "--http-remote")...)
	must(t, err)
	l.DaemonPID = pid
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := m.SharingInstalled(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not come back")
		}
	}
	linkLocal := ""
	out, err := l.Output(l.GW, "ip", "-6", "-o", "addr", "show", "dev", "wan0", "scope", "link")
	must(t, err)
	if f := strings.Fields(out); len(f) > 3 {
		linkLocal, _, _ = strings.Cut(f[3], "/")
	}
	if linkLocal == "" {
		t.Fatalf("gw's wan0 has no link-local address: %s", out)
	}
	get := func(ns, url string) string {
		out, _ := l.Output(ns, "curl", "-s", "-g", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", url)
		return strings.TrimSpace(out)
	}
	for _, url := range []string{
		"http://" + lab.GatewayWAN + ":8443/",
		"http://[2001:db8:1::1]:8443/",
		"http://[" + linkLocal + "%25eth0]:8443/",
		"http://" + lab.GatewayLAN + ":8443/",
	} {
		if code := get(l.WAN, url); code != "000" {
			t.Errorf("from the wan host, %s answered %s", url, code)
		}
	}
	if code := get(l.LAN, "http://"+lab.GatewayLAN+":8443/"); code != "200" {
		t.Errorf("from the lan host, the UI answered %s", code)
	}
}

// webuiPerSource is the web UI's limit of connections from one address.
const webuiPerSource = 16

func fdCount(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestNameTakeover replays, with udhcpc, a host on the private network
// taking another's name and the proxy name wpad through DHCP.
func TestNameTakeover(t *testing.T) {
	needTools(t, "udhcpc", "dig")
	l, _ := up(t)
	hook := script(t, udhcpcHook)
	bound := func(iface, name string) string {
		t.Helper()
		out, err := l.Output(l.LAN, "udhcpc", "-i", iface, "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", hook, "-x", "hostname:"+name)
		if err != nil {
			t.Fatalf("udhcpc on %s: %v\n%s", iface, err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "bound ") {
				return field(line, "ip")
			}
		}
		t.Fatalf("udhcpc on %s: no lease\n%s", iface, out)
		return ""
	}
	host(t, l, "cam0")
	camera := bound("cam0", "camera")
	host(t, l, "evil0")
	evil := bound("evil0", "camera")
	evil2 := bound("evil0", "camera") // renewing again, later
	if evil2 != evil {
		t.Fatalf("the attacker's address changed: %s, %s", evil, evil2)
	}
	if got, _ := dig(t, l, "camera"); got != camera {
		t.Errorf("camera is %q, want the first holder's %s", got, camera)
	}
	if got, status := dig(t, l, "-x", evil); got != "" || status != "NXDOMAIN" {
		t.Errorf("the attacker's address is named %q (%s)", got, status)
	}
	host(t, l, "proxy0")
	bound("proxy0", "wpad")
	if got, status := dig(t, l, "wpad"); got != "" || status != "NXDOMAIN" {
		t.Errorf("wpad resolves to %q (%s)", got, status)
	}
	if got, _ := dig(t, l, lab.LANHostName); got != lab.LANHost {
		t.Errorf("%s is %q", lab.LANHostName, got)
	}
}

// serverUp waits up to 5 s for the lab's test server at addr, in
// namespace ns, to answer.
func serverUp(t *testing.T, l *lab.Lab, ns, addr string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := probe(l, ns, "tcp", addr); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test server at %s in %s does not answer", addr, ns)
		}
	}
}

// counters reads the packet counts of the rules of a chain in namespace
// ns, in order.
func counters(t *testing.T, l *lab.Lab, ns, chain string) []int {
	t.Helper()
	out, err := l.Output(ns, "nft", "list", "chain", "inet", "probe", chain)
	if err != nil {
		t.Fatal(err)
	}
	var n []int
	for _, f := range strings.Split(out, "counter packets ")[1:] {
		v, _ := strconv.Atoi(strings.Fields(f)[0])
		n = append(n, v)
	}
	return n
}

// TestFirewallAttacks replays, from the wan host, what got through the
// public connection: packets with a private source, or the gateway's own,
// reached a mapped private host; TCP packets without SYN opened flows to
// it; the gateway answered port-unreachable for the DHCP and DHCPv6 client
// ports, which gave it away; and it took ICMPv6 redirects from the public
// side.
func TestFirewallAttacks(t *testing.T) {
	needTools(t, "nmap", "hping3")
	l, m := up(t)
	if _, err := l.Start(l.LAN, "lan-server.log", "lab", "server", "--port", "80"); err != nil {
		t.Fatal(err)
	}
	serverUp(t, l, l.LAN, "127.0.0.1:80")
	web, err := config(t, m, "wan0").AddPortMapping(ctx, "web", hnetcfg.NAT_PROTOCOL_TCP, 8000, 80, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS)
	must(t, err)
	must(t, web.Enable(ctx))
	public := lab.GatewayWAN + ":8000"
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)

	// The lan host counts what arrives for its port 80, by source (after
	// its conntrack, so that a flow's first packet shows as new).
	spoofed := []string{"192.168.137.99", lab.GatewayLAN, lab.GatewayWAN}
	rules := []string{"add table inet probe", "add chain inet probe in { type filter hook prerouting priority -150; }"}
	for _, src := range spoofed {
		rules = append(rules, "add rule inet probe in ip saddr "+src+" tcp dport 80 counter")
	}
	rules = append(rules, "add rule inet probe in ip saddr "+lab.WANHost+" tcp dport 80 tcp flags & syn == 0 ct state new counter")
	for _, r := range rules {
		if _, err := l.Output(l.LAN, append([]string{"nft"}, strings.Fields(r)...)...); err != nil {
			t.Fatalf("nft %s: %v", r, err)
		}
	}

	// Spoofed SYNs to the mapped port, from the wan host.
	var prog strings.Builder
	prog.WriteString("from scapy.all import IP, TCP, send, conf\nconf.verb = 0\n")
	for i, src := range spoofed {
		fmt.Fprintf(&prog, "send(IP(src=%q, dst=%q)/TCP(sport=%d, dport=8000, flags='S'), count=3)\n", src, lab.GatewayWAN, 41000+i)
	}
	scapy(t, l, l.WAN, prog.String())
	// ACK and PSH+ACK packets that no SYN opened (hping3, as reported).
	for _, flags := range [][]string{{"-A"}, {"-A", "-P"}} {
		args := append([]string{"hping3", "-c", "3", "-i", "u100000", "-p", "8000"}, flags...)
		l.Output(l.WAN, append(args, lab.GatewayWAN)...) // hping3 exits 1 when nothing answers
	}
	time.Sleep(300 * time.Millisecond)
	got := counters(t, l, l.LAN, "in")
	for i, src := range spoofed {
		if got[i] != 0 {
			t.Errorf("%d SYNs with the spoofed source %s reached the mapped host", got[i], src)
		}
	}
	if n := got[len(spoofed)]; n != 0 {
		t.Errorf("%d TCP packets without SYN opened flows to the mapped host", n)
	}
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost) // a real SYN still does

	// The client ports: nmap sees no answer (open|filtered), not a
	// port-unreachable (closed).
	for _, p := range []struct{ port, from string }{{"68", "67"}, {"546", "547"}} {
		addr := lab.GatewayWAN
		if p.port == "546" {
			if _, err := l.Output(l.GW, "ip", "addr", "add", "2001:db8:1::1/64", "dev", "wan0", "nodad"); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Output(l.WAN, "ip", "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad"); err != nil {
				t.Fatal(err)
			}
			addr = "2001:db8:1::1"
		}
		args := []string{"nmap", "-sU", "-Pn", "-n", "-g", p.from, "-p", p.port, addr}
		if p.port == "546" {
			args = append(args, "-6")
		}
		out, err := l.Output(l.WAN, args...)
		if err != nil {
			t.Fatalf("nmap: %v\n%s", err, out)
		}
		if strings.Contains(out, p.port+"/udp closed") || !strings.Contains(out, p.port+"/udp open|filtered") {
			t.Errorf("UDP %s from %s:\n%s", p.port, p.from, out)
		}
	}

	// An ICMPv6 redirect from the public side does not reach the
	// gateway's ICMPv6 layer. (Conntrack already classed these invalid,
	// ahead of the accept rule the table had for them; the rule is gone,
	// as the golden files show, and this keeps the behaviour.)
	mac, err := l.Output(l.GW, "cat", "/sys/class/net/wan0/address")
	must(t, err)
	ll := func(ns, dev string) string {
		out, err := l.Output(ns, "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link")
		must(t, err)
		f := strings.Fields(out)
		if len(f) < 4 {
			t.Fatalf("no link-local address on %s: %q", dev, out)
		}
		a, _, _ := strings.Cut(f[3], "/")
		return a
	}
	redirects := func() string {
		out, err := l.Output(l.GW, "cat", "/proc/net/snmp6")
		must(t, err)
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "Icmp6InRedirects") {
				return strings.Fields(line)[1]
			}
		}
		return "?"
	}
	before := redirects()
	scapy(t, l, l.WAN, fmt.Sprintf(`
from scapy.all import Ether, IPv6, ICMPv6ND_Redirect, sendp, conf
conf.verb = 0
sendp(Ether(dst=%q)/IPv6(src=%q, dst=%q, hlim=255)/ICMPv6ND_Redirect(tgt=%q, dst="2001:db8:99::1"), iface="eth0", count=3)
`, strings.TrimSpace(mac), ll(l.WAN, "eth0"), ll(l.GW, "wan0"), ll(l.WAN, "eth0")))
	time.Sleep(200 * time.Millisecond)
	if after := redirects(); after != before {
		t.Errorf("ICMPv6 redirects from the public side reached the gateway: %s -> %s", before, after)
	}
}
