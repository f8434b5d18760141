package sharing

import (
	"context"
	"slices"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/store"
)

// EnableSharing shares the connection as public or private.
//
// As in Windows: there is one public connection, so enabling another one
// unshares the old one (which disables its port mappings); a public
// connection gets the firewall switched on; a private one keeps its
// firewall as it is. A connection has one role: enabling the other role
// unshares it first. Enabling the role it already has changes nothing.
func (m *Manager) EnableSharing(ctx context.Context, ref string, typ hnetcfg.SharingConnectionType) (hnetcfg.ConnectionProps, error) {
	var role store.Role
	switch typ {
	case hnetcfg.ICSSHARINGTYPE_PUBLIC:
		role = store.RolePublic
	case hnetcfg.ICSSHARINGTYPE_PRIVATE:
		role = store.RolePrivate
	default:
		return hnetcfg.ConnectionProps{}, hresult.Invalid("type", "%q is not a sharing type; use public or private", typ)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return hnetcfg.ConnectionProps{}, err
	}
	if c.rec.Role == role {
		return m.propsLocked(c), nil
	}
	ch := &change{}
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
	rec.Role = role
	if role == store.RolePublic {
		rec.Firewall = true
	}
	ch.conns = append(ch.conns, rec)
	if err := m.commitLocked(ctx, ch); err != nil {
		return hnetcfg.ConnectionProps{}, err
	}
	m.log.Info("sharing enabled", "connection", rec.ID, "interface", rec.Interface, "type", role)
	c.rec = m.conns[rec.ID]
	return m.propsLocked(c), nil
}

// unshareLocked adds to ch what DisableSharing does to c: no role, and
// every port mapping of c disabled.
func (m *Manager) unshareLocked(ch *change, c *store.Connection) {
	rec := *c
	rec.Role = store.RoleNone
	ch.conns = append(ch.conns, rec)
	for _, id := range m.byConn[c.ID] {
		if mp := m.mappings[id]; mp.Enabled {
			off := *mp
			off.Enabled = false
			ch.putMapping(off)
		}
	}
}

// DisableSharing unshares the connection and disables every port mapping
// of it; the firewall stays as it is. It succeeds, and still disables the
// mappings, when the connection is not shared.
func (m *Manager) DisableSharing(ctx context.Context, ref string) (hnetcfg.ConnectionProps, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return hnetcfg.ConnectionProps{}, err
	}
	ch := &change{}
	m.unshareLocked(ch, c.rec)
	if c.rec.Role == store.RoleNone {
		// Only the mappings change.
		ch.conns = nil
	}
	if len(ch.conns)+len(ch.mappings) > 0 {
		if err := m.commitLocked(ctx, ch); err != nil {
			return hnetcfg.ConnectionProps{}, err
		}
		m.log.Info("sharing disabled", "connection", c.rec.ID, "interface", c.rec.Interface, "mappingsDisabled", len(ch.mappings))
	}
	c.rec = m.conns[c.rec.ID]
	return m.propsLocked(c), nil
}

// EnableInternetFirewall switches the firewall on for the connection; it
// succeeds when the firewall is already on.
func (m *Manager) EnableInternetFirewall(ctx context.Context, ref string) (hnetcfg.ConnectionProps, error) {
	return m.setFirewall(ctx, ref, true)
}

// DisableInternetFirewall switches the firewall off for the connection; it
// succeeds when the firewall is already off.
func (m *Manager) DisableInternetFirewall(ctx context.Context, ref string) (hnetcfg.ConnectionProps, error) {
	return m.setFirewall(ctx, ref, false)
}

func (m *Manager) setFirewall(ctx context.Context, ref string, on bool) (hnetcfg.ConnectionProps, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return hnetcfg.ConnectionProps{}, err
	}
	if c.rec.Firewall != on {
		rec := *c.rec
		rec.Firewall = on
		if err := m.commitLocked(ctx, &change{conns: []store.Connection{rec}}); err != nil {
			return hnetcfg.ConnectionProps{}, err
		}
		m.log.Info("firewall", "connection", rec.ID, "interface", rec.Interface, "enabled", on)
		c.rec = m.conns[rec.ID]
	}
	return m.propsLocked(c), nil
}

// sortedMappingIDs returns the ids of c's mappings in ascending order.
func (m *Manager) sortedMappingIDsLocked(connID string) []uint64 {
	ids := make([]uint64, 0, len(m.byConn[connID]))
	for _, id := range m.byConn[connID] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
