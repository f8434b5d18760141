package sharing

import (
	"cmp"
	"context"
	"net/netip"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/store"
)

// statusOf derives a connection's NETCON_STATUS from its link; l is nil
// when the interface is absent.
func statusOf(l *link.Link) Status {
	switch {
	case l == nil:
		return StatusHardwareNotPresent
	case !l.Up:
		return StatusDisconnected
	case !l.Carrier:
		return StatusMediaDisconnected
	}
	for _, p := range l.Addrs {
		if a := p.Addr(); a.Is4() || a.IsGlobalUnicast() {
			return StatusConnected
		}
	}
	// Up with a carrier but no usable address: Windows' INVALID_ADDRESS.
	return StatusInvalidAddress
}

// mediaOf derives a connection's NETCON_MEDIATYPE from its link kind.
func mediaOf(l *link.Link) Media {
	if l == nil {
		return MediaNone
	}
	switch l.Kind {
	case "device", "veth", "macvlan", "macvtap", "vlan", "bond", "team", "dummy", "ipvlan":
		return MediaLAN
	case "bridge":
		return MediaBridge
	case "ppp":
		return MediaPPPoE
	case "tun", "tap", "tuntap", "wireguard", "ipip", "gre", "gretap", "ip6gre", "sit", "vti", "vti6", "ip6tnl", "vxlan", "geneve":
		return MediaTunnel
	}
	return MediaNone
}

// propsLocked returns the properties of a connection.
func (m *Manager) propsLocked(c conn) Connection {
	r := c.rec
	p := Connection{
		ID:              r.ID,
		Name:            cmp.Or(r.Name, r.Interface),
		Interface:       r.Interface,
		Status:          statusOf(c.link),
		Media:           mediaOf(c.link),
		Characteristics: CharAllUsers | CharAllowRename,
		Role:            r.Role,
		Firewall:        r.Firewall,
		AllowPing:       r.AllowPing,
		NATTraversal:    r.NATTraversal,
	}
	if c.link != nil {
		p.Device = cmp.Or(c.link.Driver, c.link.Kind)
	}
	switch r.Role {
	case store.RolePublic:
		p.Characteristics |= CharShared
	case store.RolePrivate:
		p.Characteristics |= CharSharedPrivate
		p.PrivateAddress = r.PrivateAddress
	}
	if r.Firewall {
		p.Characteristics |= CharFirewalled
	}
	return p
}

// EnumEveryConnection returns every connection: each interface of the
// namespace but loopback, and each absent one that carries configuration
// (shown as hardware-not-present). They are sorted by interface name.
func (m *Manager) EnumEveryConnection(ctx context.Context) ([]Connection, error) {
	return m.enum(ctx, func(*store.Connection) bool { return true })
}

// EnumPublicConnections returns the connection shared as public, if any.
func (m *Manager) EnumPublicConnections(ctx context.Context) ([]Connection, error) {
	return m.enum(ctx, func(c *store.Connection) bool { return c.Role == store.RolePublic })
}

// EnumPrivateConnections returns the connections shared as private.
func (m *Manager) EnumPrivateConnections(ctx context.Context) ([]Connection, error) {
	return m.enum(ctx, func(c *store.Connection) bool { return c.Role == store.RolePrivate })
}

func (m *Manager) enum(ctx context.Context, keep func(*store.Connection) bool) ([]Connection, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	cs := m.listLocked()
	out := []Connection{}
	for _, c := range cs {
		if keep(c.rec) {
			out = append(out, m.propsLocked(c))
		}
	}
	return out, nil
}

// Sharing returns which connections are public and private.
func (m *Manager) Sharing(ctx context.Context) (Overview, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	cs := m.listLocked()
	o := Overview{Public: []Connection{}, Private: []Connection{}}
	for _, c := range cs {
		switch c.rec.Role {
		case store.RolePublic:
			o.Public = append(o.Public, m.propsLocked(c))
		case store.RolePrivate:
			o.Private = append(o.Private, m.propsLocked(c))
		}
	}
	if addr := m.publicAddr(); addr.IsValid() {
		o.PublicAddress, o.BehindNAT = addr, behindNAT(addr)
	}
	return o, nil
}

// sharedSpace is RFC 6598's shared address space, where carriers number
// the customers of their NAT.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// behindNAT reports whether a public address is one another NAT gives:
// private, shared, or link-local.
func behindNAT(a netip.Addr) bool {
	return a.IsPrivate() || sharedSpace.Contains(a) || a.IsLinkLocalUnicast()
}

// NetConnectionProps returns the properties of the connection ref names
// (an id, an interface name or a friendly name).
func (m *Manager) NetConnectionProps(ctx context.Context, ref string) (Connection, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	c, err := m.findLocked(ref)
	if err != nil {
		return Connection{}, err
	}
	return m.propsLocked(c), nil
}

// Connect brings the connection's interface up.
func (m *Manager) Connect(ctx context.Context, ref string) (Connection, error) {
	return m.setLink(ctx, ref, "connecting", m.links.SetUp)
}

// Disconnect takes the connection's interface down.
func (m *Manager) Disconnect(ctx context.Context, ref string) (Connection, error) {
	return m.setLink(ctx, ref, "disconnecting", m.links.SetDown)
}

func (m *Manager) setLink(ctx context.Context, ref, verb string, do func(context.Context, string) error) (Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return Connection{}, err
	}
	if c.link == nil {
		return Connection{}, hresult.New(hresult.Fail, "%s connection %s: its interface is not present", verb, label(c.rec))
	}
	if err := do(ctx, c.rec.Interface); err != nil {
		return Connection{}, hresult.New(hresult.Fail, "%s connection %s: %w", verb, label(c.rec), err)
	}
	m.log.Info(verb, "connection", c.rec.ID, "interface", c.rec.Interface)
	if c, err = m.lookupLocked(ctx, c.rec.ID); err != nil {
		return Connection{}, err
	}
	return m.propsLocked(c), nil
}

// Rename gives the connection a new friendly name, kept in the store and
// set as the interface alias. The name must not be another connection's
// name or interface name. Renaming to the interface name restores the
// default.
func (m *Manager) Rename(ctx context.Context, ref, name string) (Connection, error) {
	if err := checkName("name", name); err != nil {
		return Connection{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return Connection{}, err
	}
	for _, o := range m.conns {
		if o.ID != c.rec.ID && (o.Name == name || o.Interface == name) {
			return Connection{}, hresult.Clash("name", "%q is already used by connection %s", name, label(o))
		}
	}
	rec := *c.rec
	rec.Name = name
	if name == rec.Interface {
		rec.Name = ""
	}
	if rec.Name == c.rec.Name {
		return m.propsLocked(c), nil
	}
	ch := &change{conns: []store.Connection{rec}}
	if c.link != nil {
		ch.setAlias(rec.Interface, rec.Name)
	}
	if err := m.commitLocked(ctx, ch); err != nil {
		return Connection{}, err
	}
	m.log.Info("renamed", "connection", rec.ID, "interface", rec.Interface, "name", name)
	c.rec = m.conns[rec.ID]
	return m.propsLocked(c), nil
}

// Delete answers E_NOTIMPL: a connection is a kernel interface, which
// netshare does not remove.
func (m *Manager) Delete(ctx context.Context, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return err
	}
	return hresult.New(hresult.NotImpl, "deleting connection %s: netshare does not delete network interfaces", label(c.rec))
}

// Duplicate answers E_NOTIMPL: a LAN connection cannot be copied.
func (m *Manager) Duplicate(ctx context.Context, ref, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return err
	}
	return hresult.New(hresult.NotImpl, "duplicating connection %s: network interfaces cannot be duplicated", label(c.rec))
}
