package sharing

import (
	"context"
	"strconv"
	"strings"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/store"
)

// mappingPropsLocked returns the properties of a stored mapping, with
// where a name target points now.
func (m *Manager) mappingPropsLocked(mp *store.Mapping) hnetcfg.PortMappingProps {
	p := mappingProps(mp)
	if m.unapplied[mp.ID] {
		p.ApplyError = m.fwErr.Error()
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
			p.ResolvedIPAddress = ip.String()
		} else {
			p.Unresolved = true
		}
	}
	return p
}

// mappingProps returns the stored properties of a mapping.
func mappingProps(mp *store.Mapping) hnetcfg.PortMappingProps {
	return hnetcfg.PortMappingProps{
		ID:              strconv.FormatUint(mp.ID, 10),
		Name:            mp.Name,
		Protocol:        hnetcfg.Protocol(mp.Protocol),
		ExternalPort:    int(mp.ExternalPort),
		InternalPort:    int(mp.InternalPort),
		TargetName:      mp.TargetName,
		TargetIPAddress: mp.TargetIP,
		Enabled:         mp.Enabled,
		Options:         int(mp.Options),
	}
}

// checkSpec validates a mapping description and returns it as a record
// (without id and connection).
func checkSpec(s hnetcfg.PortMappingSpec) (store.Mapping, error) {
	var mp store.Mapping
	var err error
	if err = checkName("name", s.Name); err != nil {
		return mp, err
	}
	proto, err := checkProtocol(s.Protocol)
	if err != nil {
		return mp, err
	}
	ext, err := checkPort("externalPort", s.ExternalPort)
	if err != nil {
		return mp, err
	}
	in, err := checkPort("internalPort", s.InternalPort)
	if err != nil {
		return mp, err
	}
	if err := checkOptions(s.Options); err != nil {
		return mp, err
	}
	name, ip, err := checkTarget(s.TargetName, s.TargetIPAddress)
	if err != nil {
		return mp, err
	}
	return store.Mapping{
		Name:         s.Name,
		Protocol:     string(proto),
		ExternalPort: ext,
		InternalPort: in,
		TargetName:   name,
		TargetIP:     ip,
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
func (m *Manager) AddPortMapping(ctx context.Context, ref string, s hnetcfg.PortMappingSpec) (hnetcfg.PortMappingProps, error) {
	spec, err := checkSpec(s)
	if err != nil {
		return hnetcfg.PortMappingProps{}, err
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
func (m *Manager) mappingIn(c conn, id string) (conn, *store.Mapping, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return conn{}, nil, hresult.Invalid("id", "%q is not a mapping id; ids are numbers, as 'netshare mapping list' shows them", id)
	}
	mp := m.mappings[n]
	if mp == nil || mp.Connection != c.rec.ID {
		return conn{}, nil, hresult.Missing("mapping %s of connection %s: no such mapping", id, label(c.rec))
	}
	return c, mp, nil
}

// PortMapping returns the properties of one mapping of the connection.
func (m *Manager) PortMapping(ctx context.Context, ref, id string) (hnetcfg.PortMappingProps, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	c, err := m.findLocked(ref)
	if err != nil {
		return hnetcfg.PortMappingProps{}, err
	}
	_, mp, err := m.mappingIn(c, id)
	if err != nil {
		return hnetcfg.PortMappingProps{}, err
	}
	return m.mappingPropsLocked(mp), nil
}

// EnumPortMappings returns the connection's mappings in the order they were
// added; with ICSSC_ENABLED, the enabled ones only.
func (m *Manager) EnumPortMappings(ctx context.Context, ref string, flags hnetcfg.EnumFlags) ([]hnetcfg.PortMappingProps, error) {
	if flags != hnetcfg.ICSSC_DEFAULT && flags != hnetcfg.ICSSC_ENABLED {
		return nil, hresult.Invalid("flags", "%d is not allowed; use ICSSC_DEFAULT (0) or ICSSC_ENABLED (1)", flags)
	}
	m.view.RLock()
	defer m.view.RUnlock()
	c, err := m.findLocked(ref)
	if err != nil {
		return nil, err
	}
	out := []hnetcfg.PortMappingProps{}
	for _, id := range m.sortedMappingIDsLocked(c.rec.ID) {
		if mp := m.mappings[id]; flags == hnetcfg.ICSSC_DEFAULT || mp.Enabled {
			out = append(out, m.mappingPropsLocked(mp))
		}
	}
	return out, nil
}

// EnablePortMapping enables a mapping; it succeeds when already enabled.
func (m *Manager) EnablePortMapping(ctx context.Context, ref, id string) (hnetcfg.PortMappingProps, error) {
	return m.editMapping(ctx, ref, id, hnetcfg.PortMappingEdit{Enabled: new(true)})
}

// DisablePortMapping disables a mapping; it succeeds when already disabled.
func (m *Manager) DisablePortMapping(ctx context.Context, ref, id string) (hnetcfg.PortMappingProps, error) {
	return m.editMapping(ctx, ref, id, hnetcfg.PortMappingEdit{Enabled: new(false)})
}

// EditPortMapping changes the fields of a mapping that e sets, keeping its
// id. The result is validated as AddPortMapping validates a new mapping.
func (m *Manager) EditPortMapping(ctx context.Context, ref, id string, e hnetcfg.PortMappingEdit) (hnetcfg.PortMappingProps, error) {
	return m.editMapping(ctx, ref, id, e)
}

func (m *Manager) editMapping(ctx context.Context, ref, id string, e hnetcfg.PortMappingEdit) (hnetcfg.PortMappingProps, error) {
	return m.changeMapping(ctx, func() (*store.Mapping, uint64, error) {
		return m.planEdit(ref, id, e)
	})
}

// planEdit returns mapping id of ref as e changes it.
func (m *Manager) planEdit(ref, id string, e hnetcfg.PortMappingEdit) (*store.Mapping, uint64, error) {
	c, err := m.findLocked(ref)
	if err != nil {
		return nil, 0, err
	}
	c, old, err := m.mappingIn(c, id)
	if err != nil {
		return nil, 0, err
	}
	s := hnetcfg.PortMappingSpec{
		Name:            old.Name,
		Protocol:        hnetcfg.Protocol(old.Protocol),
		ExternalPort:    int(old.ExternalPort),
		InternalPort:    int(old.InternalPort),
		Options:         int(old.Options),
		TargetName:      old.TargetName,
		TargetIPAddress: old.TargetIP,
	}
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
	case e.TargetName != nil && e.TargetIPAddress != nil:
		s.TargetName, s.TargetIPAddress = *e.TargetName, *e.TargetIPAddress
	case e.TargetName != nil && *e.TargetName != "":
		s.TargetName, s.TargetIPAddress = *e.TargetName, ""
	case e.TargetIPAddress != nil && *e.TargetIPAddress != "":
		s.TargetName, s.TargetIPAddress = "", *e.TargetIPAddress
	case e.TargetName != nil:
		s.TargetName = ""
	case e.TargetIPAddress != nil:
		s.TargetIPAddress = ""
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
func (m *Manager) RemovePortMapping(ctx context.Context, ref, id string) error {
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
