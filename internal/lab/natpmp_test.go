package lab_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

// runNatpmpc runs Debian's natpmpc on the lan host, asking the gateway.
func runNatpmpc(t *testing.T, l *lab.Lab, args ...string) string {
	t.Helper()
	out, err := l.Output(l.LAN, append([]string{"natpmpc", "-g", lab.GatewayLAN}, args...)...)
	if err != nil {
		t.Fatalf("natpmpc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// announcements listens on the lan host, for 4 s, to what the gateway
// announces to 224.0.0.1:5350, and sends a line per packet: the source
// address, its port and the packet in hex. It returns once listening.
func announcements(l *lab.Lab) <-chan string {
	heard := make(chan string, 1)
	go func() {
		out, _ := l.Output(l.LAN, "python3", "-c", `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5350))
s.settimeout(0.2)
end = time.time() + 4
while time.time() < end:
    try:
        data, src = s.recvfrom(2048)
        print(src[0], src[1], data.hex())
    except socket.timeout:
        pass`)
		heard <- out
	}()
	time.Sleep(500 * time.Millisecond)
	return heard
}

// TestNATPMP has the lan host map its own ports with Debian's natpmpc
// (libnatpmp), as a game console or a torrent client does, and checks each
// mapping with traffic from the wan host.
func TestNATPMP(t *testing.T) {
	l, m := up(t)
	natpmpc := func(args ...string) string { t.Helper(); return runNatpmpc(t, l, args...) }
	if out := natpmpc(); !strings.Contains(out, "Public IP address : "+lab.GatewayWAN) {
		t.Fatalf("natpmpc says:\n%s", out)
	}
	if _, err := l.Start(l.LAN, "lan-server.log", "lab", "server", "--port", "7000"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	public := fmt.Sprintf("%s:7100", lab.GatewayWAN)
	blocked(t, l, l.WAN, "tcp", public)

	out := natpmpc("-a", "7100", "7000", "tcp", "600")
	if !strings.Contains(out, "Mapped public port 7100 protocol TCP to local port 7000") {
		t.Fatalf("natpmpc -a says:\n%s", out)
	}
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)
	natpmpc("-a", "7101", "7000", "udp", "600")
	reaches(t, l, l.WAN, "udp", lab.GatewayWAN+":7101", lab.WANHost)

	// The mappings are listed, as a device's, with their client.
	ms, err := config(t, m, "wan0").EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	if err != nil || len(ms) != 2 {
		t.Fatalf("mappings: %v, %v", ms, err)
	}
	for _, pm := range ms {
		if p := pm.Props(); p.Origin != hnetcfg.OriginNATPMP || p.Client != lab.LANHost || p.Expires == "" || !p.Enabled {
			t.Errorf("a device's mapping reads %+v", p)
		}
	}

	// A restart keeps them, and the epoch the clients see goes on.
	epoch := func() int {
		out := natpmpc()
		var secs int
		for _, line := range strings.Split(out, "\n") {
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "epoch = %d", &secs); err == nil {
				return secs
			}
		}
		t.Fatalf("no epoch in natpmpc's output:\n%s", out)
		return 0
	}
	before := epoch()
	// The restarted daemon announces its epoch to 224.0.0.1:5350, where
	// the lan host listens.
	heard := announcements(l)
	must(t, l.RestartDaemon(ctx))
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)
	if after := epoch(); after < before {
		t.Errorf("the epoch went back from %d to %d across a restart", before, after)
	}
	var natpmpAnn, pcpAnn bool
	for _, line := range strings.Split(strings.TrimSpace(<-heard), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != lab.GatewayLAN || f[1] != "5351" {
			continue
		}
		// NAT-PMP: version 0, opcode 128, result 0, then the epoch and the
		// address; PCP: version 2, R and ANNOUNCE, result 0.
		natpmpAnn = natpmpAnn || (len(f[2]) == 24 && strings.HasPrefix(f[2], "00800000") && strings.HasSuffix(f[2], "c6336401"))
		pcpAnn = pcpAnn || (len(f[2]) == 48 && strings.HasPrefix(f[2], "02800000"))
	}
	if !natpmpAnn || !pcpAnn {
		t.Errorf("the restarted daemon's announcements (NAT-PMP %v, PCP %v) were not heard", natpmpAnn, pcpAnn)
	}

	// Lifetime 0 deletes one; private port 0 and lifetime 0 the rest.
	natpmpc("-a", "7100", "7000", "tcp", "0")
	blocked(t, l, l.WAN, "tcp", public)
	reaches(t, l, l.WAN, "udp", lab.GatewayWAN+":7101", lab.WANHost)
	natpmpc("-a", "0", "0", "udp", "0")
	blocked(t, l, l.WAN, "udp", lab.GatewayWAN+":7101")
	if ms, _ := config(t, m, "wan0").EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT); len(ms) != 0 {
		t.Fatalf("after the deletes: %d mappings", len(ms))
	}

	// A well-known port is the administrator's to publish: a device asking
	// for one gets the first port the policy allows it.
	if out := natpmpc("-a", "80", "7000", "tcp", "600"); !strings.Contains(out, "Mapped public port 1024 protocol TCP to local port 7000") {
		t.Fatalf("natpmpc -a 80 says:\n%s", out)
	}
	reaches(t, l, l.WAN, "tcp", lab.GatewayWAN+":1024", lab.WANHost)
	// A policy that denies the lan host: NAT-PMP's "not authorized".
	pol := hnetcfg.PortMapPolicy{Rules: []hnetcfg.PortMapRule{
		{Action: "deny", Clients: lab.LANHost, External: "1-65535", Internal: "1-65535"},
		{Action: "allow", External: "1024-65535", Internal: "1-65535"},
	}, MinLifetime: "2m", MaxLifetime: "24h", Quota: 64, Rate: 20}
	if _, err := m.SetPortMapPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	out, err = l.Output(l.LAN, "natpmpc", "-g", lab.GatewayLAN, "-a", "7200", "7000", "tcp", "600")
	if err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("natpmpc asking for a port the policy denies: %v\n%s", err, out)
	}
	blocked(t, l, l.WAN, "tcp", lab.GatewayWAN+":7200")

	// Nothing answers on the public side.
	py := `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b"\x00\x00", ("` + lab.GatewayWAN + `", 5351))
try:
    print(s.recvfrom(64))
except socket.timeout:
    print("no answer")`
	if out, err := l.Output(l.WAN, "python3", "-c", py); err != nil || strings.TrimSpace(out) != "no answer" {
		t.Fatalf("NAT-PMP from the wan host: %q, %v", out, err)
	}
}

// TestNATPMPNotOnThePublicSide asks from the wan host, with the firewall
// off and a route to the private network through the gateway: the server
// answers only what came in on the private network's interface, so
// nothing answers (RFC 6886 §3: a gateway MUST NOT accept mapping requests
// arriving on its public side), and nmap's nat-pmp-info finds nothing.
func TestNATPMPNotOnThePublicSide(t *testing.T) {
	l, m := up(t)
	must(t, config(t, m, "wan0").DisableInternetFirewall(ctx))
	if _, err := l.Output(l.WAN, "ip", "route", "add", "192.168.137.0/24", "via", lab.GatewayWAN); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{lab.GatewayLAN, lab.GatewayWAN} {
		py := `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for req in (b"\x00\x00", b"\x00\x02\x00\x00\x1b\x58\x1b\x58\x00\x00\x0e\x10"):
    s.sendto(req, ("` + addr + `", 5351))
try:
    print(s.recvfrom(64))
except socket.timeout:
    print("no answer")`
		if out, err := l.Output(l.WAN, "python3", "-c", py); err != nil || strings.TrimSpace(out) != "no answer" {
			t.Errorf("NAT-PMP to %s from the wan host: %q, %v", addr, out, err)
		}
		out, err := l.Output(l.WAN, "nmap", "-sU", "-Pn", "-p", "5351", "--script", "nat-pmp-info", addr)
		if err != nil {
			t.Fatalf("nmap: %v\n%s", err, out)
		}
		if strings.Contains(out, "nat-pmp-info") {
			t.Errorf("nmap's nat-pmp-info finds the server at %s:\n%s", addr, out)
		}
	}
	// The lan host is still answered, and nmap's script says so there
	// (which shows that its silence above is the server's).
	out, err := l.Output(l.LAN, "nmap", "-sU", "-Pn", "-p", "5351", "--script", "nat-pmp-info", lab.GatewayLAN)
	if err != nil || !strings.Contains(out, "nat-pmp-info") || !strings.Contains(out, "WAN IP: "+lab.GatewayWAN) {
		t.Errorf("nmap's nat-pmp-info from the lan host: %v\n%s", err, out)
	}
}

// TestPublicAddressMoves changes the gateway's public address: the
// devices' mappings end, a new epoch is announced to the lan, and natpmpc
// then sees the new address and maps again.
func TestPublicAddressMoves(t *testing.T) {
	l, m := up(t)
	natpmpc := func(args ...string) string { t.Helper(); return runNatpmpc(t, l, args...) }
	natpmpc("-a", "7100", "7000", "tcp", "600")
	wan := config(t, m, "wan0")
	if ms, _ := wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT); len(ms) != 1 {
		t.Fatalf("%d mappings", len(ms))
	}
	heard := announcements(l)
	// (Deleting the old address first: the kernel would take a secondary
	// address away with the primary one.)
	for _, args := range [][]string{
		{"ip", "addr", "del", lab.GatewayWAN + "/24", "dev", "wan0"},
		{"ip", "addr", "add", "198.51.100.9/24", "dev", "wan0"},
		{"ip", "route", "replace", "default", "via", lab.WANHost},
	} {
		if out, err := l.Output(l.GW, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ms, _ := wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
		if len(ms) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the device's mapping stayed after the public address moved: %d", len(ms))
		}
	}
	// 198.51.100.9 is c6336409: the NAT-PMP announcement of the new
	// address.
	if out := <-heard; !strings.Contains(out, "c6336409") {
		t.Errorf("no announcement of the new address was heard:\n%s", out)
	}
	if out := natpmpc(); !strings.Contains(out, "Public IP address : 198.51.100.9") {
		t.Errorf("natpmpc says:\n%s", out)
	}
	natpmpc("-a", "7100", "7000", "tcp", "600")
	if ms, _ := wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT); len(ms) != 1 {
		t.Errorf("mapping again: %d mappings", len(ms))
	}
}
