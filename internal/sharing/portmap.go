package sharing

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/conntrack"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/portmap"
	"github.com/netshare/netshare/internal/store"
)

// PortMapper returns the model as the NAT-PMP and PCP server sees it: the
// keeper of the devices' mappings.
func (m *Manager) PortMapper() portmap.Leaser { return portMapper{m} }

type portMapper struct{ m *Manager }

var _ portmap.Leaser = portMapper{}

func (p portMapper) Map(ctx context.Context, r portmap.Request) (portmap.Grant, error) {
	origin := OriginNATPMP
	if r.Protocol == portmap.PCP {
		origin = OriginPCP
	}
	mp, err := p.m.LeaseMapping(ctx, LeaseRequest{Origin: origin, Client: r.Client, Target: r.Target, Protocol: r.Proto,
		InternalPort: r.InternalPort, SuggestedPort: r.SuggestedPort, PreferFailure: r.PreferFailure, Lifetime: r.Lifetime, Nonce: r.Nonce,
		Peers: r.Peers})
	if err != nil {
		return portmap.Grant{}, portmapErr(err)
	}
	// The lease was made a moment ago: the lifetime left, to the nearest
	// second, is the one granted.
	return portmap.Grant{ExternalPort: mp.ExternalPort, Lifetime: mp.Expires.Sub(p.m.now()).Round(time.Second)}, nil
}

func (p portMapper) Unmap(ctx context.Context, proto portmap.Protocol, target netip.Addr, ip ipproto.Proto, internalPort uint16, nonce [12]byte) error {
	origin := OriginNATPMP
	if proto == portmap.PCP {
		origin = OriginPCP
	}
	return portmapErr(p.m.ReleaseMapping(ctx, origin, target, ip, internalPort, nonce))
}

func (p portMapper) UnmapAll(ctx context.Context, target netip.Addr, ip ipproto.Proto) error {
	return portmapErr(p.m.ReleaseAll(ctx, target, ip))
}

func (p portMapper) Peer(ctx context.Context, r portmap.PeerRequest) (portmap.PeerGrant, error) {
	g, err := p.m.PeerMapping(ctx, PeerRequest{Client: r.Client, Target: r.Target, Protocol: r.Proto, InternalPort: r.InternalPort,
		Remote: r.Remote, Lifetime: r.Lifetime})
	if err != nil {
		return portmap.PeerGrant{}, portmapErr(err)
	}
	return portmap.PeerGrant{External: g.External, Lifetime: g.Lifetime}, nil
}

func (p portMapper) External() (netip.Addr, time.Time, error) {
	epoch := p.m.portMapEpoch()
	if a := p.m.publicAddr(); a.IsValid() {
		return a, epoch, nil
	}
	return netip.Addr{}, epoch, portmap.ErrNoPublic
}

// pmAddrNow returns the public address the devices' mappings are on.
func (m *Manager) pmAddrNow() netip.Addr {
	if p := m.pmAddrA.Load(); p != nil {
		return *p
	}
	return netip.Addr{}
}

// publicAddr returns the public connection's IPv4 address, as last applied
// to the firewall: the one the devices' mappings are on while the
// connection has it, else its first. It takes no lock but view's read
// lock, which the caller may hold.
func (m *Manager) publicAddr() netip.Addr {
	addrs := m.PublicAddrs()
	if cur := m.pmAddrNow(); cur.IsValid() && slices.Contains(addrs, cur) {
		return cur
	}
	for _, a := range addrs {
		if a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// portmapErr says, for the server, which of its reasons err is.
func portmapErr(err error) error {
	for _, e := range []struct{ model, server error }{
		{ErrNoPublic, portmap.ErrNoPublic},
		{ErrNotOwner, portmap.ErrNotOwner},
		{ErrPortTaken, portmap.ErrPortTaken},
		{ErrNoPort, portmap.ErrNoPort},
		{ErrQuota, portmap.ErrQuota},
		{ErrNotAllowed, portmap.ErrNotAllowed},
		{ErrTooManyPeers, portmap.ErrTooManyPeers},
		{ErrNoFlow, portmap.ErrNoFlow},
	} {
		if errors.Is(err, e.model) {
			return fmt.Errorf("%w: %w", e.server, err)
		}
	}
	return err
}

// portMapEpoch returns when the devices' mapping state began.
func (m *Manager) portMapEpoch() time.Time {
	m.view.RLock()
	defer m.view.RUnlock()
	return m.pmEpoch
}

// notePublicAddrLocked records the public address the devices' mappings
// are made on (in the store too, so that a change while netshare is
// stopped is seen at start), and reports whether it moved from another
// one.
func (m *Manager) notePublicAddrLocked(ctx context.Context) bool {
	now := m.publicAddr()
	if !now.IsValid() || now == m.pmAddr {
		return false
	}
	var b store.Batch
	b.SetPortMapAddr(now)
	if err := m.commitRecordsLocked(ctx, &b); err != nil {
		m.log.Error("recording the public address of the devices' mappings", "err", err)
		return false // tried again at the next refresh
	}
	was := m.pmAddr
	m.view.Lock()
	m.pmAddr = now
	m.pmAddrA.Store(&now)
	m.view.Unlock()
	return was.IsValid()
}

// publicAddressMoved ends the devices' mappings and starts a new epoch
// when the public address moves. The mappings would still pass traffic
// (they are keyed by interface), but their devices told their peers the old
// address: NAT-PMP and PCP say that on such a change clients must map
// again, and a new epoch, announced to the private networks, is how the
// gateway tells them.
func (m *Manager) publicAddressMoved(ctx context.Context) error {
	m.view.RLock()
	ids := make([]uint64, 0, len(m.byDevice))
	for _, id := range m.byDevice {
		ids = append(ids, id)
	}
	m.view.RUnlock()
	err := m.removeDeviceMappings(ctx, ids, func(*store.Mapping) bool { return true })
	m.mu.Lock()
	defer m.mu.Unlock()
	epoch := time.Unix(m.now().Unix(), 0)
	var b store.Batch
	b.SetPortMapEpoch(epoch)
	if cerr := m.commitRecordsLocked(ctx, &b); cerr != nil {
		return errors.Join(err, cerr)
	}
	m.view.Lock()
	m.pmEpoch = epoch
	m.view.Unlock()
	m.log.Info("the public address moved: the devices' mappings ended, and their clients are told to map again", "address", m.pmAddr, "ended", len(ids))
	m.applyServicesLocked(ctx)
	return err
}

// PeerRequest is a device's request to learn, and keep, the mapping the
// NAT gave one of its outbound flows (PCP's PEER): Target's flow from
// InternalPort to Remote. Lifetime 0 asks for the mapping only.
type PeerRequest struct {
	Client, Target netip.Addr
	Protocol       ipproto.Proto
	InternalPort   uint16
	Remote         netip.AddrPort
	Lifetime       time.Duration
}

// PeerGrant is an outbound flow's mapping: the public address and port it
// leaves from, and how long the NAT keeps it without traffic.
type PeerGrant struct {
	External netip.AddrPort
	Lifetime time.Duration
}

// PeerMapping answers a PeerRequest from the kernel's connection
// tracking: the flow's reply direction names its public address and port.
// The policy decides as for a device's own mappings (a host asks for
// itself unless third parties are allowed; lifetimes are clamped); the
// flow must be one the NAT maps to the public address. Until the flow's
// first packet leaves there is no mapping, and the error wraps ErrNoFlow.
// Nothing is stored: the kernel keeps the flow, also across a restart of
// netshare.
func (m *Manager) PeerMapping(ctx context.Context, r PeerRequest) (PeerGrant, error) {
	m.view.RLock()
	pol := m.policyLocked()
	private := m.privateHostLocked(r.Target)
	m.view.RUnlock()
	what := fmt.Sprintf("outbound mapping of %s %v/%d to %v", r.Target, r.Protocol, r.InternalPort, r.Remote)
	pub := m.publicAddr()
	switch {
	case !pub.IsValid():
		return PeerGrant{}, hresult.New(hresult.Fail, "%s: %w", what, ErrNoPublic)
	case r.Target != r.Client && !pol.AllowThirdParty:
		return PeerGrant{}, hresult.New(hresult.AccessDenied, "%s: asked by %s, another host: %w", what, r.Client, ErrNotAllowed)
	case !private:
		return PeerGrant{}, hresult.New(hresult.AccessDenied, "%s: not a host of a private network: %w", what, ErrNotAllowed)
	case m.flows == nil:
		return PeerGrant{}, hresult.New(hresult.Fail, "%s: no connection tracking to ask: %w", what, ErrNoFlow)
	}
	orig := conntrack.Tuple{Proto: r.Protocol, Src: netip.AddrPortFrom(r.Target, r.InternalPort), Dst: r.Remote}
	f, err := m.flows.Get(orig)
	if errors.Is(err, conntrack.ErrNotFound) {
		return PeerGrant{}, hresult.New(hresult.Fail, "%s: %w", what, ErrNoFlow)
	}
	if err != nil {
		return PeerGrant{}, hresult.New(hresult.Fail, "%s: %w", what, err)
	}
	if f.Reply.Dst.Addr() != pub {
		return PeerGrant{}, hresult.New(hresult.AccessDenied, "%s: the flow leaves from %v, not the public address %v: %w", what, f.Reply.Dst.Addr(), pub, ErrNotAllowed)
	}
	g := PeerGrant{External: f.Reply.Dst, Lifetime: f.Timeout}
	if r.Lifetime > 0 {
		g.Lifetime = pol.clamp(r.Lifetime)
		if err := m.flows.SetTimeout(orig, g.Lifetime); err != nil {
			if errors.Is(err, conntrack.ErrNotFound) { // it ended meanwhile
				err = ErrNoFlow
			}
			return PeerGrant{}, hresult.New(hresult.Fail, "%s: %w", what, err)
		}
	}
	return g, nil
}
