package lab_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/conntrack"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/lab"
	"github.com/netshare/netshare/internal/pcp"
)

// torrentClient is a libtorrent session (Debian's python3-libtorrent) on
// the lan host: it listens on 6881 and maps that port by PCP, falling back
// to NAT-PMP, as a torrent client does; it prints libtorrent's port-mapping
// log, stays for the seconds given once both its mappings are made, and
// releases them as it ends.
const torrentClient = `import sys, time
import libtorrent as lt
s = lt.session({
    'listen_interfaces': '0.0.0.0:6881',
    'enable_natpmp': True, 'enable_upnp': False, 'enable_dht': False, 'enable_lsd': False,
    'alert_mask': lt.alert.category_t.port_mapping_notification | lt.alert.category_t.port_mapping_log_notification,
})
stay = float(sys.argv[1])
end, mapped = time.time() + 20, set()
while time.time() < end:
    s.wait_for_alert(100)
    for a in s.pop_alerts():
        if isinstance(a, lt.portmap_alert):
            print("mapped", a.external_port, a.map_protocol, flush=True)
            mapped.add(str(a.map_protocol))
        elif isinstance(a, (lt.portmap_log_alert, lt.portmap_error_alert)):
            print(a.message(), flush=True)
    if len(mapped) == 2 and end > time.time() + stay:
        end = time.time() + stay
del s
`

// TestPCP has libtorrent map its listening port by PCP: the mappings are
// the device's, pass traffic from the wan host, and end when libtorrent
// releases them.
func TestPCP(t *testing.T) {
	l, m := up(t)
	done := make(chan string, 1)
	go func() {
		out, err := l.Output(l.LAN, "/usr/bin/python3", "-c", torrentClient, "4")
		done <- fmt.Sprintf("%s%v", out, err)
	}()
	wan := config(t, m, "wan0")
	var ms []*hnetcfg.PortMapping
	for deadline := time.Now().Add(15 * time.Second); len(ms) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent made %d mappings:\n%s", len(ms), <-done)
		}
		ms, _ = wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	}
	for _, pm := range ms {
		if p := pm.Props(); p.Origin != hnetcfg.OriginPCP || p.Client != lab.LANHost || p.ExternalPort != 6881 || p.InternalPort != 6881 {
			t.Errorf("libtorrent's mapping reads %+v", p)
		}
	}
	connect := `import socket; socket.create_connection(("` + lab.GatewayWAN + `", 6881), timeout=1).close(); print("connected")`
	if out, err := l.Output(l.WAN, "python3", "-c", connect); err != nil || strings.TrimSpace(out) != "connected" {
		t.Errorf("the wan host could not reach libtorrent through its mapping: %q, %v", out, err)
	}
	log := <-done
	if !strings.Contains(log, "transport: PCP") {
		t.Errorf("libtorrent did not speak PCP:\n%s", log)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if ms, _ = wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT); len(ms) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent's mappings stayed after it released them: %d\n%s", len(ms), log)
		}
	}
}

// TestPCPFilter maps a port by PCP with a FILTER option, as no client
// here can (the request is written with netshare's codec), and checks it
// with real traffic from the wan host: only the remote peer the filter
// names, from its port, gets through; a filter of prefix length 0 opens
// the mapping to everyone; more filters than a mapping may have get
// EXCESSIVE_REMOTE_PEERS. A flow survives a change of the filters that
// still allows its peer, and is cut by one that does not.
func TestPCPFilter(t *testing.T) {
	l, m := up(t)
	const peer = "198.51.100.3" // a second address of the wan host
	must(t, l.Exec(l.WAN, "ip", "addr", "add", peer+"/24", "dev", "eth0"))
	if _, err := l.Start(l.LAN, "lan-server.log", "lab", "server", "--port", "7100"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	nonce := [12]byte{4, 2}
	ask := func(filters ...pcp.Filter) pcp.Response {
		t.Helper()
		req := pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpMap, Lifetime: 600, ClientIP: netip.MustParseAddr(lab.LANHost), Nonce: nonce,
			Protocol: 17, InternalPort: 7100, SuggestedPort: 7100, Filters: filters})
		var resp []byte
		var err error
		inNetns(t, l.LAN, func() {
			var c *net.UDPConn
			if c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(lab.GatewayLAN+":5351"))); err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err = c.Write(req); err != nil {
				return
			}
			buf := make([]byte, 1100)
			var n int
			n, err = c.Read(buf)
			resp = buf[:n]
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcp.ParseResponse(resp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	only := pcp.Filter{Prefix: netip.MustParsePrefix(peer + "/32"), Port: 4000}
	r := ask(only)
	if r.Result != pcp.Success || r.ExternalPort != 7100 || len(r.Filters) != 1 || r.Filters[0] != only {
		t.Fatalf("answer %+v, want success on 7100 with the filter echoed", r)
	}
	ms, err := config(t, m, "wan0").EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	if err != nil || len(ms) != 1 || !slices.Equal(ms[0].Props().RemotePeers, []string{peer + "/32 port 4000"}) {
		t.Fatalf("mappings %v, %v; want one with its remote peer", ms, err)
	}
	public := lab.GatewayWAN + ":7100"
	from := func(src string) (string, error) {
		out, err := l.Output(l.WAN, bin, "lab", "probe", "udp", public, "--from", src, "--timeout", "1s")
		return strings.TrimSpace(out), err
	}
	if got, err := from(peer + ":4000"); err != nil || !strings.HasPrefix(got, lab.Greeting+peer+":4000") {
		t.Errorf("the filter's peer: %q, %v", got, err)
	}
	for _, src := range []string{lab.WANHost + ":4000", peer + ":4001"} {
		if got, err := from(src); err == nil {
			t.Errorf("%s got through the filter: %q", src, got)
		}
	}
	ct := gatewayFlows(t, l)
	flow := func(src string) conntrack.Tuple {
		return conntrack.Tuple{Proto: ipproto.UDP, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(public)}
	}
	// settle waits for the flows from cut to leave the gateway's
	// connection tracking, then checks that those from kept are still
	// there a while after the change (a changed mapping's flows are cut
	// off the change's path, so a moment later, not at once).
	settle := func(kept, cut []string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for _, src := range cut {
			for {
				_, err := ct.Get(flow(src))
				if errors.Is(err, conntrack.ErrNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("the flow from %s outlived a filter that refuses it (%v)", src, err)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		time.Sleep(500 * time.Millisecond)
		for _, src := range kept {
			if _, err := ct.Get(flow(src)); err != nil {
				t.Errorf("the flow from %s, whose peer the filters still allow, was cut: %v", src, err)
			}
		}
	}
	// A filter of prefix length 0 removes the others.
	if r := ask(pcp.Filter{Prefix: netip.MustParsePrefix("0.0.0.0/0")}); r.Result != pcp.Success {
		t.Fatalf("clearing the filters: %+v", r)
	}
	settle([]string{peer + ":4000"}, nil)
	if got, err := from(lab.WANHost + ":4002"); err != nil || !strings.HasPrefix(got, lab.Greeting+lab.WANHost) {
		t.Errorf("after clearing the filters: %q, %v", got, err)
	}
	// The filter again: the flow its peer opened meanwhile stays, the wan
	// host's ends.
	if r := ask(only); r.Result != pcp.Success {
		t.Fatalf("the filter again: %+v", r)
	}
	settle([]string{peer + ":4000"}, []string{lab.WANHost + ":4002"})
	var five []pcp.Filter
	for i := range 5 {
		five = append(five, pcp.Filter{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32)})
	}
	if r := ask(five...); r.Result != pcp.ExcessiveRemotePeers {
		t.Errorf("five filters: %v, want EXCESSIVE_REMOTE_PEERS", r.Result)
	}
	if got, err := from(peer + ":4000"); err != nil || !strings.HasPrefix(got, lab.Greeting+peer+":4000") {
		t.Errorf("after a refused request, the filter's peer: %q, %v", got, err)
	}
	if got, err := from(lab.WANHost + ":4003"); err == nil {
		t.Errorf("a refused request changed the filter: %s got through: %q", lab.WANHost, got)
	}
}

// TestPCPPeer has the lan host open a UDP flow to the wan host's server,
// which says which public address and port it sees, and then ask for the
// flow's mapping by PCP PEER (written with netshare's codec: no client
// here sends PEER): the answer names that address and port, and the NAT
// keeps the flow for the lifetime granted.
func TestPCPPeer(t *testing.T) {
	l, _ := up(t)
	server := netip.MustParseAddrPort(fmt.Sprintf("%s:%d", lab.WANHost, lab.ServerPort))
	var seen string
	var local netip.AddrPort
	var resp pcp.Response
	var err error
	inNetns(t, l.LAN, func() {
		var c *net.UDPConn
		if c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server)); err != nil {
			return
		}
		defer c.Close()
		local = c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 512)
		c.Write([]byte("hello\n"))
		var n int
		if n, err = c.Read(buf); err != nil {
			return
		}
		seen = strings.TrimSpace(strings.TrimPrefix(string(buf[:n]), lab.Greeting))
		var p *net.UDPConn
		if p, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(lab.GatewayLAN+":5351"))); err != nil {
			return
		}
		defer p.Close()
		p.SetDeadline(time.Now().Add(3 * time.Second))
		p.Write(pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpPeer, Lifetime: 600, ClientIP: netip.MustParseAddr(lab.LANHost), Nonce: [12]byte{5},
			Protocol: 17, InternalPort: local.Port(), RemotePort: server.Port(), RemoteIP: server.Addr()}))
		if n, err = p.Read(buf); err != nil {
			return
		}
		resp, err = pcp.ParseResponse(buf[:n])
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Result != pcp.Success || resp.Opcode != pcp.OpPeer || resp.Lifetime != 600 {
		t.Fatalf("PEER answer %+v", resp)
	}
	if got := netip.AddrPortFrom(resp.ExternalIP, resp.ExternalPort).String(); got != seen {
		t.Errorf("PEER says the flow leaves from %s; the server saw it come from %s", got, seen)
	}
	ct := gatewayFlows(t, l)
	f, err := ct.Get(conntrack.Tuple{Proto: ipproto.UDP, Src: local, Dst: server})
	if err != nil || f.Timeout < 590*time.Second || f.Timeout > 600*time.Second {
		t.Errorf("the flow in the gateway's connection tracking: %+v, %v; want about 600 s left", f, err)
	}
}

// gatewayFlows opens the gateway namespace's connection tracking table,
// closed when the test ends.
func gatewayFlows(t *testing.T, l *lab.Lab) *conntrack.Conn {
	t.Helper()
	gw, err := netns.GetFromName(l.GW)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	ct, err := conntrack.Dial(int(gw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Close() })
	return ct
}
