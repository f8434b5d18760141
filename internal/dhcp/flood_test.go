package dhcp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// blockingProbe is a Prober that waits until release is closed.
type blockingProbe struct {
	started chan struct{}
	release chan struct{}
}

func (p *blockingProbe) InUse(ctx context.Context, ips []netip.Addr) (map[netip.Addr]bool, error) {
	select {
	case p.started <- struct{}{}:
	default:
	}
	<-p.release
	return nil, nil
}

// TestProbesNeverBlockClients runs a probe that does not end and shows
// that clients are answered meanwhile: the probe runs without the lock
// and off the request path.
func TestProbesNeverBlockClients(t *testing.T) {
	f := newFixture(t)
	cfg := testConfig()
	cfg.PoolEnd = netip.MustParseAddr("192.168.137.200")
	f.a.SetConfig(cfg)
	f.dora(macA) // one round has made addresses ready
	bp := &blockingProbe{started: make(chan struct{}, 1), release: make(chan struct{})}
	f.a.probe = bp
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.a.ProbeRound(ctx)
	}()
	// A round probes only when addresses are wanted: take them all.
	for i := 0; ; i++ {
		select {
		case <-bp.started:
		case <-time.After(10 * time.Millisecond):
			if i < 100 {
				f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, net.HardwareAddr{2, 1, 0, 0, 0, byte(i)}))
				go f.a.ProbeRound(ctx)
				continue
			}
			t.Fatal("the probe never started")
		}
		break
	}
	// While the probe hangs: a reservation, a known client and a renewal
	// are answered at once.
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, macR)), dhcpv4.MessageTypeOffer, "192.168.137.50")
		ip := f.st.leases[macA.String()].IP.String()
		f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, dhcpv4.WithClientIP(net.ParseIP(ip)))), dhcpv4.MessageTypeAck, ip)
		f.a.Leases()
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("clients waited for a probe")
	}
	close(bp.release)
	<-done
}

// slowStore is a Store whose Bind waits until release is closed.
type slowStore struct {
	memStore
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
}

func (s *slowStore) Bind(l Lease) error {
	s.entered <- struct{}{}
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memStore.Bind(l)
}

// TestStoreWriteDoesNotHoldTheLock shows that one client's lease being
// written does not hold up another client's offer, and that the address
// being written is not offered to anyone else meanwhile.
func TestStoreWriteDoesNotHoldTheLock(t *testing.T) {
	st := &slowStore{memStore: memStore{leases: map[string]Lease{}, declined: map[netip.Addr]time.Time{}}, entered: make(chan struct{}), release: make(chan struct{})}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := NewAllocator(testConfig(), nil, nil, st, nil, nil, c.now)
	offer := a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, macA))
	ipA := offer.YourIPAddr.String()
	acked := make(chan *dhcpv4.DHCPv4)
	go func() {
		acked <- a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested(ipA), serverID(server)))
	}()
	<-st.entered
	// B asks for A's address while A's lease is being written.
	r := a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, macB, requested(ipA)))
	if r == nil || r.YourIPAddr.String() == ipA {
		t.Fatalf("B was offered %v while A's lease of %s was being written", r, ipA)
	}
	if r := a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macB, requested(ipA))); r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("B's REQUEST for %s while A's lease is being written: %v, want a NAK", ipA, r)
	}
	close(st.release)
	if r := <-acked; r == nil || r.MessageType() != dhcpv4.MessageTypeAck || r.YourIPAddr.String() != ipA {
		t.Fatalf("A's REQUEST: %v", r)
	}
}

func randomMAC(i int) net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	mac[0] = 0x02
	binary.BigEndian.PutUint32(mac[2:], uint32(i)*2654435761)
	return mac
}

// TestDiscoverFloodCannotExhaustThePool sends 20,000 DISCOVERs from
// forged addresses at a pool of four: offers hold addresses softly, so a
// client that comes after the flood (or during it) still gets a lease,
// and what the allocator keeps stays bounded by the pool.
func TestDiscoverFloodCannotExhaustThePool(t *testing.T) {
	f := newFixture(t)
	f.round()
	for i := range 20000 {
		if r := f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, randomMAC(i))); r == nil {
			t.Fatalf("DISCOVER %d of the flood got no offer: the pool looked full", i)
		}
		if i%1000 == 0 {
			f.round()
		}
	}
	f.a.mu.Lock()
	offers, queued, ready := len(f.a.offers), len(f.a.offerQ), len(f.a.ready)
	f.a.mu.Unlock()
	if offers > 4 || queued > 2*4+64 || ready > readyMax {
		t.Fatalf("after the flood: %d offers, %d queued, %d ready: not bounded by the pool of 4", offers, queued, ready)
	}
	// A real client completes its exchange, even though its offer is
	// taken over by the flood between DISCOVER and REQUEST.
	offer := f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, macA))
	f.want(offer, dhcpv4.MessageTypeOffer, "")
	for i := range 10 {
		f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, randomMAC(100000+i)))
	}
	ip := offer.YourIPAddr.String()
	f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, macA, requested(ip), serverID(server))), dhcpv4.MessageTypeAck, ip)
	// The next client too, and the leased address is offered to no one.
	ipB := f.dora(macB)
	if ipB == ip {
		t.Fatalf("A and B both got %s", ip)
	}
	for i := range 100 {
		if r := f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, randomMAC(200000+i))); r != nil && (r.YourIPAddr.String() == ip || r.YourIPAddr.String() == ipB) {
			t.Fatalf("a leased address, %s, was offered to another client", r.YourIPAddr)
		}
	}
}

// TestProbeAhead shows the probe rounds: an address that answers is set
// aside, the others are offered without a probe on the request path, a
// burst makes the next round probe more, and stale probes are redone.
func TestProbeAhead(t *testing.T) {
	cfg := testConfig()
	cfg.PoolEnd = netip.MustParseAddr("192.168.137.250")
	probe := probeSet{netip.MustParseAddr("192.168.137.101"): true}
	counting := &countingProbe{p: probe}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := &memStore{leases: map[string]Lease{}, declined: map[netip.Addr]time.Time{}}
	a := NewAllocator(cfg, nil, nil, st, counting, nil, c.now)
	if r := a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, macA)); r != nil {
		t.Fatalf("offered %s before any probe", r.YourIPAddr)
	}
	if n, _ := a.ProbeRound(ctx); n != readyMin {
		t.Fatalf("first round probed %d addresses, want %d", n, readyMin)
	}
	seen := map[string]bool{}
	for i := range readyMin - 1 {
		r := a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, randomMAC(i)))
		if r == nil {
			t.Fatalf("client %d: no offer with probed addresses ready", i)
		}
		if ip := r.YourIPAddr.String(); ip == "192.168.137.101" || seen[ip] {
			t.Fatalf("offered %s (answered a probe, or offered twice)", ip)
		}
		seen[r.YourIPAddr.String()] = true
	}
	// The burst took all that was ready: the next round probes more.
	if n, _ := a.ProbeRound(ctx); n <= readyMin {
		t.Fatalf("after a burst the round probed %d addresses, want more than %d", n, readyMin)
	}
	// Probes go stale: after probeFresh nothing is offered until the
	// next round probes again.
	c.t = c.t.Add(probeFresh)
	before := counting.n
	a.ProbeRound(ctx)
	if counting.n == before {
		t.Fatal("stale probes were not redone")
	}
	if r := a.Handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, macB)); r == nil {
		t.Fatal("no offer after a fresh round")
	}
}

type countingProbe struct {
	p probeSet
	n int
}

func (c *countingProbe) InUse(ctx context.Context, ips []netip.Addr) (map[netip.Addr]bool, error) {
	c.n += len(ips)
	return c.p.InUse(ctx, ips)
}

func TestPeek(t *testing.T) {
	good := msg(t, dhcpv4.MessageTypeDiscover, macA).ToBytes()
	mac, typ, ok := peek(good)
	if !ok || net.HardwareAddr(mac[:]).String() != macA.String() || typ != dhcpv4.MessageTypeDiscover {
		t.Fatalf("peek = %v %v %v", mac, typ, ok)
	}
	for name, b := range map[string][]byte{
		"short":          good[:100],
		"reply":          append([]byte{2}, good[1:]...),
		"no cookie":      append(append([]byte{}, good[:236]...), 0, 0, 0, 0),
		"truncated opt":  append(append([]byte{}, good[:240]...), 53, 5, 1),
		"no type":        append(append([]byte{}, good[:240]...), 255),
		"hlen 16":        append(append([]byte{}, good[:2]...), append([]byte{16}, good[3:]...)...),
		"no end, no opt": good[:240],
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, ok := peek(b); ok {
				t.Fatalf("peek accepted %s", name)
			}
		})
	}
}

func TestRecentFilter(t *testing.T) {
	f := recentFilter{}
	now := time.Unix(1000, 0)
	mac := [6]byte{2, 0, 0, 0, 0, 1}
	if f.seen(mac, now) {
		t.Fatal("seen before noted")
	}
	f.note(mac, now)
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {3 * time.Second, true}, {59 * time.Second, true}, {61 * time.Second, false}} {
		if got := f.seen(mac, now.Add(tc.after)); got != tc.want {
			t.Errorf("seen after %v = %v, want %v", tc.after, got, tc.want)
		}
	}
	if f.seen([6]byte{2, 0, 0, 0, 0, 2}, now) {
		t.Error("another address seen")
	}
	if len(f.slots) != recentSlots {
		t.Errorf("%d slots", len(f.slots))
	}
}

// TestBurstWaitsForProbesNotForOthersOffers: a burst of new clients larger
// than what is ready does not take over the young offers of the clients
// before it (who would be refused when they ask for them); the clients
// beyond wait for the next round, which probes for the whole burst. A
// flood's offers, never asked for, are taken over once they are older
// than offerYoung.
func TestBurstWaitsForProbesNotForOthersOffers(t *testing.T) {
	f := newFixture(t)
	cfg := testConfig()
	cfg.PoolEnd = netip.MustParseAddr("192.168.137.250")
	f.a = NewAllocator(cfg, nil, nil, f.st, f.probe, nil, f.clock.now)
	f.round()
	offers := map[string]string{} // mac -> ip
	var waiting []net.HardwareAddr
	for i := range 50 {
		mac := randomMAC(i)
		r, short := f.a.handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, mac), true)
		switch {
		case r != nil:
			offers[mac.String()] = r.YourIPAddr.String()
		case short:
			waiting = append(waiting, mac)
		default:
			t.Fatalf("client %d: neither an offer nor told to wait", i)
		}
	}
	if len(offers) != readyMin || len(waiting) != 50-readyMin {
		t.Fatalf("%d offers, %d waiting; want %d offers (what was ready), the rest waiting", len(offers), len(waiting), readyMin)
	}
	if n, _ := f.a.ProbeRound(ctx); n < len(waiting) {
		t.Fatalf("the round after the burst probed %d addresses for %d waiting clients", n, len(waiting))
	}
	for _, mac := range waiting {
		r, _ := f.a.handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, mac), false)
		if r == nil {
			t.Fatalf("%s: no offer after the round", mac)
		}
		offers[mac.String()] = r.YourIPAddr.String()
	}
	seen := map[string]bool{}
	for mac, ip := range offers {
		if seen[ip] {
			t.Fatalf("%s offered twice", ip)
		}
		seen[ip] = true
		hw, _ := net.ParseMAC(mac)
		f.want(f.a.Handle(ctx, msg(t, dhcpv4.MessageTypeRequest, hw, requested(ip), serverID(server))), dhcpv4.MessageTypeAck, ip)
	}

	// A flood's offers age: once older than offerYoung, a patient client
	// takes the oldest rather than wait.
	for i := range 300 {
		f.a.handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, randomMAC(1000+i)), false)
	}
	f.clock.t = f.clock.t.Add(offerYoung)
	if r, short := f.a.handle(ctx, msg(t, dhcpv4.MessageTypeDiscover, macA), true); r == nil || short {
		t.Fatal("a patient client waited behind a flood's old offers")
	}
}

// slowProbe takes a while to answer, as an ARP probe does.
type slowProbe struct{ d time.Duration }

func (p slowProbe) InUse(ctx context.Context, ips []netip.Addr) (map[netip.Addr]bool, error) {
	time.Sleep(p.d)
	return map[netip.Addr]bool{}, nil
}

// TestServerBurstOfNewClients: 100 new clients at once, against a server
// whose probes take 100 ms and that has 8 addresses ready: each is
// answered at its first DISCOVER (the clients here would try again only
// after 4 s), those beyond what was ready after a probe round.
func TestServerBurstOfNewClients(t *testing.T) {
	_, addr := startServerProbing(t, Limits{}, slowProbe{100 * time.Millisecond})
	time.Sleep(300 * time.Millisecond) // the first round: readyMin addresses
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			if _, err := client(t, addr, randomMAC(5000+i), 4*time.Second, 3*time.Second); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
