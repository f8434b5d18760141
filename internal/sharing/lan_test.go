package sharing

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/dhcp"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/services"
)

func (h *harness) services() *services.Config {
	return h.m.svc.(*services.Fake).Config()
}

func TestServicesFollowSharing(t *testing.T) {
	h := newHarness(t)
	if n := len(h.services().Networks); n != 0 {
		t.Fatalf("%d networks before sharing", n)
	}
	h.must(h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr))
	nets := h.services().Networks
	if len(nets) != 1 {
		t.Fatalf("networks %+v", nets)
	}
	n := nets[0]
	want := dhcp.Config{
		ServerIP: netip.MustParseAddr("192.168.137.1"), Subnet: netip.MustParsePrefix("192.168.137.0/24"),
		PoolStart: netip.MustParseAddr("192.168.137.100"), PoolEnd: netip.MustParseAddr("192.168.137.254"),
		LeaseTime: time.Hour, Domain: "home.arpa",
		Router: netip.MustParseAddr("192.168.137.1"), DNS: netip.MustParseAddr("192.168.137.1"),
	}
	if n.Interface != "lan1" || n.Address.String() != "192.168.137.1/24" || !slices.Equal(n.DHCP.Reservations, want.Reservations) {
		t.Fatalf("network %+v", n)
	}
	n.DHCP.Reservations = nil
	if !reflect.DeepEqual(n.DHCP, want) {
		t.Fatalf("DHCP config %+v, want the defaults %+v", n.DHCP, want)
	}
	h.must(h.m.DisableSharing(ctx, "lan1"))
	if n := len(h.services().Networks); n != 0 {
		t.Fatalf("%d networks after unsharing", n)
	}
}

func TestDHCPSettings(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr))
	s, err := h.m.SetDHCP(ctx, "lan1", DHCPEdit{PoolStart: ipPtr("192.168.137.20"), PoolEnd: ipPtr("192.168.137.29"), LeaseTime: durPtr("30m"), Domain: new("Lab.Example")})
	if err != nil || s.PoolStart != mustIP("192.168.137.20") || s.PoolEnd != mustIP("192.168.137.29") || s.LeaseTime.String() != "30m0s" || s.Domain != "lab.example" || !s.Active {
		t.Fatalf("SetDHCP = %+v, %v", s, err)
	}
	if d := h.services().Networks[0].DHCP; d.LeaseTime != 30*time.Minute || d.Domain != "lab.example" {
		t.Fatalf("services got %+v", d)
	}
	mac := "52:54:00:AA:BB:CC"
	s, err = h.m.Reserve(ctx, "lan1", Reservation{MAC: mac, IP: mustIP("192.168.137.50"), Name: "Printer"})
	if err != nil || len(s.Reservations) != 1 || s.Reservations[0] != (Reservation{MAC: "52:54:00:aa:bb:cc", IP: mustIP("192.168.137.50"), Name: "printer"}) {
		t.Fatalf("Reserve = %+v, %v", s, err)
	}
	h.restart()
	s, _ = h.m.DHCPSettings(ctx, "lan1")
	if s.PoolStart != mustIP("192.168.137.20") || len(s.Reservations) != 1 {
		t.Fatalf("after restart: %+v", s)
	}
	// Refused values name the field and change nothing.
	before := h.state()
	for _, tt := range []struct {
		edit  DHCPEdit
		field string
	}{
		{DHCPEdit{PoolStart: ipPtr("10.0.0.5")}, "poolStart"},
		{DHCPEdit{PoolEnd: ipPtr("192.168.137.255")}, "poolEnd"},
		{DHCPEdit{PoolStart: ipPtr("192.168.137.0")}, "poolStart"},
		{DHCPEdit{PoolStart: ipPtr("192.168.137.1")}, "poolStart"},
		{DHCPEdit{PoolStart: ipPtr("192.168.137.40"), PoolEnd: ipPtr("192.168.137.30")}, "poolEnd"},
		{DHCPEdit{LeaseTime: durPtr("10s")}, "leaseTime"},
		{DHCPEdit{Domain: new("bad_domain")}, "domain"},
		{DHCPEdit{Router: ipPtr("10.0.0.1")}, "router"},
		{DHCPEdit{DNSServer: ipPtr("224.0.0.1")}, "dnsServer"},
	} {
		_, err := h.m.SetDHCP(ctx, "lan1", tt.edit)
		wantInvalid(t, err, tt.field)
	}
	for _, tt := range []struct {
		r     Reservation
		field string
	}{
		{Reservation{MAC: "nope", IP: mustIP("192.168.137.51")}, "mac"},
		{Reservation{MAC: "52:54:00:00:00:01", IP: mustIP("10.1.2.3")}, "ip"},
		{Reservation{MAC: "52:54:00:00:00:01", IP: mustIP("192.168.137.50")}, "ip"},
		{Reservation{MAC: "52:54:00:00:00:01", IP: mustIP("192.168.137.51"), Name: "printer"}, "name"},
		{Reservation{MAC: "52:54:00:00:00:01", IP: mustIP("192.168.137.51"), Name: "two.labels"}, "name"},
	} {
		_, err := h.m.Reserve(ctx, "lan1", tt.r)
		wantInvalid(t, err, tt.field)
	}
	if _, err := h.m.Unreserve(ctx, "lan1", "52:54:00:00:00:09"); !hresult.IsNotFound(err) {
		t.Errorf("Unreserve(unknown) = %v", err)
	}
	if _, err := h.m.Unreserve(ctx, "lan1", "x"); hresult.CodeOf(err) != hresult.InvalidArg {
		t.Errorf("Unreserve(bad MAC) = %v", err)
	}
	if got := h.state(); got != before {
		t.Fatalf("refused calls changed the state:\n%s\nwant\n%s", got, before)
	}
	s, err = h.m.SetDHCP(ctx, "lan1", DHCPEdit{Router: ipPtr("192.168.137.254"), DNSServer: ipPtr("198.51.100.53")})
	if err != nil || s.Router != mustIP("192.168.137.254") || s.DNSServer != mustIP("198.51.100.53") {
		t.Fatalf("router and DNS server: %+v, %v", s, err)
	}
	if d := h.services().Networks[0].DHCP; d.Router.String() != "192.168.137.254" || d.DNS.String() != "198.51.100.53" {
		t.Fatalf("services got %+v", d)
	}
	// Back to the defaults.
	s, err = h.m.SetDHCP(ctx, "lan1", DHCPEdit{PoolStart: ipPtr(""), PoolEnd: ipPtr(""), LeaseTime: durPtr(""), Domain: new(""), Router: ipPtr(""), DNSServer: ipPtr("")})
	if err != nil || s.PoolStart != mustIP("192.168.137.100") || s.LeaseTime.String() != "1h0m0s" || s.Domain != "home.arpa" || s.Router != mustIP("192.168.137.1") || s.DNSServer != mustIP("192.168.137.1") || len(s.Reservations) != 1 {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	h.must(h.m.Unreserve(ctx, "lan1", mac))
}

func TestNamesAndMappingsByName(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	h.must(h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr))
	conn := h.props("lan1").ID
	pm, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: "cam", Protocol: ipproto.TCP, ExternalPort: 8000, InternalPort: 80, Target: Target{Name: "camera.home.arpa"}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := h.m.EnablePortMapping(ctx, "wan0", pm.ID)
	if !p.Unresolved || len(h.fw.Config().Mappings) != 0 {
		t.Fatalf("unknown name: %+v, firewall %v", p, h.fw.Config().Mappings)
	}
	// A lease names the host; Refresh moves the mapping to it.
	exp := time.Now().Add(time.Hour)
	if err := h.m.Bind(conn, dhcp.Lease{MAC: "52:54:00:00:00:01", IP: netip.MustParseAddr("192.168.137.100"), Hostname: "camera", Expiry: exp}); err != nil {
		t.Fatal(err)
	}
	if a, ok := h.m.Lookup("camera"); !ok || a.String() != "192.168.137.100" {
		t.Fatalf("Lookup(camera) = %v %v", a, ok)
	}
	if n, ok := h.m.Reverse(netip.MustParseAddr("192.168.137.100")); !ok || n != "camera" {
		t.Fatalf("Reverse = %q %v", n, ok)
	}
	h.m.Refresh(ctx)
	h.check()
	if got := h.fw.Config().Mappings; len(got) != 1 || got[0].Target.String() != "192.168.137.100" {
		t.Fatalf("firewall %v", got)
	}
	if p, _ := h.m.PortMapping(ctx, "wan0", pm.ID); p.Unresolved || p.Resolved != mustIP("192.168.137.100") {
		t.Fatalf("resolved: %+v", p)
	}
	// A new lease moves it; a static entry wins over leases.
	h.m.Bind(conn, dhcp.Lease{MAC: "52:54:00:00:00:01", IP: netip.MustParseAddr("192.168.137.101"), Hostname: "camera", Expiry: exp})
	h.m.Refresh(ctx)
	h.check()
	if got := h.fw.Config().Mappings; len(got) != 1 || got[0].Target.String() != "192.168.137.101" {
		t.Fatalf("after a new lease: %v", got)
	}
	h.must(h.m.AddHost(ctx, DNSHost{Name: "camera", IP: mustIP("192.168.137.5")}))
	h.m.Refresh(ctx)
	h.check()
	if got := h.fw.Config().Mappings; len(got) != 1 || got[0].Target.String() != "192.168.137.5" {
		t.Fatalf("static entry: %v", got)
	}
	h.must(h.m.RemoveHost(ctx, "camera"))
	// The lease and the names survive a restart.
	h.restart()
	if a, ok := h.m.Lookup("camera"); !ok || a.String() != "192.168.137.101" {
		t.Fatalf("after restart: %v %v", a, ok)
	}
	h.check()
	// Released: the name is gone and so is the mapping's element.
	h.m.Release(conn, dhcp.Lease{MAC: "52:54:00:00:00:01", IP: netip.MustParseAddr("192.168.137.101"), Hostname: "camera", Expiry: time.Now()})
	h.m.Refresh(ctx)
	h.check()
	if len(h.fw.Config().Mappings) != 0 {
		t.Fatalf("firewall after release: %v", h.fw.Config().Mappings)
	}
	if ls, _ := h.m.LeaseList(ctx); len(ls) != 1 || ls[0].Active || ls[0].Interface != "lan1" {
		t.Fatalf("leases %+v", ls)
	}
}

func TestDNSSettings(t *testing.T) {
	h := newHarness(t)
	ups := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.53:53"), netip.MustParseAddrPort("[2001:db8::53]:5353")}
	s, err := h.m.SetDNS(ctx, ups)
	if err != nil || !slices.Equal(s.Upstreams, ups) || !slices.Equal(s.Effective, s.Upstreams) {
		t.Fatalf("SetDNS = %+v, %v", s, err)
	}
	before := h.state()
	for _, u := range []string{"0.0.0.0:53", "224.0.0.1:53", "10.0.0.1:0"} {
		_, err := h.m.SetDNS(ctx, []netip.AddrPort{netip.MustParseAddrPort(u)})
		wantInvalid(t, err, "upstream")
	}
	for _, hst := range []DNSHost{{Name: "a.b", IP: mustIP("192.168.137.5")}, {Name: "", IP: mustIP("192.168.137.5")}, {Name: "x", IP: mustIP("fe80::1")}, {Name: "x"}} {
		_, err := h.m.AddHost(ctx, hst)
		if hresult.CodeOf(err) != hresult.InvalidArg || !(strings.HasPrefix(hresult.From(err).Message, "name:") || strings.HasPrefix(hresult.From(err).Message, "ip:")) {
			t.Errorf("AddHost(%+v) = %v", hst, err)
		}
	}
	if _, err := h.m.RemoveHost(ctx, "nobody"); !hresult.IsNotFound(err) {
		t.Errorf("RemoveHost(unknown) = %v", err)
	}
	if got := h.state(); got != before {
		t.Fatalf("refused calls changed the state")
	}
	s, err = h.m.AddHost(ctx, DNSHost{Name: "NAS", IP: mustIP("192.168.137.5")})
	if err != nil || len(s.Hosts) != 1 || s.Hosts[0] != (DNSHost{Name: "nas", IP: mustIP("192.168.137.5")}) {
		t.Fatalf("AddHost = %+v, %v", s, err)
	}
	if a, ok := h.m.Lookup("nas"); !ok || a.String() != "192.168.137.5" {
		t.Fatalf("Lookup(nas) = %v %v", a, ok)
	}
	h.restart()
	s, _ = h.m.DNSSettings(ctx)
	if len(s.Hosts) != 1 || len(s.Upstreams) != 2 {
		t.Fatalf("after restart: %+v", s)
	}
	if got := h.services().Upstreams; len(got) != 2 || got[0].String() != "198.51.100.53:53" {
		t.Fatalf("services upstreams %v", got)
	}
}

// TestNamesBelongToTheirFirstHolder replays the name takeover: the host
// that renewed last won a name, so a mapping by name moved to an
// attacker's host, and a reserved host's name became the PTR of an
// attacker's address. A name now stays with its first holder until that
// lease ends; a reservation's name is never anyone else's.
func TestNamesBelongToTheirFirstHolder(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	h.must(h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr))
	conn := h.props("lan1").ID
	h.must(h.m.Reserve(ctx, "lan1", Reservation{MAC: "52:54:00:00:00:50", IP: mustIP("192.168.137.50"), Name: "printer"}))
	now := time.Now()
	camera := dhcp.Lease{MAC: "52:54:00:00:00:01", IP: netip.MustParseAddr("192.168.137.100"), Hostname: "camera", Expiry: now.Add(time.Hour)}
	ok(t, h.m.Bind(conn, camera))
	pm, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: "cam", Protocol: ipproto.TCP, ExternalPort: 8000, InternalPort: 80, Target: Target{Name: "camera"}})
	ok(t, err)
	h.must(h.m.EnablePortMapping(ctx, "wan0", pm.ID))

	// The attacker claims both names, and renews later than the camera.
	attacker := "52:54:00:00:00:66"
	for i, name := range []string{"camera", "Printer", "printer"} {
		ok(t, h.m.Bind(conn, dhcp.Lease{MAC: attacker, IP: netip.MustParseAddr("192.168.137.166"), Hostname: name, Expiry: now.Add(2*time.Hour + time.Duration(i)*time.Second)}))
	}
	h.m.Refresh(ctx)
	h.check()
	for name, want := range map[string]string{"camera": "192.168.137.100", "printer": "192.168.137.50"} {
		if a, ok := h.m.Lookup(name); !ok || a.String() != want {
			t.Errorf("Lookup(%s) = %v %v, want %s", name, a, ok, want)
		}
	}
	if n, ok := h.m.Reverse(netip.MustParseAddr("192.168.137.166")); ok {
		t.Errorf("the attacker's address has the name %q", n)
	}
	if got := h.fw.Config().Mappings; len(got) != 1 || got[0].Target.String() != "192.168.137.100" {
		t.Fatalf("the mapping by name moved: %v", got)
	}
	if ls, _ := h.m.LeaseList(ctx); !slices.ContainsFunc(ls, func(l LeaseInfo) bool { return l.MAC == attacker && l.Hostname == "" && l.Active }) {
		t.Errorf("the attacker's lease should stand, without a name: %+v", ls)
	}
	// The camera renews: still its name.
	camera.Expiry = now.Add(3 * time.Hour)
	ok(t, h.m.Bind(conn, camera))
	if a, _ := h.m.Lookup("camera"); a.String() != "192.168.137.100" {
		t.Errorf("after the holder renewed: %v", a)
	}
	// Once the camera's lease ends, the name is free for the next claimant.
	camera.Expiry = now.Add(-time.Second)
	ok(t, h.m.Release(conn, camera))
	ok(t, h.m.Bind(conn, dhcp.Lease{MAC: attacker, IP: netip.MustParseAddr("192.168.137.166"), Hostname: "camera", Expiry: now.Add(4 * time.Hour)}))
	if a, ok := h.m.Lookup("camera"); !ok || a.String() != "192.168.137.166" {
		t.Errorf("after the holder's lease ended: %v %v", a, ok)
	}
}

// TestDeniedNames replays the WPAD hijack: a client named itself wpad
// and was served, so browsers took it as their proxy. Such names, and the
// gateway's own, are refused to clients; the administrator may still set
// them.
func TestDeniedNames(t *testing.T) {
	h := newHarness(t)
	h.m.gatewayNames = []string{"gw1"}
	h.must(h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr))
	conn := h.props("lan1").ID
	for i, name := range []string{"wpad", "WPAD", "isatap", "localhost", "gateway", "gw1"} {
		ip := netip.AddrFrom4([4]byte{192, 168, 137, byte(100 + i)})
		ok(t, h.m.Bind(conn, dhcp.Lease{MAC: fmt.Sprintf("52:54:00:00:01:%02x", i), IP: ip, Hostname: name, Expiry: time.Now().Add(time.Hour)}))
		if a, ok := h.m.Lookup(strings.ToLower(name)); ok {
			t.Errorf("a client took the name %q (%v)", name, a)
		}
		if n, ok := h.m.Reverse(ip); ok {
			t.Errorf("%s is named %q", ip, n)
		}
	}
	h.must(h.m.AddHost(ctx, DNSHost{Name: "wpad", IP: mustIP("192.168.137.2")}))
	if a, ok := h.m.Lookup("wpad"); !ok || a.String() != "192.168.137.2" {
		t.Errorf("the administrator's wpad: %v %v", a, ok)
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentBindsAreDurable writes leases from many goroutines at
// once, as the DHCP servers' workers do (their writes share commits), and
// checks that every acknowledged lease is there after a restart.
func TestConcurrentBindsAreDurable(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr))
	conn := h.props("lan1").ID
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			errs <- h.m.Bind(conn, dhcp.Lease{MAC: fmt.Sprintf("52:54:00:00:02:%02x", i), IP: netip.AddrFrom4([4]byte{192, 168, 137, byte(100 + i)}), Hostname: fmt.Sprintf("pc%d", i), Expiry: time.Now().Add(time.Hour)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		ok(t, err)
	}
	h.restart()
	ls, err := h.m.LeaseList(ctx)
	ok(t, err)
	if len(ls) != 64 {
		t.Fatalf("%d leases after a restart, want 64", len(ls))
	}
	for i := range 64 {
		if a, found := h.m.Lookup(fmt.Sprintf("pc%d", i)); !found || a != netip.AddrFrom4([4]byte{192, 168, 137, byte(100 + i)}) {
			t.Fatalf("pc%d: %v %v", i, a, found)
		}
	}
}

// BenchmarkBind writes leases one at a time and from 16 goroutines at
// once: concurrent writes share a commit (one fsync for many).
func BenchmarkBind(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", par), func(b *testing.B) {
			h := newHarness(b)
			h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr)
			conn := h.props("lan1").ID
			var n atomic.Int64
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					h.m.Bind(conn, dhcp.Lease{MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff), IP: netip.AddrFrom4([4]byte{192, 168, 137, byte(100 + i%150)}), Expiry: time.Now().Add(time.Hour)})
				}
			})
		})
	}
}

// BenchmarkBindWithLeases writes a lease with N leases present: the cost
// of a lease must not grow with N (a /16 network holds tens of thousands).
func BenchmarkBindWithLeases(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("leases=%d", n), func(b *testing.B) {
			h := newHarness(b)
			h.m.EnableSharing(ctx, "lan1", RolePrivate, netip.MustParsePrefix("10.137.0.1/16"))
			conn := h.props("lan1").ID
			ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 137, byte(1 + i>>8), byte(i)}) }
			var wg sync.WaitGroup
			for i := range n { // fill, 32 at a time (the writes share commits)
				wg.Go(func() {
					h.m.Bind(conn, dhcp.Lease{MAC: fmt.Sprintf("52:54:01:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff), IP: ip(i), Hostname: fmt.Sprintf("h%d", i), Expiry: time.Now().Add(time.Hour)})
				})
				if i%32 == 31 {
					wg.Wait()
				}
			}
			wg.Wait()
			b.ResetTimer()
			var k atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n + int(k.Add(1))
					h.m.Bind(conn, dhcp.Lease{MAC: fmt.Sprintf("52:54:02:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff), IP: ip(i % 60000), Hostname: fmt.Sprintf("n%d", i), Expiry: time.Now().Add(time.Hour)})
				}
			})
		})
	}
}
