package dhcp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var ctx = context.Background()

type memStore struct {
	leases   map[string]Lease
	declined map[netip.Addr]time.Time
	fail     error
}

func (s *memStore) Bind(l Lease) error {
	if s.fail != nil {
		return s.fail
	}
	s.leases[l.MAC] = l
	return nil
}
func (s *memStore) Release(l Lease) error { s.leases[l.MAC] = l; return nil }
func (s *memStore) Decline(ip netip.Addr, until time.Time) error {
	s.declined[ip] = until
	return nil
}

// probeSet is a Prober: the addresses in it answer.
type probeSet map[netip.Addr]bool

func (p probeSet) InUse(_ context.Context, ips []netip.Addr) (map[netip.Addr]bool, error) {
	used := map[netip.Addr]bool{}
	for _, ip := range ips {
		if p[ip] {
			used[ip] = true
		}
	}
	return used, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var (
	server = netip.MustParseAddr("192.168.137.1")
	macA   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xa}
	macB   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xb}
	macR   = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xc}
)

func testConfig() Config {
	return Config{
		ServerIP:  server,
		Subnet:    netip.MustParsePrefix("192.168.137.0/24"),
		PoolStart: netip.MustParseAddr("192.168.137.100"),
		PoolEnd:   netip.MustParseAddr("192.168.137.103"),
		LeaseTime: time.Hour,
		Domain:    "home.arpa",
		Router:    server,
		DNS:       server,
		Reservations: []Reservation{
			{MAC: macR.String(), IP: netip.MustParseAddr("192.168.137.50"), Name: "printer"},
		},
	}
}

type fixture struct {
	t     *testing.T
	a     *Allocator
	st    *memStore
	clock *clock
	probe probeSet
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, st: &memStore{leases: map[string]Lease{}, declined: map[netip.Addr]time.Time{}}, clock: &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, probe: probeSet{}}
	f.a = NewAllocator(testConfig(), nil, nil, f.st, f.probe, nil, f.clock.now)
	return f
}

func msg(t *testing.T, typ dhcpv4.MessageType, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(typ), dhcpv4.WithHwAddr(mac)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func requested(ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
}

func serverID(ip netip.Addr) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip.AsSlice()))
}

func hostname(s string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptHostName(s))
}

func (f *fixture) want(resp *dhcpv4.DHCPv4, typ dhcpv4.MessageType, yiaddr string) {
	f.t.Helper()
	if resp == nil {
		f.t.Fatalf("no reply, want %s %s", typ, yiaddr)
	}
	if resp.MessageType() != typ {
		f.t.Fatalf("reply %s, want %s", resp.MessageType(), typ)
	}
	if yiaddr != "" && !resp.YourIPAddr.Equal(net.ParseIP(yiaddr)) {
		f.t.Fatalf("%s yiaddr %s, want %s", typ, resp.YourIPAddr, yiaddr)
	}
}

// round runs a probe round, as the server does in the background.
func (f *fixture) round() {
	f.t.Helper()
	if _, err := f.a.ProbeRound(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// discover runs a probe round, then sends a DISCOVER from mac.
func (f *fixture) discover(mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	f.t.Helper()
	f.round()
	return f.a.Handle(ctx, msg(f.t, dhcpv4.MessageTypeDiscover, mac, mods...))
}

// dora runs DISCOVER, OFFER, REQUEST, ACK for mac and returns the address.
func (f *fixture) dora(mac net.HardwareAddr, mods ...dhcpv4.Modifier) string {
	f.t.Helper()
	offer := f.discover(mac, mods...)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		f.t.Fatalf("DISCOVER got %v, want an OFFER", offer)
	}
	ip := offer.YourIPAddr.String()
	ack := f.a.Handle(ctx, msg(f.t, dhcpv4.MessageTypeRequest, mac, append(mods, requested(ip), serverID(server))...))
	f.want(ack, dhcpv4.MessageTypeAck, ip)
	return ip
}

func TestOfferCarriesTheNetwork(t *testing.T) {
	f := newFixture(t)
	offer := f.discover(macA)
	f.want(offer, dhcpv4.MessageTypeOffer, "192.168.137.100")
	if got := net.IP(offer.SubnetMask()).String(); got != "255.255.255.0" {
		t.Errorf("mask %s", got)
	}
	if r := offer.Router(); len(r) != 1 || !r[0].Equal(server.AsSlice()) {
		t.Errorf("router %v", r)
	}
	if d := offer.DNS(); len(d) != 1 || !d[0].Equal(server.AsSlice()) {
		t.Errorf("dns %v", d)
	}
	if offer.DomainName() != "home.arpa" || offer.IPAddressLeaseTime(0) != time.Hour || !offer.ServerIdentifier().Equal(server.AsSlice()) {
		t.Errorf("domain %q, lease %v, server %v", offer.DomainName(), offer.IPAddressLeaseTime(0), offer.ServerIdentifier())
	}
	if len(f.st.leases) != 0 {
		t.Error("an offer was recorded as a lease")
	}
}

func TestLeaseLifecycle(t *testing.T) {
	f := newFixture(t)
	ip := f.dora(macA, hostname("Laptop_One"))
	if l := f.st.leases[macA.String()]; l.IP.String() != ip || l.Hostname != "laptop-one" || !l.Expiry.Equal(f.clock.t.Add(time.Hour)) {
		t.Fatalf("stored lease %+v", l)
	}
	// A second client gets another address; the same client the same one.
	ipB := f.dora(macB)
	if ipB == ip {
		t.Fatal("two clients got one address")
	}
	if again := f.dora(macA); again != ip {
		t.Fatalf("the client got %s, then %s", ip, again)
	}
	// RENEWING: unicast with ciaddr.
	f.clock.t = f.clock.t.Add(30 * time.Minute)
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, dhcpv4.WithClientIP(net.ParseIP(ip)))), dhcpv4.MessageTypeAck, ip)
	if l := f.st.leases[macA.String()]; !l.Expiry.Equal(f.clock.t.Add(time.Hour)) || l.Hostname != "laptop-one" {
		t.Fatalf("renewed lease %+v", l)
	}
	// Renewing someone else's address is refused.
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, dhcpv4.WithClientIP(net.ParseIP(ipB)))), dhcpv4.MessageTypeNak, "")
	// INIT-REBOOT on a wrong network, or on a taken address: NAK.
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested("10.0.0.5"))), dhcpv4.MessageTypeNak, "")
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested(ipB))), dhcpv4.MessageTypeNak, "")
	// INIT-REBOOT on its own address: ACK.
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested(ip))), dhcpv4.MessageTypeAck, ip)
	// A REQUEST for another server's offer: silence, and our offer is
	// dropped.
	if r := f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested(ip), serverID(netip.MustParseAddr("192.168.137.254")))); r != nil {
		t.Fatalf("answered a REQUEST meant for another server: %v", r)
	}
	// RELEASE ends the lease now; the client comes back to its address.
	f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRelease, macA, dhcpv4.WithClientIP(net.ParseIP(ip))))
	if l := f.st.leases[macA.String()]; !l.Expiry.Equal(f.clock.t) {
		t.Fatalf("released lease %+v", l)
	}
	if again := f.dora(macA); again != ip {
		t.Fatalf("after release the client got %s, want %s again", again, ip)
	}
}

func TestReservation(t *testing.T) {
	f := newFixture(t)
	if ip := f.dora(macR, hostname("whatever")); ip != "192.168.137.50" {
		t.Fatalf("reserved client got %s", ip)
	}
	if l := f.st.leases[macR.String()]; l.Hostname != "printer" {
		t.Errorf("reserved name %q, want printer", l.Hostname)
	}
	// Nobody else gets the reserved address, even asking for it.
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested("192.168.137.50"))), dhcpv4.MessageTypeNak, "")
	// The reserved client asking for another address is told no.
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macR, requested("192.168.137.100"))), dhcpv4.MessageTypeNak, "")
}

func TestProbeAndDecline(t *testing.T) {
	f := newFixture(t)
	f.probe[netip.MustParseAddr("192.168.137.100")] = true // a static host
	if ip := f.dora(macA); ip != "192.168.137.101" {
		t.Fatalf("got %s, want the first address that does not answer a probe", ip)
	}
	// The client finds its address in use and declines it.
	f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeDecline, macA, requested("192.168.137.101")))
	if _, ok := f.st.declined[netip.MustParseAddr("192.168.137.101")]; !ok {
		t.Fatal("the decline was not recorded")
	}
	if ip := f.dora(macA); ip == "192.168.137.101" || ip == "192.168.137.100" {
		t.Fatalf("got %s again", ip)
	}
}

func TestPoolExhaustionAndReclaim(t *testing.T) {
	f := newFixture(t)
	macs := []net.HardwareAddr{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3}, {2, 0, 0, 0, 0, 4}}
	for _, m := range macs {
		f.dora(m)
	}
	if r := f.discover(macB); r != nil {
		t.Fatalf("offered %s from a full pool", r.YourIPAddr)
	}
	// Expired leases are reclaimed.
	f.clock.t = f.clock.t.Add(2 * time.Hour)
	if ip := f.dora(macB); ip == "" {
		t.Fatal("no address after the leases expired")
	}
}

func TestInform(t *testing.T) {
	f := newFixture(t)
	r := f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeInform, macA, dhcpv4.WithClientIP(net.ParseIP("192.168.137.7"))))
	f.want(r, dhcpv4.MessageTypeAck, "0.0.0.0")
	if r.DomainName() != "home.arpa" || r.IPAddressLeaseTime(0) != 0 {
		t.Fatalf("INFORM answer: domain %q lease %v", r.DomainName(), r.IPAddressLeaseTime(0))
	}
}

func TestStoreFailureMeansNoAck(t *testing.T) {
	f := newFixture(t)
	offer := f.discover(macA)
	f.st.fail = context.DeadlineExceeded
	if r := f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested(offer.YourIPAddr.String()), serverID(server))); r != nil {
		t.Fatalf("acknowledged a lease that was not recorded: %v", r)
	}
}

func TestBroadcast(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.137.0/24": "192.168.137.255",
		"192.168.137.1/24": "192.168.137.255",
		"10.1.0.0/16":      "10.1.255.255",
		"10.0.0.8/30":      "10.0.0.11",
		"172.16.0.0/12":    "172.31.255.255",
	} {
		if got := broadcast(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("broadcast(%s) = %s, want %s", in, got, want)
		}
	}
	// The offer says so too.
	f := newFixture(t)
	offer := f.discover(macA)
	if got := net.IP(offer.BroadcastAddress()).String(); got != "192.168.137.255" {
		t.Errorf("the offer's broadcast address is %s", got)
	}
}

func TestHostLabel(t *testing.T) {
	for in, want := range map[string]string{
		"Laptop":           "laptop",
		"my_pc":            "my-pc",
		"host.example.com": "host",
		"-x-":              "x",
		"élan":             "lan",
		"":                 "",
		"!!!":              "",
	} {
		if got := HostLabel(in); got != want {
			t.Errorf("HostLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzHandle feeds the allocator whatever parses as a DHCPv4 message: it
// must never panic, and whatever it answers must serialize.
func FuzzHandle(f *testing.F) {
	for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeInform} {
		m, _ := dhcpv4.New(dhcpv4.WithMessageType(typ), dhcpv4.WithHwAddr(macA), requested("192.168.137.100"), serverID(server), hostname("x"))
		f.Add(m.ToBytes())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := dhcpv4.FromBytes(data)
		if err != nil {
			return
		}
		st := &memStore{leases: map[string]Lease{}, declined: map[netip.Addr]time.Time{}}
		c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		a := NewAllocator(testConfig(), nil, nil, st, probeSet{}, nil, c.now)
		if _, err := a.ProbeRound(ctx); err != nil {
			t.Fatal(err)
		}
		peek(data)
		for range 2 {
			if r := a.Handle(ctx, m); r != nil {
				r.ToBytes()
			}
		}
	})
}
