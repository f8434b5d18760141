package lab_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/daemon"
	"github.com/netshare/netshare/internal/lab"
)

var (
	ctx = context.Background()
	bin string // the netshare binary under test
)

var lifetimes = regexp.MustCompile(`(valid|preferred)_lft \S+`)

// hostState is what the suite must leave as it found it in the host's
// own namespace.
func hostState() string {
	var b strings.Builder
	for _, args := range [][]string{{"nft", "list", "ruleset"}, {"ip", "-o", "link", "show"}, {"ip", "-o", "addr", "show"}, {"cat", "/proc/sys/net/ipv4/ip_forward"}} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		// Address lifetimes count down by themselves: not a change.
		out = lifetimes.ReplaceAll(out, nil)
		fmt.Fprintf(&b, "$ %s (%v)\n%s\n", strings.Join(args, " "), err, out)
	}
	return b.String()
}

func TestMain(m *testing.M) {
	os.Setenv(daemon.GuardEnv, "1")
	dir, err := os.MkdirTemp("", "netshare-e2e-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "netshare")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/netshare").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	before := hostState()
	code := m.Run()
	if after := hostState(); after != before {
		fmt.Fprintf(os.Stderr, "THE HOST NAMESPACE CHANGED during the tests:\nbefore:\n%s\nafter:\n%s", before, after)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// up builds a lab for one test and removes it at the end.
func up(t *testing.T) (*lab.Lab, *hnetcfg.SharingManager) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the lab needs root, and CI must run it")
		}
		t.Skip("the lab needs root (network namespaces)")
	}
	dir, err := os.MkdirTemp("", "nsl-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir) // lab.Up creates it
	l, err := lab.Up(ctx, lab.Options{Dir: dir, Binary: bin, UI: "127.0.0.1:0"})
	if l != nil {
		t.Cleanup(func() {
			if t.Failed() {
				for _, f := range []string{"daemon.log"} {
					data, _ := os.ReadFile(filepath.Join(dir, f))
					t.Logf("%s:\n%s", f, data)
				}
			}
			if err := l.Down(); err != nil {
				t.Errorf("lab down: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return l, hnetcfg.NewSharingManager(l.Socket)
}

// probe asks the server at addr, from namespace ns, who we are.
func probe(l *lab.Lab, ns, proto, addr string) (string, error) {
	out, err := l.Output(ns, bin, "lab", "probe", proto, addr, "--timeout", "1s")
	return strings.TrimSpace(out), err
}

func reaches(t *testing.T, l *lab.Lab, ns, proto, addr, wantFrom string) {
	t.Helper()
	got, err := probe(l, ns, proto, addr)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", proto, addr, ns, err)
	}
	if want := lab.Greeting + wantFrom + ":"; !strings.HasPrefix(got, want) {
		t.Fatalf("%s %s from %s: the server says %q, want it to see %s", proto, addr, ns, got, wantFrom)
	}
}

func blocked(t *testing.T, l *lab.Lab, ns, proto, addr string) {
	t.Helper()
	if got, err := probe(l, ns, proto, addr); err == nil {
		t.Fatalf("%s %s from %s got through: %q", proto, addr, ns, got)
	}
}

func config(t *testing.T, m *hnetcfg.SharingManager, conn string) *hnetcfg.SharingConfiguration {
	t.Helper()
	c, err := m.Connection(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return m.INetSharingConfigurationForINetConnection(c)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ruleset(t *testing.T, l *lab.Lab) string {
	t.Helper()
	out, err := l.Output(l.GW, "nft", "list", "table", "inet", "netshare")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSharingAndMappings walks through sharing, the firewall and port
// mappings with real traffic between the lab's namespaces.
func TestSharingAndMappings(t *testing.T) {
	l, m := up(t)
	server := fmt.Sprintf("%s:%d", lab.WANHost, lab.ServerPort)

	// The lan host reaches the wan server, which sees the gateway.
	reaches(t, l, l.LAN, "tcp", server, lab.GatewayWAN)
	reaches(t, l, l.LAN, "udp", server, lab.GatewayWAN)

	// A server on the lan host; nothing reaches it from the wan side.
	if _, err := l.Start(l.LAN, "lan-server.log", "lab", "server", "--port", "80"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	reaches(t, l, l.LAN, "tcp", "127.0.0.1:80", "127.0.0.1")
	public := fmt.Sprintf("%s:8000", lab.GatewayWAN)
	blocked(t, l, l.WAN, "tcp", public)
	blocked(t, l, l.WAN, "tcp", lab.LANHost+":80") // straight at the private network

	// A new mapping is disabled and passes nothing; enabled, it does
	// (an asymmetric one: 8000 outside, 80 inside).
	wan := config(t, m, "wan0")
	web, err := wan.AddPortMapping(ctx, "web", hnetcfg.NAT_PROTOCOL_TCP, 8000, 80, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS)
	must(t, err)
	blocked(t, l, l.WAN, "tcp", public)
	must(t, web.Enable(ctx))
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)
	dns, err := wan.AddPortMapping(ctx, "udp", hnetcfg.NAT_PROTOCOL_UDP, 8001, 80, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS)
	must(t, err)
	blocked(t, l, l.WAN, "udp", lab.GatewayWAN+":8001")
	must(t, dns.Enable(ctx))
	reaches(t, l, l.WAN, "udp", lab.GatewayWAN+":8001", lab.WANHost)

	// Hairpin: the lan host reaches the mapping at the public address,
	// and at a new one as soon as the public connection gets it.
	reaches(t, l, l.LAN, "tcp", public, lab.GatewayLAN)
	if _, err := l.Output(l.GW, "ip", "addr", "add", "198.51.100.5/24", "dev", "wan0"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := probe(l, l.LAN, "tcp", "198.51.100.5:8000"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("hairpin to a new public address: %v", err)
		}
	}

	// A mapping to the gateway itself is served there.
	if _, err := l.Start(l.GW, "gw-server.log", "lab", "server", "--port", "9000"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	blocked(t, l, l.WAN, "tcp", lab.GatewayWAN+":9000") // ICF: unsolicited to the gateway
	reaches(t, l, l.LAN, "tcp", lab.GatewayLAN+":9000", lab.LANHost)
	local, err := wan.AddPortMapping(ctx, "local", hnetcfg.NAT_PROTOCOL_TCP, 9090, 9000, 0, lab.GatewayLAN, hnetcfg.ICSTT_IPADDRESS)
	must(t, err)
	must(t, local.Enable(ctx))
	reaches(t, l, l.WAN, "tcp", lab.GatewayWAN+":9090", lab.WANHost)

	// Ping: dropped on the public connection unless allowed; the private
	// side is not firewalled.
	if got, err := probe(l, l.WAN, "icmp", lab.GatewayWAN); err == nil {
		t.Fatalf("ping got through the firewall: %s", got)
	}
	if _, err := probe(l, l.LAN, "icmp", lab.GatewayLAN); err != nil {
		t.Fatalf("ping on the private side: %v", err)
	}
	allow := true
	must(t, wan.EnableInternetFirewallRequest(ctx, hnetcfg.FirewallRequest{AllowPing: &allow}))
	if _, err := probe(l, l.WAN, "icmp", lab.GatewayWAN); err != nil {
		t.Fatalf("ping allowed but not answered: %v", err)
	}

	// Disabled, a mapping passes nothing again; enabled, it does.
	must(t, web.Disable(ctx))
	blocked(t, l, l.WAN, "tcp", public)
	must(t, web.Enable(ctx))
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)

	// A daemon restart brings back the same ruleset, and traffic.
	before := ruleset(t, l)
	must(t, l.RestartDaemon(ctx))
	if after := ruleset(t, l); after != before {
		t.Fatalf("the ruleset changed over a restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)

	// Another program flushing the ruleset gets it put back.
	if _, err := l.Output(l.GW, "nft", "flush", "ruleset"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for ruleset := ""; ; time.Sleep(100 * time.Millisecond) {
		ruleset, _ = l.Output(l.GW, "nft", "list", "table", "inet", "netshare")
		if ruleset == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ruleset was not restored within 3 s:\n%s", ruleset)
		}
	}
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)

	// Removed, a mapping passes nothing.
	must(t, wan.RemovePortMapping(ctx, web))
	blocked(t, l, l.WAN, "tcp", public)
}

// TestRemovalStopsRunningFlow checks that removing a mapping stops a UDP
// flow that is running through it at once, not when its conntrack entry
// would expire.
func TestRemovalStopsRunningFlow(t *testing.T) {
	l, m := up(t)
	if _, err := l.Start(l.LAN, "lan-server.log", "lab", "server", "--port", "5000"); err != nil {
		t.Fatal(err)
	}
	wan := config(t, m, "wan0")
	pm, err := wan.AddPortMapping(ctx, "flow", hnetcfg.NAT_PROTOCOL_UDP, 5000, 5000, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS)
	must(t, err)
	must(t, pm.Enable(ctx))
	time.Sleep(300 * time.Millisecond)
	cmd := exec.Command("ip", "netns", "exec", l.WAN, bin, "lab", "stream", lab.GatewayWAN+":5000", "--duration", "3s", "--interval", "50ms")
	var out strings.Builder
	cmd.Stdout = &out
	must(t, cmd.Start())
	start := time.Now()
	time.Sleep(1200 * time.Millisecond)
	must(t, pm.Delete(ctx))
	removedAt := time.Since(start).Milliseconds()
	must(t, cmd.Wait())
	var before, after int
	for _, f := range strings.Fields(out.String()) {
		var ms int64
		fmt.Sscan(f, &ms)
		switch {
		case ms < removedAt:
			before++
		case ms > removedAt+300:
			after++
		}
	}
	if before < 5 || after != 0 {
		t.Fatalf("answers before the removal: %d (want several), more than 300 ms after it: %d (want none)\n%s", before, after, out.String())
	}
}

// TestDisconnect checks that Disconnect stops the traffic of a connection
// and Connect brings it back.
func TestDisconnect(t *testing.T) {
	l, m := up(t)
	server := fmt.Sprintf("%s:%d", lab.WANHost, lab.ServerPort)
	reaches(t, l, l.LAN, "tcp", server, lab.GatewayWAN)
	wan, err := m.Connection(ctx, "wan0")
	must(t, err)
	must(t, wan.Disconnect(ctx))
	if wan.Props().Status != hnetcfg.NCS_DISCONNECTED {
		t.Fatalf("status after Disconnect: %s", wan.Props().Status)
	}
	blocked(t, l, l.LAN, "tcp", server)
	if out, _ := l.Output(l.GW, "ip", "route", "show", "default"); out != "" {
		t.Fatalf("a default route survived Disconnect: %s", out)
	}
	must(t, wan.Connect(ctx))
	// Connect puts back the routes that went down with the link.
	if out, _ := l.Output(l.GW, "ip", "route", "show", "default"); !strings.Contains(out, "via "+lab.WANHost) {
		t.Fatalf("the default route is not back after Connect: %q", out)
	}
	reaches(t, l, l.LAN, "tcp", server, lab.GatewayWAN)
}
