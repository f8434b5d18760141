// Package dhcp is the DHCPv4 server of a private network: an Allocator that
// follows RFC 2131 (DISCOVER/OFFER, REQUEST/ACK or NAK, renew and rebind,
// RELEASE, DECLINE, INFORM), with a pool, reservations by hardware address,
// addresses probed (ARP) ahead of need in the background, and leases kept
// through a Store; and a Server that runs it on an interface.
//
// The Allocator is pure logic on parsed messages, so that it is tested and
// fuzzed without sockets. It never waits on the request path: probes run
// in rounds beside it, the Store is written without its lock, and offers
// hold their address softly, so that forged DISCOVERs cannot exhaust the
// pool. The Server bounds what a flood costs: a rate per client and for
// unknown clients, known clients served first, fixed queues and buffers,
// drops counted and logged. A new client that finds no probed address
// ready waits, parked, for the next probe round (a few hundred
// milliseconds), which probes for every client that asked.
package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/netshare/netshare/internal/ratelimit"
)

// Config describes the DHCP service of one private network.
type Config struct {
	// ServerIP is the gateway's address on the network; Subnet its prefix.
	ServerIP netip.Addr
	Subnet   netip.Prefix
	// PoolStart and PoolEnd bound the addresses handed out, inclusive.
	PoolStart, PoolEnd netip.Addr
	LeaseTime          time.Duration
	Domain             string
	Router, DNS        netip.Addr
	Reservations       []Reservation
}

// Reservation gives a hardware address a fixed address and a name.
type Reservation struct {
	MAC  string // lower-case, colon-separated
	IP   netip.Addr
	Name string
}

// Lease is an address bound to a client.
type Lease struct {
	MAC      string
	IP       netip.Addr
	Hostname string
	Expiry   time.Time
}

// Store keeps leases. Its methods are called without the Allocator's lock
// and must not call back into it.
type Store interface {
	// Bind records a lease granted or renewed.
	Bind(l Lease) error
	// Release ends the lease of mac now, keeping nothing of it but the
	// address the client last had.
	Release(l Lease) error
	// Decline sets ip aside until until: a client found it in use.
	Decline(ip netip.Addr, until time.Time) error
}

// Prober tells which of some addresses answer on the network, so that an
// address in use by a host the server does not know (one configured by
// hand) is not offered: Windows ICS checked the same with ARP. It is never
// called on a client's request path: ProbeRound runs it in the background.
type Prober interface {
	InUse(ctx context.Context, ips []netip.Addr) (map[netip.Addr]bool, error)
}

// Timing and sizes.
const (
	offerHold = 30 * time.Second // an offer keeps its address for this long, unless the pool runs short
	// offerYoung is how long an offer is safe from a takeover by a client
	// that has not yet waited for a probe round: a real client asks for
	// its offer within it, so a burst of new clients does not take each
	// other's addresses, while a flood's offers, never asked for, age.
	offerYoung  = time.Second
	declineHold = 10 * time.Minute // a declined address rests for this long
	// probeFresh is how long a probe that found an address free is
	// trusted: an address probed longer ago is probed again before it is
	// offered.
	probeFresh = 2 * time.Minute
	// readyMin and readyMax bound how many probed addresses are kept
	// ready: at least readyMin, and twice as many as were taken since the
	// last round, so that a burst of new clients finds addresses waiting.
	readyMin, readyMax = 8, 256
	// scanBudget bounds the addresses looked at in one round.
	scanBudget = 4096
)

// Allocator hands out addresses. Its methods are safe for concurrent use;
// none holds the lock across I/O (the Store and the Prober are called
// without it).
type Allocator struct {
	store Store
	probe Prober
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex // guards the fields below
	cfg      Config
	leases   map[string]*Lease // by MAC, expired ones included
	byIP     map[netip.Addr]string
	declined map[netip.Addr]time.Time
	binding  map[netip.Addr]string // addresses being written to the Store, and for whom
	// Offers hold their address softly: a new client takes the address
	// of the oldest offer when no probed address is ready (an offer older
	// than offerYoung, or any once the client has waited a probe round),
	// so that DISCOVERs, which cost a client nothing, never exhaust the
	// pool. A REQUEST is granted for any free address, offered or not.
	offers  map[string]offer      // by MAC
	offered map[netip.Addr]string // the MAC each offered address went to
	offerQ  []netip.Addr          // offered addresses, oldest first (some stale)
	// Addresses found free by a probe, oldest first (some stale); every
	// address in ready is in isReady with the time it was probed.
	ready   []netip.Addr
	isReady map[netip.Addr]time.Time
	taken   int        // addresses taken from ready since the last round
	missed  int        // clients that found nothing ready since the last round
	target  int        // how many probed addresses the rounds keep ready
	cursor  netip.Addr // where the next round's scan of the pool starts
	kick    chan struct{}

	logLimit *ratelimit.Sampler // lines a flood could repeat
}

type offer struct {
	ip    netip.Addr
	until time.Time
}

// NewAllocator returns an Allocator for cfg with the leases already known.
// probe may be nil (addresses are offered without a probe); log may be
// nil; now nil means time.Now. With a probe, addresses are offered only
// once ProbeRound found them free: the caller runs ProbeRound in the
// background (Server does), waking on Kick.
func NewAllocator(cfg Config, leases []Lease, declined map[netip.Addr]time.Time, st Store, probe Prober, log *slog.Logger, now func() time.Time) *Allocator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	a := &Allocator{
		store: st, probe: probe, log: log, now: now, cfg: cfg,
		leases: map[string]*Lease{}, byIP: map[netip.Addr]string{},
		declined: map[netip.Addr]time.Time{}, binding: map[netip.Addr]string{},
		offers: map[string]offer{}, offered: map[netip.Addr]string{},
		isReady: map[netip.Addr]time.Time{}, kick: make(chan struct{}, 1),
		logLimit: ratelimit.NewSampler(1, 10),
	}
	for _, l := range leases {
		a.setLease(l)
	}
	for ip, until := range declined {
		a.declined[ip] = until
	}
	return a
}

func (a *Allocator) setLease(l Lease) {
	if old := a.leases[l.MAC]; old != nil && a.byIP[old.IP] == l.MAC {
		delete(a.byIP, old.IP)
	}
	a.leases[l.MAC] = &l
	a.byIP[l.IP] = l.MAC
}

// Config returns the configuration in use.
func (a *Allocator) Config() Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// SetConfig changes the configuration; leases outside the new pool keep
// their address until they end.
func (a *Allocator) SetConfig(cfg Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg = cfg
}

// NormalizeMAC returns a hardware address in the form leases use, or an
// error if s is not a 6-byte MAC address.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address such as 52:54:00:12:34:56", s)
	}
	return hw.String(), nil
}

// HostLabel turns a client-supplied host name (option 12) into a DNS
// label: lower case, letters, digits and hyphens, at most 63 characters;
// "" if nothing usable is left.
func HostLabel(s string) string {
	s, _, _ = strings.Cut(strings.ToLower(s), ".")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '_' || r == ' ':
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// reservationLocked returns the reservation of mac, or of ip.
func (a *Allocator) reservationLocked(mac string, ip netip.Addr) (Reservation, bool) {
	for _, r := range a.cfg.Reservations {
		if (mac != "" && r.MAC == mac) || (ip.IsValid() && r.IP == ip) {
			return r, true
		}
	}
	return Reservation{}, false
}

// Known reports whether the server knows mac: it has a lease (current or
// ended), a reservation or an offer. The server serves known clients
// before new ones.
func (a *Allocator) Known(mac string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.leases[mac]; ok {
		return true
	}
	if _, ok := a.offers[mac]; ok {
		return true
	}
	_, ok := a.reservationLocked(mac, netip.Addr{})
	return ok
}

// freeForLocked reports whether ip may be given to mac now. Offers to
// other clients do not count: they hold their address softly.
func (a *Allocator) freeForLocked(mac string, ip netip.Addr, now time.Time) bool {
	if !a.cfg.Subnet.Contains(ip) || ip == a.cfg.ServerIP || ip == a.cfg.Subnet.Masked().Addr() || ip == broadcast(a.cfg.Subnet) {
		return false
	}
	if r, ok := a.reservationLocked("", ip); ok && r.MAC != mac {
		return false
	}
	if until, ok := a.declined[ip]; ok && now.Before(until) {
		return false
	}
	if owner, ok := a.binding[ip]; ok && owner != mac {
		return false
	}
	if owner, ok := a.byIP[ip]; ok && owner != mac && now.Before(a.leases[owner].Expiry) {
		return false
	}
	return true
}

// offeredToOtherLocked reports whether a live offer holds ip for another
// client than mac.
func (a *Allocator) offeredToOtherLocked(mac string, ip netip.Addr, now time.Time) bool {
	m, ok := a.offered[ip]
	return ok && m != mac && now.Before(a.offers[m].until)
}

// poolSize returns the number of addresses in the pool.
func (a *Allocator) poolSize() uint64 {
	if !a.cfg.PoolStart.Is4() || !a.cfg.PoolEnd.Is4() || a.cfg.PoolEnd.Less(a.cfg.PoolStart) {
		return 0
	}
	return uint64(u32(a.cfg.PoolEnd)-u32(a.cfg.PoolStart)) + 1
}

func u32(ip netip.Addr) uint32 {
	b := ip.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (a *Allocator) inPool(ip netip.Addr) bool {
	return ip.Compare(a.cfg.PoolStart) >= 0 && ip.Compare(a.cfg.PoolEnd) <= 0
}

// probedLocked reports whether ip was found free by a recent probe (or
// needs none).
func (a *Allocator) probedLocked(ip netip.Addr, now time.Time) bool {
	if a.probe == nil {
		return true
	}
	at, ok := a.isReady[ip]
	return ok && now.Sub(at) < probeFresh
}

// chooseLocked picks the address to offer mac: its reservation, its
// offer, its current or last address, the address it asks for if a probe
// found it free, the oldest address a probe found free, or else the
// address of the oldest offer (only of one older than offerYoung when
// patient). It never waits: when nothing is ready it wakes the prober
// and returns false.
func (a *Allocator) chooseLocked(mac string, requested netip.Addr, now time.Time, patient bool) (netip.Addr, bool) {
	if r, ok := a.reservationLocked(mac, netip.Addr{}); ok {
		return r.IP, true
	}
	if o, ok := a.offers[mac]; ok && now.Before(o.until) && a.freeForLocked(mac, o.ip, now) {
		return o.ip, true
	}
	if l := a.leases[mac]; l != nil && a.inPool(l.IP) && a.freeForLocked(mac, l.IP, now) {
		return l.IP, true
	}
	if requested.IsValid() && a.inPool(requested) && a.freeForLocked(mac, requested, now) &&
		!a.offeredToOtherLocked(mac, requested, now) && a.probedLocked(requested, now) {
		return requested, true
	}
	if a.probe == nil && len(a.ready) == 0 {
		a.fillLocked(now, readyMin)
	}
	for len(a.ready) > 0 {
		ip := a.ready[0]
		a.ready = a.ready[1:]
		at, ok := a.isReady[ip]
		delete(a.isReady, ip)
		if !ok || (a.probe != nil && now.Sub(at) >= probeFresh) || !a.inPool(ip) ||
			!a.freeForLocked(mac, ip, now) || a.offeredToOtherLocked(mac, ip, now) {
			continue
		}
		a.taken++
		if len(a.ready) == 0 {
			a.wake()
		}
		return ip, true
	}
	a.missed++
	a.wake()
	// The pool is short of probed addresses: take over the oldest offer.
	for len(a.offerQ) > 0 {
		ip := a.offerQ[0]
		m, ok := a.offered[ip]
		if !ok || m == mac || !a.inPool(ip) || !a.freeForLocked(mac, ip, now) {
			a.offerQ = a.offerQ[1:]
			continue
		}
		if patient && now.Before(a.offers[m].until.Add(offerYoung-offerHold)) {
			break // the oldest offer is young: wait for the probes
		}
		a.offerQ = a.offerQ[1:]
		return ip, true
	}
	return netip.Addr{}, false
}

// offerLocked records an offer of ip to mac, ending any other offer of
// ip and any other offer to mac.
func (a *Allocator) offerLocked(mac string, ip netip.Addr, now time.Time) {
	if m, ok := a.offered[ip]; ok && m != mac {
		delete(a.offers, m)
	}
	if o, ok := a.offers[mac]; ok && o.ip != ip && a.offered[o.ip] == mac {
		delete(a.offered, o.ip)
	}
	a.offers[mac] = offer{ip: ip, until: now.Add(offerHold)}
	a.offered[ip] = mac
	delete(a.isReady, ip)
	a.offerQ = append(a.offerQ, ip)
	if len(a.offerQ) > 2*len(a.offered)+64 {
		a.offerQ = slices.DeleteFunc(a.offerQ, func(ip netip.Addr) bool { _, ok := a.offered[ip]; return !ok })
	}
}

// endOfferLocked ends mac's offer, if any.
func (a *Allocator) endOfferLocked(mac string) {
	if o, ok := a.offers[mac]; ok {
		if a.offered[o.ip] == mac {
			delete(a.offered, o.ip)
		}
		delete(a.offers, mac)
	}
}

// wake asks the prober for a round, without waiting.
func (a *Allocator) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Kick is signalled when clients are taking probed addresses faster than
// rounds make them; a prober loop waits on it between rounds.
func (a *Allocator) Kick() <-chan struct{} { return a.kick }

// candidatesLocked returns up to n addresses to probe: never-used free
// addresses of the pool first, from where the last scan stopped, then
// the addresses of ended leases, the longest ended first.
func (a *Allocator) candidatesLocked(now time.Time, n int) []netip.Addr {
	var out []netip.Addr
	ok := func(ip netip.Addr) bool {
		_, ready := a.isReady[ip]
		return !ready && a.freeForLocked("", ip, now) && !a.offeredToOtherLocked("", ip, now)
	}
	if !a.inPool(a.cursor) {
		a.cursor = a.cfg.PoolStart
	}
	for i := uint64(0); i < min(scanBudget, a.poolSize()) && len(out) < n; i++ {
		ip := a.cursor
		if a.cursor = ip.Next(); !a.inPool(a.cursor) {
			a.cursor = a.cfg.PoolStart
		}
		if _, used := a.byIP[ip]; !used && ok(ip) {
			out = append(out, ip)
		}
	}
	if len(out) >= n {
		return out
	}
	var ended []*Lease
	for _, l := range a.leases {
		if !now.Before(l.Expiry) && a.inPool(l.IP) && a.byIP[l.IP] == l.MAC && ok(l.IP) {
			ended = append(ended, l)
		}
	}
	slices.SortFunc(ended, func(x, y *Lease) int { return x.Expiry.Compare(y.Expiry) })
	for _, l := range ended {
		if len(out) == n {
			break
		}
		if !slices.Contains(out, l.IP) {
			out = append(out, l.IP)
		}
	}
	return out
}

// fillLocked makes up to n addresses ready without a probe.
func (a *Allocator) fillLocked(now time.Time, n int) {
	for _, ip := range a.candidatesLocked(now, n) {
		a.isReady[ip] = now
		a.ready = append(a.ready, ip)
	}
}

// ProbeRound probes the addresses that the next new clients will be
// offered and makes the free ones ready; an address that answers is set
// aside like a declined one. It returns how many addresses it probed. The
// probe runs without the lock, so clients are answered meanwhile. Without
// a Prober it does nothing.
func (a *Allocator) ProbeRound(ctx context.Context) (int, error) {
	if a.probe == nil {
		return 0, nil
	}
	a.mu.Lock()
	now := a.now()
	a.expireLocked(now)
	live := 0
	for _, ip := range a.ready {
		if at, ok := a.isReady[ip]; ok && now.Sub(at) < probeFresh {
			live++
		}
	}
	// Keep twice what the last round saw asked for; when clients found
	// nothing ready, at least double what was kept, until demand is met.
	switch demand := a.taken + a.missed; {
	case a.missed > 0:
		a.target = min(readyMax, max(2*a.target, 2*demand, readyMin))
	default:
		a.target = max(readyMin, 2*demand, a.target*3/4)
	}
	target := a.target
	a.taken, a.missed = 0, 0
	var ips []netip.Addr
	if live < target {
		ips = a.candidatesLocked(now, target-live)
	}
	a.mu.Unlock()
	if len(ips) == 0 {
		return 0, nil
	}
	used, err := a.probe.InUse(ctx, ips)
	if err != nil {
		return 0, fmt.Errorf("probing %d addresses: %w", len(ips), err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now = a.now()
	for _, ip := range ips {
		if used[ip] {
			a.log.Warn("address answers a probe but has no lease: setting it aside", "ip", ip, "for", declineHold)
			a.declined[ip] = now.Add(declineHold)
			continue
		}
		if _, dup := a.isReady[ip]; !dup {
			a.ready = append(a.ready, ip)
		}
		a.isReady[ip] = now
	}
	return len(ips), nil
}

// expireLocked forgets ended offers, stale probes and ended declines, so
// that what the allocator keeps stays bounded by the pool.
func (a *Allocator) expireLocked(now time.Time) {
	for m, o := range a.offers {
		if !now.Before(o.until) {
			a.endOfferLocked(m)
		}
	}
	a.offerQ = slices.DeleteFunc(a.offerQ, func(ip netip.Addr) bool { _, ok := a.offered[ip]; return !ok })
	for ip, until := range a.declined {
		if !now.Before(until) {
			delete(a.declined, ip)
		}
	}
	for ip, at := range a.isReady {
		if now.Sub(at) >= probeFresh {
			delete(a.isReady, ip)
		}
	}
	a.ready = slices.DeleteFunc(a.ready, func(ip netip.Addr) bool { _, ok := a.isReady[ip]; return !ok })
}

// Handle answers one request; nil means no answer. It never waits for a
// probe; it writes to the Store (for a lease, a release or a decline)
// without holding the lock.
func (a *Allocator) Handle(ctx context.Context, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	resp, _ := a.handle(ctx, req, false)
	return resp
}

// handle is Handle; patient says that a DISCOVER may wait for the next
// probe round rather than take over a young offer, and short that it
// should: nothing was ready for it.
func (a *Allocator) handle(ctx context.Context, req *dhcpv4.DHCPv4, patient bool) (resp *dhcpv4.DHCPv4, short bool) {
	if req == nil || req.OpCode != dhcpv4.OpcodeBootRequest || len(req.ClientHWAddr) != 6 {
		return nil, false
	}
	mac := req.ClientHWAddr.String()
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return a.discover(req, mac, patient)
	case dhcpv4.MessageTypeRequest:
		return a.request(req, mac), false
	case dhcpv4.MessageTypeRelease:
		a.release(req, mac)
	case dhcpv4.MessageTypeDecline:
		a.decline(req, mac)
	case dhcpv4.MessageTypeInform:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.replyLocked(req, dhcpv4.MessageTypeAck, netip.Addr{}, 0), false
	}
	return nil, false
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func (a *Allocator) discover(req *dhcpv4.DHCPv4, mac string, patient bool) (*dhcpv4.DHCPv4, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	ip, ok := a.chooseLocked(mac, addrOf(req.RequestedIPAddress()), now, patient)
	if !ok {
		if !patient {
			a.warn("no probed address ready to offer; probing more", "mac", mac)
		}
		return nil, true
	}
	a.offerLocked(mac, ip, now)
	return a.replyLocked(req, dhcpv4.MessageTypeOffer, ip, a.cfg.LeaseTime), false
}

// warn logs at most a few lines a second, saying how many it left out.
func (a *Allocator) warn(msg string, args ...any) {
	if ok, n := a.logLimit.Allow(time.Now()); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		a.log.Warn(msg, args...)
	}
}

func (a *Allocator) request(req *dhcpv4.DHCPv4, mac string) *dhcpv4.DHCPv4 {
	a.mu.Lock()
	l, resp := a.grantLocked(req, mac, a.now())
	if !l.IP.IsValid() {
		a.mu.Unlock()
		return resp
	}
	// The address is held for mac while the lease is written.
	a.binding[l.IP] = mac
	a.mu.Unlock()
	err := a.store.Bind(l)
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.binding, l.IP)
	if err != nil {
		a.log.Error("recording a lease; not acknowledging it", "mac", mac, "ip", l.IP, "err", err)
		return nil
	}
	if owner, ok := a.byIP[l.IP]; ok && owner != mac {
		delete(a.leases, owner)
	}
	a.setLease(l)
	a.endOfferLocked(mac)
	if m, ok := a.offered[l.IP]; ok {
		a.endOfferLocked(m) // another client's offer of the same address
	}
	delete(a.isReady, l.IP)
	a.log.Info("lease", "mac", mac, "ip", l.IP, "hostname", l.Hostname, "expiry", l.Expiry.Format(time.RFC3339))
	return a.replyLocked(req, dhcpv4.MessageTypeAck, l.IP, a.cfg.LeaseTime)
}

// grantLocked decides a REQUEST: the lease to record and acknowledge, or
// (with no lease) the answer to send now, a NAK or nothing.
func (a *Allocator) grantLocked(req *dhcpv4.DHCPv4, mac string, now time.Time) (Lease, *dhcpv4.DHCPv4) {
	server := addrOf(req.ServerIdentifier())
	requested := addrOf(req.RequestedIPAddress())
	ciaddr := addrOf(req.ClientIPAddr)
	nak := func(why string) (Lease, *dhcpv4.DHCPv4) {
		if ok, n := a.logLimit.Allow(time.Now()); ok {
			a.log.Info("NAK", "mac", mac, "requested", requested, "ciaddr", ciaddr, "why", why, "suppressed", n)
		}
		return Lease{}, a.replyLocked(req, dhcpv4.MessageTypeNak, netip.Addr{}, 0)
	}
	var ip netip.Addr
	switch {
	case server.IsValid():
		// SELECTING: the client answers an offer. Offers hold their
		// address softly, so the address need not be the one offered
		// last: any free address of the pool is granted.
		if server != a.cfg.ServerIP {
			a.endOfferLocked(mac) // it chose another server
			return Lease{}, nil
		}
		ip = requested
		if !ip.IsValid() {
			ip = ciaddr
		}
	case requested.IsValid():
		// INIT-REBOOT: the client asks for the address it remembers.
		ip = requested
	case ciaddr.IsValid():
		// RENEWING or REBINDING.
		ip = ciaddr
		if l := a.leases[mac]; l == nil || l.IP != ip {
			if _, known := a.byIP[ip]; known || !a.cfg.Subnet.Contains(ip) {
				return nak("no lease of this address for this client")
			}
			// A lease this server lost (its state was reset): grant it if
			// the address is free.
		}
	default:
		return nak("no address requested")
	}
	if !a.cfg.Subnet.Contains(ip) {
		return nak("wrong network")
	}
	if r, ok := a.reservationLocked(mac, netip.Addr{}); ok && r.IP != ip {
		return nak("this client has a reservation for " + r.IP.String())
	}
	if !a.freeForLocked(mac, ip, now) {
		return nak("address taken")
	}
	if !a.inPool(ip) {
		if r, ok := a.reservationLocked(mac, netip.Addr{}); !ok || r.IP != ip {
			if l := a.leases[mac]; l == nil || l.IP != ip {
				return nak("address outside the pool")
			}
		}
	}
	l := Lease{MAC: mac, IP: ip, Hostname: HostLabel(req.HostName()), Expiry: now.Add(a.cfg.LeaseTime)}
	if r, ok := a.reservationLocked(mac, netip.Addr{}); ok && r.Name != "" {
		l.Hostname = r.Name
	} else if l.Hostname == "" {
		if old := a.leases[mac]; old != nil {
			l.Hostname = old.Hostname
		}
	}
	return l, nil
}

func (a *Allocator) release(req *dhcpv4.DHCPv4, mac string) {
	a.mu.Lock()
	l := a.leases[mac]
	if l == nil || l.IP != addrOf(req.ClientIPAddr) || !a.now().Before(l.Expiry) {
		a.mu.Unlock()
		return
	}
	ended := *l
	ended.Expiry = a.now()
	a.mu.Unlock()
	if err := a.store.Release(ended); err != nil {
		a.log.Error("recording a release", "mac", mac, "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.leases[mac]; cur != nil && cur.IP == ended.IP {
		*cur = ended
	}
	a.log.Info("released", "mac", mac, "ip", ended.IP)
}

func (a *Allocator) decline(req *dhcpv4.DHCPv4, mac string) {
	ip := addrOf(req.RequestedIPAddress())
	a.mu.Lock()
	l := a.leases[mac]
	if !ip.IsValid() || l == nil || l.IP != ip {
		a.mu.Unlock()
		return
	}
	until := a.now().Add(declineHold)
	a.mu.Unlock()
	if err := a.store.Decline(ip, until); err != nil {
		a.log.Error("recording a decline", "ip", ip, "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.declined[ip] = until
	if cur := a.leases[mac]; cur != nil && cur.IP == ip {
		delete(a.leases, mac)
		delete(a.byIP, ip)
	}
	delete(a.isReady, ip)
	a.log.Warn("client declined an address: it is in use by another host", "mac", mac, "ip", ip)
}

// replyLocked builds an answer of type t with yiaddr ip (none for NAK and
// INFORM) and the network's options.
func (a *Allocator) replyLocked(req *dhcpv4.DHCPv4, t dhcpv4.MessageType, ip netip.Addr, lease time.Duration) *dhcpv4.DHCPv4 {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(t),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(a.cfg.ServerIP.AsSlice())),
	}
	if t != dhcpv4.MessageTypeNak {
		mods = append(mods,
			dhcpv4.WithNetmask(net.CIDRMask(a.cfg.Subnet.Bits(), 32)),
			dhcpv4.WithRouter(a.cfg.Router.AsSlice()),
			dhcpv4.WithDNS(a.cfg.DNS.AsSlice()),
			dhcpv4.WithOption(dhcpv4.OptDomainName(a.cfg.Domain)),
			dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(broadcast(a.cfg.Subnet).AsSlice())),
		)
	}
	if ip.IsValid() {
		mods = append(mods, dhcpv4.WithYourIP(ip.AsSlice()))
	}
	if lease > 0 {
		mods = append(mods,
			dhcpv4.WithLeaseTime(uint32(lease/time.Second)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lease/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lease*7/8)),
		)
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		a.log.Error("building a reply", "err", err)
		return nil
	}
	return resp
}

// broadcast returns the last address of p.
func broadcast(p netip.Prefix) netip.Addr {
	v := u32(p.Masked().Addr()) | (uint32(1)<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Leases returns the leases, sorted by address.
func (a *Allocator) Leases() []Lease {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Lease, 0, len(a.leases))
	for _, l := range a.leases {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(x, y Lease) int { return x.IP.Compare(y.IP) })
	return out
}
