package sharing

import (
	"cmp"
	"context"
	"net/netip"
	"slices"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/store"
)

// DefaultPrivateAddress is the address a private connection gets unless
// told otherwise, as in Windows.
var DefaultPrivateAddress = netip.MustParsePrefix("192.168.137.1/24")

// EnableSharing shares the connection as public or private.
//
// As in Windows: there is one public connection, so enabling another one
// unshares the old one (which disables its port mappings); a public
// connection gets the firewall switched on; a private one keeps its
// firewall as it is. A connection has one role: enabling the other role
// unshares it first. Enabling the role it already has with the same
// address changes nothing.
//
// A private connection gets the private address (req.Address, or the one
// it had, or DefaultPrivateAddress) in place of its IPv4 addresses, which
// are kept and put back when sharing stops. The private network must not
// overlap the public connection's or another private one's. While any
// connection is shared, the namespace forwards IPv4.
func (m *Manager) EnableSharing(ctx context.Context, ref string, role Role, addr netip.Prefix) (Connection, error) {
	switch role {
	case RolePublic:
		if addr.IsValid() {
			return Connection{}, hresult.Invalid("address", "is for private connections; a public connection keeps its own addresses")
		}
	case RolePrivate:
		if addr.IsValid() {
			if err := checkPrivateAddress(addr); err != nil {
				return Connection{}, err
			}
		}
	default:
		return Connection{}, hresult.Invalid("type", "%q is not a sharing type; use public or private", role)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return Connection{}, err
	}
	if role == store.RolePrivate && !addr.IsValid() {
		addr = cmp.Or(c.rec.PrivateAddress, DefaultPrivateAddress)
	}
	if c.rec.Role == role && (role == store.RolePublic || c.rec.PrivateAddress == addr) {
		return m.propsLocked(c), nil
	}
	if err := m.checkOverlapLocked(c.rec, role, addr); err != nil {
		return Connection{}, err
	}
	ch := &change{}
	if c.rec.Role == store.RolePrivate && role == store.RolePrivate {
		// A new address for a private connection: move it, keeping the
		// saved addresses and the mappings.
		rec := *c.rec
		rec.PrivateAddress = addr
		m.moveAddressLocked(ch, &rec, c.rec.PrivateAddress, addr)
		ch.conns = []store.Connection{rec}
		if err := m.commitLocked(ctx, ch); err != nil {
			return Connection{}, err
		}
		m.log.Info("private address changed", "connection", rec.ID, "interface", rec.Interface, "address", rec.PrivateAddress)
		return m.refreshLocked(ctx, rec.ID)
	}
	if c.rec.Role != store.RoleNone {
		m.unshareLocked(ch, c.rec)
	}
	if role == store.RolePublic {
		for _, o := range m.conns {
			if o.ID != c.rec.ID && o.Role == store.RolePublic {
				m.unshareLocked(ch, o)
				m.log.Info("unsharing the previous public connection", "connection", o.ID, "interface", o.Interface)
			}
		}
	}
	rec := *c.rec
	if len(ch.conns) > 0 && ch.conns[0].ID == rec.ID {
		rec = ch.conns[0] // as unsharing left it
	}
	rec.Role = role
	if role == store.RolePublic {
		rec.Firewall = true
	} else {
		rec.PrivateAddress = addr
		m.addressLocked(ch, &rec, addr)
	}
	ch.conns = append(ch.conns, rec)
	m.forwardingLocked(ctx, ch)
	if err := m.commitLocked(ctx, ch); err != nil {
		return Connection{}, err
	}
	m.log.Info("sharing enabled", "connection", rec.ID, "interface", rec.Interface, "type", role, "address", rec.PrivateAddress)
	return m.refreshLocked(ctx, rec.ID)
}

// refreshLocked returns the current properties of the connection id.
func (m *Manager) refreshLocked(ctx context.Context, id string) (Connection, error) {
	c, err := m.lookupLocked(ctx, id)
	if err != nil {
		return Connection{}, err
	}
	return m.propsLocked(c), nil
}

// checkPrivateAddress checks the address of a private connection: an
// IPv4 host address with its prefix, such as 192.168.137.1/24.
func checkPrivateAddress(p netip.Prefix) error {
	a, s := p.Addr(), p.String()
	switch {
	case !p.IsValid():
		return hresult.Invalid("address", "is missing; give one such as 192.168.137.1/24")
	case !a.Is4():
		return hresult.Invalid("address", "%q is not IPv4", s)
	case p.Bits() < 8 || p.Bits() > 30:
		return hresult.Invalid("address", "%q: the prefix length must be 8 to 30", s)
	case a == p.Masked().Addr():
		return hresult.Invalid("address", "%q is the network address of %s; give a host address", s, p.Masked())
	case a == fw.LastAddr(p):
		return hresult.Invalid("address", "%q is the broadcast address of %s; give a host address", s, p.Masked())
	case a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() || thisNetwork.Contains(a) || reservedE.Contains(a):
		return hresult.Invalid("address", "%q is not a usable unicast address", s)
	}
	return nil
}

// checkOverlapLocked refuses a role for c whose networks would overlap the
// public connection's or another private connection's.
func (m *Manager) checkOverlapLocked(c *store.Connection, role store.Role, addr netip.Prefix) error {
	for _, o := range m.conns {
		if o.ID == c.ID {
			continue
		}
		switch {
		case role == store.RolePrivate && o.Role == store.RolePublic:
			for _, p := range m.ipv4Locked(o.Interface) {
				if p.Masked().Overlaps(addr.Masked()) {
					return hresult.Invalid("address", "%s overlaps %s of the public connection %s; choose another private network", addr, p.Masked(), label(o))
				}
			}
		case role == store.RolePrivate && o.Role == store.RolePrivate:
			if p := o.PrivateAddress; p.IsValid() && p.Masked().Overlaps(addr.Masked()) {
				return hresult.Invalid("address", "%s overlaps %s of the private connection %s; choose another private network", addr, p.Masked(), label(o))
			}
		case role == store.RolePublic && o.Role == store.RolePrivate:
			p := o.PrivateAddress
			if !p.IsValid() {
				continue
			}
			for _, q := range m.ipv4Locked(c.Interface) {
				if q.Masked().Overlaps(p.Masked()) {
					return hresult.Invalid("type", "the address %s of %s overlaps the private network %s of connection %s; change the private address first", q, label(c), p.Masked(), label(o))
				}
			}
		}
	}
	return nil
}

// ipv4Locked returns the IPv4 addresses of a link as last observed.
func (m *Manager) ipv4Locked(iface string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range m.seen[iface].Addrs {
		if p.Addr().Is4() {
			out = append(out, p)
		}
	}
	return out
}

// addressLocked declares in ch that rec's link has the private address
// addr in place of its other IPv4 addresses. rec keeps the link's IPv4
// addresses in SavedAddrs (unless it already holds some from an earlier
// enable), the private address too if the link had it already.
func (m *Manager) addressLocked(ch *change, rec *store.Connection, addr netip.Prefix) {
	if _, ok := m.seen[rec.Interface]; !ok {
		return
	}
	current := m.ipv4After(ch, rec.Interface)
	if rec.SavedAddrs == nil {
		rec.SavedAddrs = append([]netip.Prefix{}, current...)
	}
	ch.setIPv4(rec.Interface, []netip.Prefix{addr})
}

// moveAddressLocked declares in ch that a private connection's link has
// addr in place of its old private address, keeping its other addresses.
func (m *Manager) moveAddressLocked(ch *change, rec *store.Connection, was, addr netip.Prefix) {
	if _, ok := m.seen[rec.Interface]; !ok {
		return
	}
	next := slices.DeleteFunc(slices.Clone(m.ipv4After(ch, rec.Interface)), func(p netip.Prefix) bool { return p == was })
	if !slices.Contains(next, addr) {
		next = append(next, addr)
	}
	ch.setIPv4(rec.Interface, next)
}

// ipv4After returns a link's IPv4 addresses as ch leaves them.
func (m *Manager) ipv4After(ch *change, iface string) []netip.Prefix {
	if ps, ok := ch.links.IPv4[iface]; ok {
		return ps
	}
	return m.ipv4Locked(iface)
}

// forwardingLocked adds to ch the step that turns IPv4 forwarding on when
// the first connection is shared, remembering its value, and puts that
// value back when the last one stops.
func (m *Manager) forwardingLocked(ctx context.Context, ch *change) {
	after := map[string]store.Role{}
	for id, c := range m.conns {
		after[id] = c.Role
	}
	for _, c := range ch.conns {
		after[c.ID] = c.Role
	}
	shared := false
	for _, r := range after {
		shared = shared || r != store.RoleNone
	}
	switch {
	case shared && !m.settings.ForwardingSaved:
		was, err := m.links.IPv4Forwarding(ctx)
		if err != nil {
			ch.steps = append(ch.steps, step{
				do:   func(context.Context) error { return hresult.New(hresult.Fail, "reading IPv4 forwarding: %w", err) },
				undo: func(context.Context) error { return nil },
			})
			return
		}
		st := m.changedSettingsLocked(ch)
		st.ForwardingSaved, st.ForwardingWas = true, was
		ch.settings = &st
		ch.setForwarding(true)
	case !shared && m.settings.ForwardingSaved:
		st := m.changedSettingsLocked(ch)
		st.ForwardingSaved, st.ForwardingWas = false, false
		ch.settings = &st
		ch.setForwarding(m.settings.ForwardingWas)
	}
}

// changedSettingsLocked returns a copy of the settings as ch leaves them.
func (m *Manager) changedSettingsLocked(ch *change) store.Settings {
	if ch.settings != nil {
		return *ch.settings
	}
	return m.cloneSettingsLocked()
}

// unshareLocked adds to ch what DisableSharing does to c: no role, every
// port mapping of c disabled, and a private connection's own addresses
// back in place of the private address.
func (m *Manager) unshareLocked(ch *change, c *store.Connection) {
	rec := *c
	rec.Role = store.RoleNone
	if c.Role == store.RolePrivate {
		if _, ok := m.seen[c.Interface]; ok {
			// Its own addresses back, and any added by hand since.
			next := slices.Clone(m.ipv4After(ch, c.Interface))
			if p := c.PrivateAddress; p.IsValid() && !slices.Contains(c.SavedAddrs, p) {
				next = slices.DeleteFunc(next, func(q netip.Prefix) bool { return q == p })
			}
			for _, p := range c.SavedAddrs {
				if !slices.Contains(next, p) {
					next = append(next, p)
				}
			}
			ch.setIPv4(c.Interface, next)
			rec.SavedAddrs = nil
		}
	}
	ch.conns = append(ch.conns, rec)
	// A person's mappings are kept, disabled; a device's end.
	for _, id := range m.byConn[c.ID] {
		switch mp := m.mappings[id]; {
		case mp.Origin != OriginUser:
			ch.deleteMapping(id)
		case mp.Enabled:
			off := *mp
			off.Enabled = false
			ch.putMapping(off)
		}
	}
}

// DisableSharing unshares the connection and disables every port mapping
// of it; the firewall stays as it is. A private connection gets its own
// addresses back. It succeeds, and still disables the mappings, when the
// connection is not shared.
func (m *Manager) DisableSharing(ctx context.Context, ref string) (Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return Connection{}, err
	}
	ch := &change{}
	m.unshareLocked(ch, c.rec)
	if c.rec.Role == store.RoleNone {
		// Only the mappings change.
		ch.conns = nil
	} else {
		m.forwardingLocked(ctx, ch)
	}
	if len(ch.conns)+len(ch.mappings) > 0 {
		if err := m.commitLocked(ctx, ch); err != nil {
			return Connection{}, err
		}
		m.log.Info("sharing disabled", "connection", c.rec.ID, "interface", c.rec.Interface, "mappingsDisabled", len(ch.mappings))
	}
	return m.refreshLocked(ctx, c.rec.ID)
}

// EnableInternetFirewall switches the firewall on for the connection; it
// succeeds when the firewall is already on. allowPing, if set, says
// whether the connection answers ping (inbound ICMP echo); unset leaves
// it as it is (off at first).
func (m *Manager) EnableInternetFirewall(ctx context.Context, ref string, allowPing *bool) (Connection, error) {
	return m.setFirewall(ctx, ref, true, allowPing)
}

// DisableInternetFirewall switches the firewall off for the connection; it
// succeeds when the firewall is already off.
func (m *Manager) DisableInternetFirewall(ctx context.Context, ref string) (Connection, error) {
	return m.setFirewall(ctx, ref, false, nil)
}

func (m *Manager) setFirewall(ctx context.Context, ref string, on bool, allowPing *bool) (Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return Connection{}, err
	}
	if c.rec.Firewall != on || allowPing != nil && *allowPing != c.rec.AllowPing {
		rec := *c.rec
		rec.Firewall = on
		if allowPing != nil {
			rec.AllowPing = *allowPing
		}
		if err := m.commitLocked(ctx, &change{conns: []store.Connection{rec}}); err != nil {
			return Connection{}, err
		}
		m.log.Info("firewall", "connection", rec.ID, "interface", rec.Interface, "enabled", on, "allowPing", rec.AllowPing)
		c.rec = m.conns[rec.ID]
	}
	return m.propsLocked(c), nil
}

// SetNATTraversal lets the devices of the connection ask for port
// mappings of their own (NAT-PMP and PCP on port 5351 of its address),
// or stops it. It takes effect while the connection is shared as
// private; the devices' mappings already made stay until they end.
func (m *Manager) SetNATTraversal(ctx context.Context, ref string, on bool) (Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return Connection{}, err
	}
	if c.rec.NATTraversal != on {
		rec := *c.rec
		rec.NATTraversal = on
		if err := m.commitLocked(ctx, &change{conns: []store.Connection{rec}}); err != nil {
			return Connection{}, err
		}
		m.log.Info("NAT traversal", "connection", rec.ID, "interface", rec.Interface, "enabled", on)
		c.rec = m.conns[rec.ID]
	}
	return m.propsLocked(c), nil
}

// sortedMappingIDs returns the ids of c's mappings in ascending order.
func (m *Manager) sortedMappingIDsLocked(connID string) []uint64 { return m.order[connID] }
