package sharing

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/store"
)

// mappingPropsLocked returns a stored mapping as the model shows it,
// with where a name target points now.
func (m *Manager) mappingPropsLocked(mp *store.Mapping) Mapping {
	p := mappingOf(mp)
	if m.unapplied[mp.ID] {
		p.ApplyError = m.fwErr
	}
	if mp.TargetName != "" {
		// What the firewall has, or, before it follows the name, where
		// the name points now.
		ip, recorded := m.fwTargets[strings.ToLower(mp.TargetName)]
		ok := ip.IsValid()
		if !recorded {
			ip, ok = m.resolveTarget(mp.TargetName)
		}
		if ok {
			p.Resolved = ip
		} else {
			p.Unresolved = true
		}
	}
	return p
}

// mappingOf returns the stored properties of a mapping.
func mappingOf(mp *store.Mapping) Mapping {
	p := Mapping{ID: MappingID(mp.ID), Connection: mp.Connection, MappingSpec: specOf(mp), Enabled: mp.Enabled,
		Origin: mp.Origin, Client: mp.Client}
	if mp.Origin != OriginUser {
		p.Expires, p.Peers = time.UnixMilli(mp.Expiry), mp.Peers
	}
	return p
}

// specOf returns the description of a stored mapping.
func specOf(mp *store.Mapping) MappingSpec {
	return MappingSpec{Name: mp.Name, Protocol: mp.Protocol, ExternalPort: mp.ExternalPort, InternalPort: mp.InternalPort,
		Options: mp.Options, Target: Target{Name: mp.TargetName, IP: mp.TargetIP}}
}

// checkSpec validates a mapping description and returns it as a record
// (without id and connection).
func checkSpec(s MappingSpec) (store.Mapping, error) {
	if err := checkName("name", s.Name); err != nil {
		return store.Mapping{}, err
	}
	if err := checkProtocol(s.Protocol); err != nil {
		return store.Mapping{}, err
	}
	if err := checkPort("externalPort", s.ExternalPort); err != nil {
		return store.Mapping{}, err
	}
	if err := checkPort("internalPort", s.InternalPort); err != nil {
		return store.Mapping{}, err
	}
	if err := checkOptions(s.Options); err != nil {
		return store.Mapping{}, err
	}
	t, err := checkTarget(s.Target)
	if err != nil {
		return store.Mapping{}, err
	}
	return store.Mapping{
		Name:         s.Name,
		Protocol:     s.Protocol,
		ExternalPort: s.ExternalPort,
		InternalPort: s.InternalPort,
		TargetName:   t.Name,
		TargetIP:     t.IP,
	}, nil
}

// checkUniqueLocked refuses a mapping whose protocol and external port are
// already used by another mapping of the same connection.
func (m *Manager) checkUniqueLocked(c *store.Connection, mp *store.Mapping) error {
	if id, ok := m.byConn[c.ID][protoPort{mp.Protocol, mp.ExternalPort}]; ok && id != mp.ID {
		o := m.mappings[id]
		return hresult.Clash("externalPort", "%s port %d of connection %s is already used by mapping %d (%q)", mp.Protocol, mp.ExternalPort, label(c), id, o.Name)
	}
	return nil
}

// AddPortMapping adds a port mapping to the connection. The new mapping is
// disabled; Enable turns it on.
func (m *Manager) AddPortMapping(ctx context.Context, ref string, s MappingSpec) (Mapping, error) {
	spec, err := checkSpec(s)
	if err != nil {
		return Mapping{}, err
	}
	return m.changeMapping(ctx, func() (*store.Mapping, uint64, error) {
		c, err := m.findLocked(ref)
		if err != nil {
			return nil, 0, err
		}
		mp := spec
		mp.Connection = c.rec.ID
		mp.ID = m.lastID + 1
		if err := m.checkUniqueLocked(c.rec, &mp); err != nil {
			return nil, 0, err
		}
		m.log.Info("mapping added", "connection", c.rec.ID, "id", mp.ID, "name", mp.Name,
			"protocol", mp.Protocol, "externalPort", mp.ExternalPort, "internalPort", mp.InternalPort,
			"targetName", mp.TargetName, "targetIP", mp.TargetIP)
		return &mp, mp.ID, nil
	})
}

// mappingIn finds mapping id of connection c; mu or view is held.
func (m *Manager) mappingIn(c conn, id MappingID) (conn, *store.Mapping, error) {
	mp := m.mappings[uint64(id)]
	if mp == nil || mp.Connection != c.rec.ID {
		return conn{}, nil, hresult.Missing("mapping %s of connection %s: no such mapping", id, label(c.rec))
	}
	return c, mp, nil
}

// PortMapping returns the properties of one mapping of the connection.
func (m *Manager) PortMapping(ctx context.Context, ref string, id MappingID) (Mapping, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	c, err := m.findLocked(ref)
	if err != nil {
		return Mapping{}, err
	}
	_, mp, err := m.mappingIn(c, id)
	if err != nil {
		return Mapping{}, err
	}
	return m.mappingPropsLocked(mp), nil
}

// EnumPortMappings returns the connection's mappings that f selects, in
// the order they were added (by id), a page at a time when f has a Limit:
// more says whether others come after the page.
func (m *Manager) EnumPortMappings(ctx context.Context, ref string, f MappingFilter) (ms []Mapping, more bool, err error) {
	m.view.RLock()
	defer m.view.RUnlock()
	c, err := m.findLocked(ref)
	if err != nil {
		return nil, false, err
	}
	ids := m.order[c.rec.ID]
	i, _ := slices.BinarySearch(ids, uint64(f.After)+1)
	ms = []Mapping{}
	if f.After == MappingID(^uint64(0)) {
		return ms, false, nil
	}
	for _, id := range ids[i:] {
		mp := m.mappings[id]
		if !f.matches(mp) {
			continue
		}
		if f.Limit > 0 && len(ms) == f.Limit {
			return ms, true, nil
		}
		ms = append(ms, m.mappingPropsLocked(mp))
	}
	return ms, false, nil
}

// EnablePortMapping enables a mapping; it succeeds when already enabled.
func (m *Manager) EnablePortMapping(ctx context.Context, ref string, id MappingID) (Mapping, error) {
	return m.editMapping(ctx, ref, id, MappingEdit{Enabled: new(true)})
}

// DisablePortMapping disables a mapping; it succeeds when already disabled.
func (m *Manager) DisablePortMapping(ctx context.Context, ref string, id MappingID) (Mapping, error) {
	return m.editMapping(ctx, ref, id, MappingEdit{Enabled: new(false)})
}

// EditPortMapping changes the fields of a mapping that e sets, keeping its
// id. The result is validated as AddPortMapping validates a new mapping.
func (m *Manager) EditPortMapping(ctx context.Context, ref string, id MappingID, e MappingEdit) (Mapping, error) {
	return m.editMapping(ctx, ref, id, e)
}

func (m *Manager) editMapping(ctx context.Context, ref string, id MappingID, e MappingEdit) (Mapping, error) {
	return m.changeMapping(ctx, func() (*store.Mapping, uint64, error) {
		return m.planEdit(ref, id, e)
	})
}

// planEdit returns mapping id of ref as e changes it.
func (m *Manager) planEdit(ref string, id MappingID, e MappingEdit) (*store.Mapping, uint64, error) {
	c, err := m.findLocked(ref)
	if err != nil {
		return nil, 0, err
	}
	c, old, err := m.mappingIn(c, id)
	if err != nil {
		return nil, 0, err
	}
	if old.Origin != OriginUser {
		return nil, 0, hresult.Invalid("id", "mapping %s of connection %s is leased by %s (%v) until %s: it cannot be changed, only removed",
			id, label(c.rec), old.Client, old.Origin, time.UnixMilli(old.Expiry).UTC().Format(time.RFC3339))
	}
	s := specOf(old)
	if e.Name != nil {
		s.Name = *e.Name
	}
	if e.Protocol != nil {
		s.Protocol = *e.Protocol
	}
	if e.ExternalPort != nil {
		s.ExternalPort = *e.ExternalPort
	}
	if e.InternalPort != nil {
		s.InternalPort = *e.InternalPort
	}
	if e.Options != nil {
		s.Options = *e.Options
	}
	switch {
	case e.TargetName != nil && e.TargetIP != nil:
		s.Target = Target{Name: *e.TargetName, IP: *e.TargetIP}
	case e.TargetName != nil && *e.TargetName != "":
		s.Target = Target{Name: *e.TargetName}
	case e.TargetIP != nil && e.TargetIP.IsValid():
		s.Target = Target{IP: *e.TargetIP}
	case e.TargetName != nil:
		s.Target.Name = ""
	case e.TargetIP != nil:
		s.Target.IP = netip.Addr{}
	}
	mp, err := checkSpec(s)
	if err != nil {
		return nil, 0, err
	}
	mp.ID, mp.Connection, mp.Enabled = old.ID, old.Connection, old.Enabled
	if e.Enabled != nil {
		mp.Enabled = *e.Enabled
	}
	if err := m.checkUniqueLocked(c.rec, &mp); err != nil {
		return nil, 0, err
	}
	if mp == *old {
		return old, old.ID, nil
	}
	m.log.Info("mapping changed", "connection", c.rec.ID, "id", mp.ID, "name", mp.Name, "enabled", mp.Enabled,
		"protocol", mp.Protocol, "externalPort", mp.ExternalPort, "internalPort", mp.InternalPort,
		"targetName", mp.TargetName, "targetIP", mp.TargetIP)
	return &mp, mp.ID, nil
}

// RemovePortMapping removes a mapping of the connection.
func (m *Manager) RemovePortMapping(ctx context.Context, ref string, id MappingID) error {
	_, err := m.changeMapping(ctx, func() (*store.Mapping, uint64, error) {
		c, err := m.findLocked(ref)
		if err != nil {
			return nil, 0, err
		}
		c, mp, err := m.mappingIn(c, id)
		if err != nil {
			return nil, 0, err
		}
		m.log.Info("mapping removed", "connection", c.rec.ID, "id", mp.ID, "name", mp.Name)
		return nil, mp.ID, nil
	})
	return err
}
