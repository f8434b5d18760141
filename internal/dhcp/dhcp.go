// Package dhcp is the DHCPv4 server of a private network: an Allocator that
// follows RFC 2131 (DISCOVER/OFFER, REQUEST/ACK or NAK, renew and rebind,
// RELEASE, DECLINE, INFORM), with a pool, reservations by hardware address,
// a probe of each address before it is offered, and leases kept through a
// Store; and a Server that runs it on an interface.
//
// The Allocator is pure logic on parsed messages, so that it is tested and
// fuzzed without sockets.
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

// Store keeps leases. Its methods are called with the Allocator's lock held
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

// Prober tells whether an address answers on the network, before it is
// offered (Windows ICS did the same with ARP).
type Prober interface {
	InUse(ctx context.Context, ip netip.Addr) bool
}

// Timing.
const (
	offerHold   = 30 * time.Second // an offer keeps its address for this long
	declineHold = 10 * time.Minute // a declined address rests for this long
	maxProbes   = 4                // addresses probed for one DISCOVER
)

// Allocator hands out addresses. Its methods are safe for concurrent use.
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
	offers   map[string]offer // by MAC
}

type offer struct {
	ip    netip.Addr
	until time.Time
}

// NewAllocator returns an Allocator for cfg with the leases already known.
// probe may be nil (no probing); log may be nil; now nil means time.Now.
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
		declined: map[netip.Addr]time.Time{}, offers: map[string]offer{},
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

// freeForLocked reports whether ip may be given to mac now.
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
	if owner, ok := a.byIP[ip]; ok && owner != mac && now.Before(a.leases[owner].Expiry) {
		return false
	}
	for m, o := range a.offers {
		if m != mac && o.ip == ip && now.Before(o.until) {
			return false
		}
	}
	return true
}

func (a *Allocator) inPool(ip netip.Addr) bool {
	return ip.Compare(a.cfg.PoolStart) >= 0 && ip.Compare(a.cfg.PoolEnd) <= 0
}

// chooseLocked picks the address to offer mac: its reservation, its
// current or last address, the address it asks for, or the first free
// address of the pool that does not answer a probe.
func (a *Allocator) chooseLocked(ctx context.Context, mac string, requested netip.Addr, now time.Time) (netip.Addr, bool) {
	if r, ok := a.reservationLocked(mac, netip.Addr{}); ok {
		return r.IP, true
	}
	if o, ok := a.offers[mac]; ok && now.Before(o.until) && a.freeForLocked(mac, o.ip, now) {
		return o.ip, true
	}
	if l := a.leases[mac]; l != nil && a.inPool(l.IP) && a.freeForLocked(mac, l.IP, now) {
		return l.IP, true
	}
	if requested.IsValid() && a.inPool(requested) && a.freeForLocked(mac, requested, now) && !a.inUse(ctx, requested) {
		return requested, true
	}
	probes := 0
	for ip := a.cfg.PoolStart; ip.IsValid() && ip.Compare(a.cfg.PoolEnd) <= 0; ip = ip.Next() {
		if !a.freeForLocked(mac, ip, now) {
			continue
		}
		// Never-used addresses first; an expired lease's address is
		// taken only when nothing else is left.
		if _, used := a.byIP[ip]; used {
			continue
		}
		if probes < maxProbes {
			probes++
			if a.inUse(ctx, ip) {
				a.log.Warn("address answers a probe; setting it aside", "ip", ip)
				a.declined[ip] = now.Add(declineHold)
				continue
			}
		}
		return ip, true
	}
	// Reclaim the address of the lease that expired first.
	var oldest *Lease
	for _, l := range a.leases {
		if now.After(l.Expiry) && a.inPool(l.IP) && a.freeForLocked(mac, l.IP, now) && (oldest == nil || l.Expiry.Before(oldest.Expiry)) {
			oldest = l
		}
	}
	if oldest != nil {
		return oldest.IP, true
	}
	return netip.Addr{}, false
}

func (a *Allocator) inUse(ctx context.Context, ip netip.Addr) bool {
	return a.probe != nil && a.probe.InUse(ctx, ip)
}

// Handle answers one request; nil means no answer.
func (a *Allocator) Handle(ctx context.Context, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	if req == nil || req.OpCode != dhcpv4.OpcodeBootRequest || len(req.ClientHWAddr) != 6 {
		return nil
	}
	mac := req.ClientHWAddr.String()
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return a.discoverLocked(ctx, req, mac, now)
	case dhcpv4.MessageTypeRequest:
		return a.requestLocked(req, mac, now)
	case dhcpv4.MessageTypeRelease:
		a.releaseLocked(req, mac)
	case dhcpv4.MessageTypeDecline:
		a.declineLocked(req, mac, now)
	case dhcpv4.MessageTypeInform:
		return a.replyLocked(req, dhcpv4.MessageTypeAck, netip.Addr{}, 0)
	}
	return nil
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

func (a *Allocator) discoverLocked(ctx context.Context, req *dhcpv4.DHCPv4, mac string, now time.Time) *dhcpv4.DHCPv4 {
	ip, ok := a.chooseLocked(ctx, mac, addrOf(req.RequestedIPAddress()), now)
	if !ok {
		a.log.Warn("no address left to offer", "mac", mac)
		return nil
	}
	a.offers[mac] = offer{ip: ip, until: now.Add(offerHold)}
	return a.replyLocked(req, dhcpv4.MessageTypeOffer, ip, a.cfg.LeaseTime)
}

func (a *Allocator) requestLocked(req *dhcpv4.DHCPv4, mac string, now time.Time) *dhcpv4.DHCPv4 {
	server := addrOf(req.ServerIdentifier())
	requested := addrOf(req.RequestedIPAddress())
	ciaddr := addrOf(req.ClientIPAddr)
	nak := func(why string) *dhcpv4.DHCPv4 {
		a.log.Info("NAK", "mac", mac, "requested", requested, "ciaddr", ciaddr, "why", why)
		return a.replyLocked(req, dhcpv4.MessageTypeNak, netip.Addr{}, 0)
	}
	var ip netip.Addr
	switch {
	case server.IsValid():
		// SELECTING: the client answers an offer.
		if server != a.cfg.ServerIP {
			delete(a.offers, mac) // it chose another server
			return nil
		}
		ip = requested
		if !ip.IsValid() {
			ip = ciaddr
		}
		if o, ok := a.offers[mac]; !ok || o.ip != ip {
			if r, ok := a.reservationLocked(mac, netip.Addr{}); !ok || r.IP != ip {
				if l := a.leases[mac]; l == nil || l.IP != ip {
					return nak("not the address offered")
				}
			}
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
	if err := a.store.Bind(l); err != nil {
		a.log.Error("recording a lease; not acknowledging it", "mac", mac, "ip", ip, "err", err)
		return nil
	}
	if owner, ok := a.byIP[ip]; ok && owner != mac {
		delete(a.leases, owner)
	}
	a.setLease(l)
	delete(a.offers, mac)
	a.log.Info("lease", "mac", mac, "ip", ip, "hostname", l.Hostname, "expiry", l.Expiry.Format(time.RFC3339))
	return a.replyLocked(req, dhcpv4.MessageTypeAck, ip, a.cfg.LeaseTime)
}

func (a *Allocator) releaseLocked(req *dhcpv4.DHCPv4, mac string) {
	l := a.leases[mac]
	if l == nil || l.IP != addrOf(req.ClientIPAddr) {
		return
	}
	ended := *l
	ended.Expiry = a.now()
	if err := a.store.Release(ended); err != nil {
		a.log.Error("recording a release", "mac", mac, "err", err)
		return
	}
	*l = ended
	a.log.Info("released", "mac", mac, "ip", l.IP)
}

func (a *Allocator) declineLocked(req *dhcpv4.DHCPv4, mac string, now time.Time) {
	ip := addrOf(req.RequestedIPAddress())
	l := a.leases[mac]
	if !ip.IsValid() || l == nil || l.IP != ip {
		return
	}
	until := now.Add(declineHold)
	if err := a.store.Decline(ip, until); err != nil {
		a.log.Error("recording a decline", "ip", ip, "err", err)
		return
	}
	a.declined[ip] = until
	delete(a.leases, mac)
	delete(a.byIP, ip)
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
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
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
