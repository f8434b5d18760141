package lab_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

// host adds a host to the lab's private network: a macvlan on the lan
// host's link, in the lan namespace. It returns the host's MAC address.
func host(t *testing.T, l *lab.Lab, name string) string {
	t.Helper()
	for _, args := range [][]string{
		// Several hosts share the lan namespace: each interface answers
		// ARP for its own addresses only, or eth0 may take the replies
		// meant for a client bound to its macvlan (a unicast DHCP renew).
		{"sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1"},
		{"ip", "link", "add", name, "link", "eth0", "type", "macvlan", "mode", "bridge"},
		{"ip", "link", "set", name, "up"},
	} {
		if _, err := l.Output(l.LAN, args...); err != nil {
			t.Fatal(err)
		}
	}
	mac, err := l.Output(l.LAN, "cat", "/sys/class/net/"+name+"/address")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(mac)
}

// script writes a DHCP client hook that prints what the client got and
// configures the address on the client's interface, and nothing else: no
// resolv.conf, no routes.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const udhcpcHook = `echo "$1 ip=$ip subnet=$subnet router=$router dns=$dns domain=$domain"
case "$1" in
bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/$subnet" dev "$interface" ;;
deconfig) ip -4 addr flush dev "$interface" ;;
esac
`

// lines follows a command's output line by line.
type lines struct {
	mu  sync.Mutex
	buf []string
	cmd *exec.Cmd
}

func start(t *testing.T, l *lab.Lab, ns string, args ...string) *lines {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ls := &lines{cmd: cmd}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ls.mu.Lock()
			ls.buf = append(ls.buf, sc.Text())
			ls.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return ls
}

// wait waits up to 15 s for a line that starts with prefix and returns it.
func (ls *lines) wait(t *testing.T, prefix string, after int) (string, int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ls.mu.Lock()
		for i := after; i < len(ls.buf); i++ {
			if strings.HasPrefix(ls.buf[i], prefix) {
				line := ls.buf[i]
				ls.mu.Unlock()
				return line, i + 1
			}
		}
		ls.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	t.Fatalf("no line starting with %q; output:\n%s", prefix, strings.Join(ls.buf, "\n"))
	return "", 0
}

func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func leaseOf(t *testing.T, m *hnetcfg.SharingManager, mac string) hnetcfg.LeaseInfo {
	t.Helper()
	ls, err := m.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.MAC == mac {
			return l
		}
	}
	t.Fatalf("no lease for %s in %+v", mac, ls)
	return hnetcfg.LeaseInfo{}
}

// dig asks netshare's DNS from the lan host and returns the answer lines
// (+short) and the status.
func dig(t *testing.T, l *lab.Lab, args ...string) (string, string) {
	t.Helper()
	full, err := l.Output(l.LAN, append([]string{"dig", "@" + lab.GatewayLAN, "+time=3", "+tries=1"}, args...)...)
	if err != nil {
		t.Fatalf("dig %v: %v", args, err)
	}
	status := ""
	for _, line := range strings.Split(full, "\n") {
		if _, s, ok := strings.Cut(line, "status: "); ok {
			status, _, _ = strings.Cut(s, ",")
		}
	}
	short, err := l.Output(l.LAN, append([]string{"dig", "@" + lab.GatewayLAN, "+time=3", "+tries=1", "+short"}, args...)...)
	if err != nil {
		t.Fatalf("dig +short %v: %v", args, err)
	}
	return strings.TrimSpace(short), status
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install udhcpc isc-dhcp-client bind9-dnsutils)", tool)
		}
	}
}

// TestDHCPAndDNS gets leases with two DHCP clients no one here wrote,
// checks what they were told, a reservation, renew and release, names in
// DNS, and that leases survive a restart of the daemon.
func TestDHCPAndDNS(t *testing.T) {
	needTools(t, "udhcpc", "dhclient", "dig")
	l, m := up(t)
	lan := config(t, m, "lan0")

	// busybox udhcpc.
	macA := host(t, l, "alpha0")
	hook := script(t, udhcpcHook)
	out, err := l.Output(l.LAN, "udhcpc", "-i", "alpha0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", hook, "-x", "hostname:alpha")
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	var bound string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "bound ") {
			bound = line
		}
	}
	ipA := field(bound, "ip")
	for k, want := range map[string]string{"subnet": "255.255.255.0", "router": lab.GatewayLAN, "dns": lab.GatewayLAN, "domain": "home.arpa"} {
		if got := field(bound, k); got != want {
			t.Errorf("udhcpc got %s=%q, want %q (%s)", k, got, want, bound)
		}
	}
	if !strings.HasPrefix(ipA, "192.168.137.") {
		t.Fatalf("udhcpc: %s", out)
	}
	if lease := leaseOf(t, m, macA); lease.IP != ipA || lease.Hostname != "alpha" || !lease.Active {
		t.Fatalf("lease of alpha: %+v", lease)
	}

	// ISC dhclient.
	macB := host(t, l, "beta0")
	dir := t.TempDir()
	hookB := script(t, `echo "$reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers dns=$new_domain_name_servers domain=$new_domain_name"
case "$reason" in BOUND|RENEW|REBOOT) ip addr add "$new_ip_address/24" dev "$interface" ;; esac
`)
	// dhclient -d stays in the foreground once bound: timeout ends it.
	dc := start(t, l, l.LAN, "timeout", "20", "dhclient", "-d", "-1", "-sf", hookB, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "beta0")
	dc.wait(t, "BOUND ", 0)
	dc.cmd.Process.Kill()
	dc.mu.Lock()
	out = strings.Join(dc.buf, "\n")
	dc.mu.Unlock()
	var boundB string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "BOUND ") {
			boundB = line
		}
	}
	for k, want := range map[string]string{"mask": "255.255.255.0", "routers": lab.GatewayLAN, "dns": lab.GatewayLAN, "domain": "home.arpa"} {
		if got := field(boundB, k); got != want {
			t.Errorf("dhclient got %s=%q, want %q (%s)", k, got, want, out)
		}
	}
	ipB := field(boundB, "ip")
	if ipB == "" || ipB == ipA {
		t.Fatalf("dhclient got %q (alpha has %s):\n%s", ipB, ipA, out)
	}

	// A reservation gets its fixed address and name.
	macP := host(t, l, "printer0")
	if _, err := lan.Reserve(ctx, hnetcfg.Reservation{MAC: macP, IP: "192.168.137.77", Name: "printer"}); err != nil {
		t.Fatal(err)
	}
	out, err = l.Output(l.LAN, "udhcpc", "-i", "printer0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", hook)
	if err != nil || !strings.Contains(out, "bound ip=192.168.137.77 ") {
		t.Fatalf("reserved client: %v\n%s", err, out)
	}

	// DNS: private names bare and under the domain, PTR, a static entry,
	// the upstream's names, over UDP and TCP.
	must(t, func() error {
		_, err := m.AddDNSHost(ctx, hnetcfg.DNSHost{Name: "nas", IP: "192.168.137.5"})
		return err
	}())
	for _, q := range []struct {
		args []string
		want string
	}{
		{[]string{"alpha"}, ipA},
		{[]string{"alpha.home.arpa"}, ipA},
		{[]string{"ALPHA.home.arpa", "+tcp"}, ipA},
		{[]string{"printer.home.arpa"}, "192.168.137.77"},
		{[]string{lab.LANHostName}, lab.LANHost},
		{[]string{"nas"}, "192.168.137.5"},
		{[]string{"-x", "192.168.137.77"}, "printer.home.arpa."},
		{[]string{"-x", ipA}, "alpha.home.arpa."},
		{[]string{"example.test"}, lab.WANHost},
		{[]string{"www.example.test", "+tcp"}, lab.WANHost},
	} {
		if got, status := dig(t, l, q.args...); got != q.want || status != "NOERROR" {
			t.Errorf("dig %v: %q %s, want %q", q.args, got, status, q.want)
		}
	}
	for _, name := range []string{"nobody.home.arpa", "nobody", "gone.example.test"} {
		if got, status := dig(t, l, name); got != "" || status != "NXDOMAIN" {
			t.Errorf("dig %s: %q %s, want NXDOMAIN", name, got, status)
		}
	}

	// Renew and release with a long-running udhcpc (-R releases on exit).
	c := start(t, l, l.LAN, "udhcpc", "-i", "alpha0", "-f", "-R", "-t", "5", "-T", "1", "-s", hook, "-x", "hostname:alpha")
	_, next := c.wait(t, "bound ", 0)
	first := leaseOf(t, m, macA)
	time.Sleep(1100 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGUSR1)
	c.wait(t, "renew ", next)
	if renewed := leaseOf(t, m, macA); renewed.Expiry <= first.Expiry || renewed.IP != first.IP {
		t.Fatalf("renew: %+v, then %+v", first, renewed)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
	if released := leaseOf(t, m, macA); released.Active {
		t.Fatalf("lease still active after release: %+v", released)
	}
	if got, status := dig(t, l, "alpha"); status != "NXDOMAIN" {
		t.Errorf("dig alpha after release: %q %s, want NXDOMAIN", got, status)
	}

	// Leases and names survive a restart of the daemon.
	before, _ := m.Leases(ctx)
	must(t, l.RestartDaemon(ctx))
	after, _ := m.Leases(ctx)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("leases changed over a restart:\n%v\n%v", before, after)
	}
	if got, _ := dig(t, l, "printer"); got != "192.168.137.77" {
		t.Errorf("dig printer after restart: %q", got)
	}
	if lease := leaseOf(t, m, macB); !lease.Active || lease.IP != ipB {
		t.Errorf("dhclient's lease after restart: %+v", lease)
	}
}

// TestMappingByName publishes a service by host name: unresolved while
// the name is unknown, reaching the host once its lease names it, and
// following it to a new address.
func TestMappingByName(t *testing.T) {
	needTools(t, "udhcpc")
	l, m := up(t)
	if _, err := l.Start(l.LAN, "lan-server.log", "lab", "server", "--port", "80"); err != nil {
		t.Fatal(err)
	}
	wan := config(t, m, "wan0")
	lan := config(t, m, "lan0")
	pm, err := wan.AddPortMapping(ctx, "cam", hnetcfg.NAT_PROTOCOL_TCP, 8000, 80, 0, "camera", hnetcfg.ICSTT_NAME)
	must(t, err)
	must(t, pm.Enable(ctx))
	if p, _ := pm.Properties(ctx); !p.Unresolved || p.ResolvedIPAddress != "" {
		t.Fatalf("unknown name: %+v", p)
	}
	public := lab.GatewayWAN + ":8000"
	blocked(t, l, l.WAN, "tcp", public)

	resolvedTo := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			p, err := pm.Properties(ctx)
			must(t, err)
			if p.ResolvedIPAddress == want && !p.Unresolved {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the mapping did not follow camera to %s: %+v", want, p)
			}
		}
	}
	mac := host(t, l, "camera0")
	hook := script(t, udhcpcHook)
	c := start(t, l, l.LAN, "udhcpc", "-i", "camera0", "-f", "-R", "-t", "5", "-T", "1", "-s", hook, "-x", "hostname:camera")
	line, next := c.wait(t, "bound ", 0)
	first := field(line, "ip")
	resolvedTo(first)
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)

	// Its address changes: a reservation elsewhere, and a renew that the
	// server refuses, so the client starts over.
	_, err = lan.Reserve(ctx, hnetcfg.Reservation{MAC: mac, IP: "192.168.137.150", Name: "camera"})
	must(t, err)
	c.cmd.Process.Signal(syscall.SIGUSR1)
	c.wait(t, "bound ip=192.168.137.150 ", next)
	resolvedTo("192.168.137.150")
	if out, _ := l.Output(l.GW, "nft", "list", "map", "inet", "netshare", "mappings"); !strings.Contains(out, `"wan0" . tcp . 8000 : 192.168.137.150 . 80`) {
		t.Fatalf("the map element did not move:\n%s", out)
	}
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)

	// Gone: released, and the reservation removed.
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
	_, err = lan.Unreserve(ctx, mac)
	must(t, err)
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if p, _ := pm.Properties(ctx); p.Unresolved {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("still resolved: %+v", p)
		}
	}
	blocked(t, l, l.WAN, "tcp", public)
}
