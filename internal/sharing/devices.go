package sharing

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
	"github.com/netshare/netshare/internal/store"
)

// Devices on the private networks lease mappings for themselves (NAT-PMP,
// PCP; later UPnP). A device's mapping is a mapping like a person's: it is
// on the public connection, it shares the (protocol, external port) keys
// and their index with every other mapping of that connection, it goes to
// the firewall in the same groups. It differs in being a lease: it lives
// in the runtime store (so that a renewal does not move the desired
// state's revision), it is not part of the desired state's document, it
// ends at its expiry, and it ends when its connection stops being shared.

// LeaseRequest is a device's request for a mapping of its own, whatever
// protocol carried it.
type LeaseRequest struct {
	Origin Origin
	// Client is the address the request came from; Target the internal
	// host the mapping forwards to: the client itself, unless a protocol
	// lets it ask for another (PCP's THIRD_PARTY).
	Client, Target netip.Addr
	Protocol       ipproto.Proto
	InternalPort   uint16
	// SuggestedPort is the external port the device would like (0: its
	// internal port). With PreferFailure it gets that port or nothing.
	SuggestedPort uint16
	PreferFailure bool
	// Lifetime is how long the mapping is to last from now; 0 or less is
	// refused (ReleaseMapping ends one).
	Lifetime time.Duration
	// Nonce identifies the PCP client that owns the mapping: a request
	// with another nonce may not renew or delete it.
	Nonce [12]byte
	// Peers are remote peer filters to add to the mapping's (PCP's
	// FILTER): once a mapping has some, only the peers they match may open
	// flows through it. A /0 from any port clears them.
	Peers []peers.Filter
}

// The reasons a device's request is refused, which its protocol's server
// turns into result codes. They are wrapped in hresult errors saying
// more.
var (
	// ErrNoPublic: no connection is shared as public, or it has no
	// address (NAT-PMP 3, PCP NETWORK_FAILURE).
	ErrNoPublic = errors.New("no public connection to map on")
	// ErrNotOwner: the mapping is another PCP client's (NOT_AUTHORIZED).
	ErrNotOwner = errors.New("the mapping belongs to another client")
	// ErrPortTaken: the port asked for with PreferFailure is not free
	// (CANNOT_PROVIDE_EXTERNAL).
	ErrPortTaken = errors.New("the external port asked for is taken")
	// ErrNoPort: no external port is free (NAT-PMP 4, PCP NO_RESOURCES).
	ErrNoPort = errors.New("no external port is free")
	// ErrQuota: the host has all the mappings a device may have
	// (USER_EX_QUOTA).
	ErrQuota = errors.New("the host has as many mappings as a device may")
	// ErrNotAllowed: the policy does not allow the mapping (NOT_AUTHORIZED).
	ErrNotAllowed = errors.New("the port mapping policy does not allow it")
	// ErrTooManyPeers: the mapping would have more remote peer filters
	// than peers.Max (EXCESSIVE_REMOTE_PEERS).
	ErrTooManyPeers = errors.New("too many remote peer filters")
	// ErrNoFlow: a PEER request names no outbound flow (NO_RESOURCES).
	ErrNoFlow = errors.New("no such outbound flow")
)

// deviceKey identifies a device's mapping as the protocols do: by the
// internal host, protocol and port, on its connection.
type deviceKey struct {
	conn   string
	target netip.Addr
	proto  ipproto.Proto
	port   uint16
}

func deviceKeyOf(mp *store.Mapping) deviceKey {
	return deviceKey{mp.Connection, mp.TargetIP, mp.Protocol, mp.InternalPort}
}

// LeaseMapping creates a device's mapping, or renews the one it has for
// the same internal host, protocol and port (keeping its external port, as
// NAT-PMP and PCP ask), as the port mapping policy allows: the lifetime
// clamped, the external port one a rule allows. A renewal that changes
// nothing but the expiry is written to the store and not sent to the
// kernel.
func (m *Manager) LeaseMapping(ctx context.Context, r LeaseRequest) (Mapping, error) {
	if err := checkLease(r); err != nil {
		return Mapping{}, err
	}
	return m.changeMapping(ctx, func() (*store.Mapping, uint64, error) { return m.planLease(r) })
}

func checkLease(r LeaseRequest) error {
	switch {
	case r.Origin == OriginUser || !r.Origin.Valid():
		return hresult.Invalid("origin", "%v is not a device's origin", r.Origin)
	case !r.Client.Is4() || !r.Target.Is4():
		return hresult.Invalid("client", "a device's mapping is from and to IPv4 addresses, not %v and %v", r.Client, r.Target)
	case !r.Protocol.Valid():
		return hresult.Invalid("protocol", "%v is not allowed; use tcp or udp", r.Protocol)
	case r.InternalPort == 0:
		return hresult.Invalid("internalPort", "0 is not a port")
	case r.Lifetime <= 0:
		return hresult.Invalid("lifetime", "%v is not a lifetime; release the mapping to end it", r.Lifetime)
	}
	return nil
}

// planLease returns the mapping r makes or renews; mu is held.
func (m *Manager) planLease(r LeaseRequest) (*store.Mapping, uint64, error) {
	pub := m.publicConnLocked()
	if pub == nil {
		return nil, 0, hresult.New(hresult.Fail, "%v mapping for %s: %w", r.Origin, r.Target, ErrNoPublic)
	}
	pol := m.policyLocked()
	denied := func(format string, args ...any) error {
		return hresult.New(hresult.AccessDenied, "%v mapping of %s %v/%d: %s: %w", r.Origin, r.Target, r.Protocol, r.InternalPort, fmt.Sprintf(format, args...), ErrNotAllowed)
	}
	if r.Target != r.Client && !pol.AllowThirdParty {
		return nil, 0, denied("asked by %s, another host, and the policy allows a device to map only for itself", r.Client)
	}
	if !m.privateHostLocked(r.Target) {
		return nil, 0, denied("not a host of a private network")
	}
	expiry := m.now().Add(pol.clamp(r.Lifetime)).UnixMilli()
	if id, ok := m.byDevice[deviceKey{pub.ID, r.Target, r.Protocol, r.InternalPort}]; ok {
		old := m.mappings[id]
		if old.Origin == OriginPCP && r.Origin == OriginPCP && old.Nonce != r.Nonce {
			return nil, 0, hresult.New(hresult.AccessDenied, "%s %s port %d of %s: %w", r.Origin, r.Protocol, r.InternalPort, r.Target, ErrNotOwner)
		}
		if !pol.allows(r.Client, old.ExternalPort, old.InternalPort) {
			return nil, 0, denied("external port %d is no longer allowed", old.ExternalPort)
		}
		mp := *old
		mp.Expiry, mp.Client = expiry, r.Client
		if r.Origin == OriginPCP {
			mp.Origin, mp.Nonce = OriginPCP, r.Nonce
		}
		var err error
		if mp.Peers, err = old.Peers.Add(r.Peers...); err != nil {
			return nil, 0, tooManyPeers(r, err)
		}
		return &mp, id, nil
	}
	if n := m.deviceCount[r.Target]; n >= pol.Quota {
		return nil, 0, hresult.New(hresult.AccessDenied, "%v mapping for %s: it has %d: %w", r.Protocol, r.Target, n, ErrQuota)
	}
	filters, err := peers.Of(r.Peers...)
	if err != nil {
		return nil, 0, tooManyPeers(r, err)
	}
	port, err := m.freePortLocked(pub.ID, r, &pol)
	if err != nil {
		return nil, 0, err
	}
	mp := &store.Mapping{
		ID:           m.lastID + 1,
		Connection:   pub.ID,
		Name:         fmt.Sprintf("%v %s %v/%d", r.Origin, r.Target, r.Protocol, r.InternalPort),
		Protocol:     r.Protocol,
		ExternalPort: port,
		InternalPort: r.InternalPort,
		TargetIP:     r.Target,
		Enabled:      true,
		Origin:       r.Origin,
		Client:       r.Client,
		Expiry:       expiry,
		Nonce:        r.Nonce,
		Peers:        filters,
	}
	m.log.Info("device mapping added", "origin", r.Origin, "client", r.Client, "target", r.Target, "id", mp.ID,
		"protocol", r.Protocol, "externalPort", port, "internalPort", r.InternalPort, "lifetime", r.Lifetime)
	return mp, mp.ID, nil
}

// tooManyPeers is the error of a request whose filters cannot be kept.
func tooManyPeers(r LeaseRequest, err error) error {
	if errors.Is(err, peers.ErrTooMany) {
		return hresult.Invalid("peers", "%v mapping of %s %v/%d: %v: %w", r.Origin, r.Target, r.Protocol, r.InternalPort, err, ErrTooManyPeers)
	}
	return hresult.Invalid("peers", "%v mapping of %s %v/%d: %w", r.Origin, r.Target, r.Protocol, r.InternalPort, err)
}

// freePortLocked picks the external port of a new device mapping: the one
// suggested (or the internal port) when the policy allows it and it is
// free, else the next such port above it, wrapping round.
func (m *Manager) freePortLocked(conn string, r LeaseRequest, pol *PortMapPolicy) (uint16, error) {
	want := r.SuggestedPort
	if want == 0 {
		want = r.InternalPort
	}
	taken := m.byConn[conn]
	free := func(p uint16) bool { _, used := taken[protoPort{r.Protocol, p}]; return !used }
	ok := func(p uint16) bool { return pol.allows(r.Client, p, r.InternalPort) }
	if ok(want) && free(want) {
		return want, nil
	}
	if r.PreferFailure {
		if !ok(want) {
			return 0, hresult.New(hresult.AccessDenied, "%v port %d for %s: %w", r.Protocol, want, r.Target, ErrNotAllowed)
		}
		return 0, hresult.Clash("externalPort", "%v port %d for %s: %w", r.Protocol, want, r.Target, ErrPortTaken)
	}
	allowed := false
	for i := 1; i < 65536; i++ {
		p := uint16((int(want)+i-1)%65535 + 1) // want+1, ..., 65535, 1, ..., want
		if ok(p) {
			allowed = true
			if free(p) {
				return p, nil
			}
		}
	}
	if !allowed {
		return 0, hresult.New(hresult.AccessDenied, "%v mapping of %s port %d: %w", r.Protocol, r.Target, r.InternalPort, ErrNotAllowed)
	}
	return 0, hresult.New(hresult.Fail, "%v mapping for %s: %w", r.Protocol, r.Target, ErrNoPort)
}

// privateHostLocked reports whether a is a host of a private network (not
// its network or broadcast address, nor the gateway's).
func (m *Manager) privateHostLocked(a netip.Addr) bool {
	for _, c := range m.conns {
		if c.Role != RolePrivate {
			continue
		}
		p := privatePrefix(c)
		if p.Contains(a) && a != p.Addr() && a != p.Masked().Addr() && a != fw.LastAddr(p) {
			return true
		}
	}
	return false
}

// publicConnLocked returns the connection shared as public, or nil.
func (m *Manager) publicConnLocked() *store.Connection {
	for _, c := range m.conns {
		if c.Role == RolePublic {
			return c
		}
	}
	return nil
}

// ReleaseMapping ends the device mapping of target's protocol and
// internal port, if there is one (a release of nothing succeeds, as the
// protocols ask). With OriginPCP, a PCP mapping is released only with its
// own nonce.
func (m *Manager) ReleaseMapping(ctx context.Context, origin Origin, target netip.Addr, proto ipproto.Proto, internalPort uint16, nonce [12]byte) error {
	_, err := m.changeMapping(ctx, func() (*store.Mapping, uint64, error) {
		pub := m.publicConnLocked()
		if pub == nil {
			return nil, 0, nil
		}
		id, ok := m.byDevice[deviceKey{pub.ID, target, proto, internalPort}]
		if !ok {
			return nil, 0, nil
		}
		if old := m.mappings[id]; old.Origin == OriginPCP && origin == OriginPCP && old.Nonce != nonce {
			return nil, 0, hresult.New(hresult.AccessDenied, "%s %s port %d of %s: %w", origin, proto, internalPort, target, ErrNotOwner)
		}
		m.log.Info("device mapping released", "origin", origin, "target", target, "id", id, "protocol", proto, "internalPort", internalPort)
		return nil, id, nil
	})
	return err
}

// ReleaseAll ends every device mapping of target for proto (NAT-PMP's
// delete-all: lifetime 0 and internal port 0).
func (m *Manager) ReleaseAll(ctx context.Context, target netip.Addr, proto ipproto.Proto) error {
	m.view.RLock()
	var ids []uint64
	for k, id := range m.byDevice {
		if k.target == target && k.proto == proto {
			ids = append(ids, id)
		}
	}
	m.view.RUnlock()
	return m.removeDeviceMappings(ctx, ids, func(mp *store.Mapping) bool { return mp.TargetIP == target && mp.Protocol == proto })
}

// ExpireMappings ends the device mappings whose expiry has come, and
// returns when the next one ends (the zero Time when none is left). The
// daemon calls it at that time, and whenever ExpiryChanged says an
// earlier one appeared.
func (m *Manager) ExpireMappings(ctx context.Context) (time.Time, error) {
	now := m.now().UnixMilli()
	m.view.RLock()
	var ids []uint64
	for _, it := range m.expiries.items {
		if it.at <= now {
			ids = append(ids, it.id)
		}
	}
	m.view.RUnlock()
	err := m.removeDeviceMappings(ctx, ids, func(mp *store.Mapping) bool { return mp.Expiry <= now })
	m.view.RLock()
	defer m.view.RUnlock()
	if len(m.expiries.items) == 0 {
		return time.Time{}, err
	}
	return time.UnixMilli(m.expiries.items[0].at), err
}

// ExpiryChanged is signalled when a device mapping that ends before the
// others appears.
func (m *Manager) ExpiryChanged() <-chan struct{} { return m.expiryWake }

// removeDeviceMappings removes the device mappings of ids that still
// exist and that still, now that the lock is held, satisfy still: all in
// one group (one commit, one firewall delta).
func (m *Manager) removeDeviceMappings(ctx context.Context, ids []uint64, still func(*store.Mapping) bool) error {
	if len(ids) == 0 {
		return nil
	}
	plans := make([]func() (*store.Mapping, uint64, error), len(ids))
	for i, id := range ids {
		plans[i] = func() (*store.Mapping, uint64, error) {
			mp := m.mappings[id]
			if mp == nil || mp.Origin == OriginUser || !still(mp) {
				return nil, 0, nil
			}
			m.log.Info("device mapping ended", "origin", mp.Origin, "target", mp.TargetIP, "id", id,
				"protocol", mp.Protocol, "externalPort", mp.ExternalPort)
			return nil, id, nil
		}
	}
	return errors.Join(m.changeMappings(ctx, plans)...)
}

// expiryHeap orders the device mappings by expiry, with each one's place
// known so that a renewal moves it rather than adding another.
type expiryHeap struct {
	items []*expiryItem
	byID  map[uint64]*expiryItem
}

type expiryItem struct {
	id    uint64
	at    int64 // Unix milliseconds
	index int
}

func (h *expiryHeap) Len() int           { return len(h.items) }
func (h *expiryHeap) Less(i, j int) bool { return h.items[i].at < h.items[j].at }
func (h *expiryHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index, h.items[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	it := x.(*expiryItem)
	it.index = len(h.items)
	h.items = append(h.items, it)
}
func (h *expiryHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items[len(h.items)-1] = nil
	h.items = h.items[:len(h.items)-1]
	return it
}

// set records that id ends at at; it reports whether id is now the first
// to end.
func (h *expiryHeap) set(id uint64, at int64) bool {
	if h.byID == nil {
		h.byID = map[uint64]*expiryItem{}
	}
	if it, ok := h.byID[id]; ok {
		it.at = at
		heap.Fix(h, it.index)
		return it.index == 0
	}
	it := &expiryItem{id: id, at: at}
	h.byID[id] = it
	heap.Push(h, it)
	return it.index == 0
}

// remove forgets id.
func (h *expiryHeap) remove(id uint64) {
	if it, ok := h.byID[id]; ok {
		heap.Remove(h, it.index)
		delete(h.byID, id)
	}
}
