package sharing

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/store"
)

// The whole desired state as one document (Config): Config reads
// it, ApplyConfig makes the state what a document says, all or nothing.

// Revision returns the revision of the desired state, as documents carry
// it.
func (m *Manager) Revision() string {
	m.view.RLock()
	defer m.view.RUnlock()
	return revString(m.rev)
}

func revString(r store.Rev) string { return strconv.FormatUint(uint64(r), 10) }

// Config returns the whole desired state as one document.
func (m *Manager) Config(ctx context.Context) (Config, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	return m.configLocked(), nil
}

// configLocked renders the desired state; mu or view is held.
func (m *Manager) configLocked() Config {
	doc := Config{Revision: revString(m.rev), Connections: []ConnectionConfig{}}
	for _, c := range m.listLocked() {
		r := c.rec
		cc := ConnectionConfig{ID: r.ID, Interface: r.Interface, Name: r.Name, Role: r.Role, Firewall: r.Firewall, AllowPing: r.AllowPing, NATTraversal: r.NATTraversal}
		if r.Role == store.RolePrivate {
			cc.Address = r.PrivateAddress
		}
		if d := r.DHCP; d != nil {
			dc := &DHCPConfig{PoolStart: d.PoolStart, PoolEnd: d.PoolEnd, LeaseTime: time.Duration(d.LeaseSeconds) * time.Second,
				Domain: d.Domain, Router: d.Router, DNSServer: d.DNSServer}
			for _, x := range d.Reservations {
				dc.Reservations = append(dc.Reservations, Reservation(x))
			}
			cc.DHCP = dc
		}
		for _, id := range m.sortedMappingIDsLocked(r.ID) {
			mp := m.mappings[id]
			if mp.Origin != OriginUser {
				continue // a device's lease, not desired state
			}
			cc.Mappings = append(cc.Mappings, MappingConfig{ID: MappingID(id), MappingSpec: specOf(mp), Enabled: mp.Enabled})
		}
		doc.Connections = append(doc.Connections, cc)
	}
	if m.settings.PortMap != nil {
		p := policyOf(m.settings.PortMap)
		doc.PortMapPolicy = &p
	}
	doc.DNS.Upstreams = upstreamsOf(m.settings)
	for _, name := range slices.Sorted(maps.Keys(m.settings.Hosts)) {
		doc.DNS.Hosts = append(doc.DNS.Hosts, DNSHost{Name: name, IP: m.settings.Hosts[name]})
	}
	return doc
}

// ApplyConfig makes the desired state what doc says: every connection as
// doc lists it, and every connection it leaves out back to the defaults
// (not shared, no firewall, no name, no DHCP settings, no mappings). The
// whole document is checked first, against itself and the links; a
// document with any error changes nothing. The changes then happen as
// one: one commit, and the kernel changes before it, undone if any fails.
//
// ifMatch, if set, is the revision the document was based on: a state at
// another revision is refused (hresult.Stale), since applying the
// document would undo changes its author did not see. With dryRun, the
// changes are returned and nothing changes.
func (m *Manager) ApplyConfig(ctx context.Context, doc Config, ifMatch string, dryRun bool) (ConfigResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.observeLocked(ctx); err != nil {
		return ConfigResult{}, err
	}
	if ifMatch != "" && ifMatch != revString(m.rev) {
		e := hresult.New(hresult.Abort, "the state is at revision %s, not %s: it changed since the document was read; export it again (or apply without the revision to replace the state anyway)", revString(m.rev), ifMatch)
		e.Reason = hresult.Stale
		return ConfigResult{}, e
	}
	p, err := m.planLocked(doc)
	if err != nil {
		return ConfigResult{}, err
	}
	res := ConfigResult{DryRun: dryRun, Changes: p.changes}
	if res.Changes == nil {
		res.Changes = []string{}
	}
	if dryRun || len(p.changes) == 0 {
		res.Config = m.configLocked()
		return res, nil
	}
	ch := m.changeForPlanLocked(ctx, p)
	if err := m.commitLocked(ctx, ch); err != nil {
		return ConfigResult{}, err
	}
	m.log.Info("configuration applied", "changes", len(p.changes), "revision", m.rev)
	res.Config = m.configLocked()
	return res, nil
}

// plan is a checked document: every connection record as it is to be,
// the mappings, the DNS settings, and the changes in words.
type plan struct {
	conns    map[string]*store.Connection // by id: every record, as it is to be
	addrs    map[string]netip.Prefix      // by id: the private address of a private connection
	mappings map[uint64]*store.Mapping    // every mapping, as it is to be
	settings store.Settings
	changes  []string
}

// planLocked checks doc against itself and the links and returns what it
// asks for.
func (m *Manager) planLocked(doc Config) (*plan, error) {
	p := &plan{conns: map[string]*store.Connection{}, addrs: map[string]netip.Prefix{}, mappings: map[uint64]*store.Mapping{}}
	listed := map[string]int{} // connection id -> its index in doc
	nextID := m.lastID
	for i, cc := range doc.Connections {
		at := func(err error) error { return hresult.Within(fmt.Sprintf("connections[%d]", i), err) }
		old := m.findRecordLocked(cc.ID, cc.Interface)
		if old == nil {
			return nil, at(hresult.Missing("connection %q: no such connection (connections come from the kernel's interfaces; 'netshare connection list' shows them)", cmpOr(cc.ID, cc.Interface)))
		}
		if j, dup := listed[old.ID]; dup {
			return nil, at(hresult.Invalid("id", "connection %s is listed twice (also at connections[%d])", label(old), j))
		}
		listed[old.ID] = i
		rec := *old
		rec.Name, rec.Firewall, rec.AllowPing, rec.NATTraversal = cc.Name, cc.Firewall, cc.AllowPing, cc.NATTraversal
		if cc.Name != "" {
			if err := checkName("name", cc.Name); err != nil {
				return nil, at(err)
			}
		}
		if rec.Name == rec.Interface {
			rec.Name = ""
		}
		switch cc.Role {
		case RoleNone, RolePublic, RolePrivate:
			rec.Role = cc.Role
		default:
			return nil, at(hresult.Invalid("sharing", "%q is not a sharing type; use public, private, or leave it out", cc.Role))
		}
		if cc.Address.IsValid() {
			if rec.Role != store.RolePrivate {
				return nil, at(hresult.Invalid("address", "is for private connections; a connection that is not shared as private keeps its own addresses"))
			}
			if err := checkPrivateAddress(cc.Address); err != nil {
				return nil, at(err)
			}
			rec.PrivateAddress = cc.Address
		}
		if rec.Role == store.RolePrivate {
			p.addrs[rec.ID] = privatePrefix(&rec)
			rec.PrivateAddress = p.addrs[rec.ID]
		}
		rec.DHCP = nil
		if cc.DHCP != nil {
			d, err := dhcpFromDocument(cc.DHCP)
			if err == nil {
				d, err = checkDHCP(privatePrefix(&rec), d)
			}
			if err != nil {
				return nil, at(hresult.Within("dhcp", err))
			}
			rec.DHCP = d
		}
		p.conns[rec.ID] = &rec
		// Mappings with an id first; one without takes the id of the
		// mapping that has its protocol and port now, if no other line
		// claims it, so that applying a document written without ids
		// twice changes nothing the second time.
		claimed := map[uint64]bool{}
		for _, mc := range cc.Mappings {
			if mc.ID != 0 {
				claimed[uint64(mc.ID)] = true
			}
		}
		keys := map[protoPort]string{}
		for k, mc := range cc.Mappings {
			at := func(err error) error { return at(hresult.Within(fmt.Sprintf("mappings[%d]", k), err)) }
			mp, err := checkSpec(mc.MappingSpec)
			if err != nil {
				return nil, at(err)
			}
			mp.Connection, mp.Enabled = rec.ID, mc.Enabled
			key := protoPort{mp.Protocol, mp.ExternalPort}
			if id, ok := m.byConn[rec.ID][key]; ok && m.mappings[id].Origin != OriginUser {
				d := m.mappings[id]
				return nil, at(hresult.Clash("externalPort", "%s port %d of connection %s is leased by %s (%v, mapping %d); delete that mapping first", mp.Protocol, mp.ExternalPort, label(old), d.Client, d.Origin, id))
			}
			if mc.ID == 0 {
				if id, ok := m.byConn[rec.ID][key]; ok && !claimed[id] {
					mp.ID = id
					claimed[id] = true
				} else {
					nextID++
					mp.ID = nextID
				}
			} else {
				id := uint64(mc.ID)
				if o := m.mappings[id]; o == nil || o.Connection != rec.ID || o.Origin != OriginUser {
					return nil, at(hresult.Missing("mapping %s of connection %s: no such mapping; leave the id out for a new mapping", mc.ID, label(old)))
				}
				if _, dup := p.mappings[id]; dup {
					return nil, at(hresult.Invalid("id", "mapping %s is listed twice", mc.ID))
				}
				mp.ID = id
			}
			if other, taken := keys[key]; taken {
				return nil, at(hresult.Clash("externalPort", "%s port %d of connection %s is also used by %s", mp.Protocol, mp.ExternalPort, label(old), other))
			}
			keys[key] = fmt.Sprintf("mappings[%d] (%q)", k, mp.Name)
			p.mappings[mp.ID] = &mp
		}
	}
	// The connections the document leaves out go back to the defaults.
	for id, c := range m.conns {
		if _, ok := p.conns[id]; !ok {
			rec := *c
			rec.Name, rec.Role, rec.Firewall, rec.AllowPing, rec.DHCP, rec.NATTraversal = "", store.RoleNone, false, false, nil, false
			p.conns[id] = &rec
		}
	}
	if err := p.checkConnections(m); err != nil {
		return nil, err
	}
	st := m.cloneSettingsLocked()
	ups, err := checkUpstreams(doc.DNS.Upstreams)
	if err != nil {
		return nil, hresult.Within("dns", err)
	}
	st.Upstreams = ups
	st.Hosts = map[string]netip.Addr{}
	for i, h := range doc.DNS.Hosts {
		name, err := checkStaticHost(h)
		if err != nil {
			return nil, hresult.Within(fmt.Sprintf("dns.hosts[%d]", i), err)
		}
		if _, dup := st.Hosts[name]; dup {
			return nil, hresult.Within(fmt.Sprintf("dns.hosts[%d]", i), hresult.Clash("name", "%q is listed twice", name))
		}
		st.Hosts[name] = h.IP
	}
	st.PortMap = nil
	if doc.PortMapPolicy != nil {
		if err := checkPolicy(*doc.PortMapPolicy); err != nil {
			return nil, hresult.Within("portMapPolicy", err)
		}
		st.PortMap = recordOf(*doc.PortMapPolicy)
	}
	p.settings = st
	p.describe(m)
	return p, nil
}

// checkConnections checks the rules that hold between connections: one
// public connection, names that are nobody else's, private networks that
// overlap neither the public connection's nor each other.
func (p *plan) checkConnections(m *Manager) error {
	ids := slices.Sorted(maps.Keys(p.conns))
	var public *store.Connection
	names := map[string]*store.Connection{}
	for _, id := range ids {
		c := p.conns[id]
		if c.Role == store.RolePublic {
			if public != nil {
				return hresult.Invalid("connections", "%s and %s are both shared as public; one connection is", label(public), label(c))
			}
			public = c
		}
		names[c.Interface] = c
	}
	for _, id := range ids {
		c := p.conns[id]
		if c.Name == "" {
			continue
		}
		if o, ok := names[c.Name]; ok && o.ID != c.ID {
			return hresult.Within("connections", hresult.Clash("name", "%q is the name of connection %s, and %s's", c.Name, label(o), c.Interface))
		}
		names[c.Name] = c
	}
	for _, id := range ids {
		a, ok := p.addrs[id]
		if !ok {
			continue
		}
		c := p.conns[id]
		if public != nil {
			for _, q := range m.ipv4Locked(public.Interface) {
				if q.Masked().Overlaps(a.Masked()) {
					return hresult.Invalid("address", "%s of %s overlaps %s of the public connection %s; choose another private network", a, label(c), q.Masked(), label(public))
				}
			}
		}
		for _, oid := range ids {
			if b, ok := p.addrs[oid]; ok && oid > id && a.Masked().Overlaps(b.Masked()) {
				return hresult.Invalid("address", "%s of %s overlaps %s of the private connection %s; choose another private network", a, label(c), b.Masked(), label(p.conns[oid]))
			}
		}
	}
	return nil
}

// describe lists the changes of the plan in words.
func (p *plan) describe(m *Manager) {
	say := func(format string, args ...any) { p.changes = append(p.changes, fmt.Sprintf(format, args...)) }
	role := func(r store.Role) string {
		if r == store.RoleNone {
			return "not shared"
		}
		return "shared as " + string(r)
	}
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	conns := slices.Collect(maps.Values(p.conns))
	slices.SortFunc(conns, func(a, b *store.Connection) int { return strings.Compare(a.Interface, b.Interface) })
	for _, c := range conns {
		old := m.conns[c.ID]
		what := "connection " + c.Interface
		if c.Role != old.Role {
			say("%s: %s (was %s)", what, role(c.Role), role(old.Role))
		}
		if c.Role == store.RolePrivate && old.Role == store.RolePrivate && c.PrivateAddress != old.PrivateAddress {
			say("%s: private address %s (was %s)", what, c.PrivateAddress, old.PrivateAddress)
		}
		if c.Name != old.Name {
			say("%s: name %q (was %q)", what, cmpOr(c.Name, c.Interface), cmpOr(old.Name, old.Interface))
		}
		if c.Firewall != old.Firewall {
			say("%s: firewall %s", what, onOff(c.Firewall))
		}
		if c.NATTraversal != old.NATTraversal {
			say("%s: NAT-PMP and PCP %s", what, onOff(c.NATTraversal))
		}
		if c.AllowPing != old.AllowPing {
			say("%s: answers ping %s", what, onOff(c.AllowPing))
		}
		if !reflect.DeepEqual(c.DHCP, old.DHCP) {
			say("%s: DHCP settings changed", what)
		}
		for _, id := range m.sortedMappingIDsLocked(c.ID) {
			if _, kept := p.mappings[id]; !kept {
				say("%s: mapping %d (%q) removed", what, id, m.mappings[id].Name)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.mappings)) {
		mp, old := p.mappings[id], m.mappings[id]
		iface := p.conns[mp.Connection].Interface
		switch {
		case old == nil:
			say("connection %s: mapping %d (%q) added: %s %d -> %s:%d, %s", iface, id, mp.Name, mp.Protocol, mp.ExternalPort, targetText(mp), mp.InternalPort, enabledWord(mp.Enabled))
		case *old != *mp:
			say("connection %s: mapping %d (%q) changed: %s %d -> %s:%d, %s", iface, id, mp.Name, mp.Protocol, mp.ExternalPort, targetText(mp), mp.InternalPort, enabledWord(mp.Enabled))
		}
	}
	if !reflect.DeepEqual(p.settings.PortMap, m.settings.PortMap) {
		say("port mapping policy changed")
	}
	if !slices.Equal(p.settings.Upstreams, m.settings.Upstreams) {
		say("DNS upstreams: %v (were %v)", p.settings.Upstreams, m.settings.Upstreams)
	}
	for _, name := range slices.Sorted(maps.Keys(p.settings.Hosts)) {
		if was, ok := m.settings.Hosts[name]; !ok {
			say("DNS host %s: %s added", name, p.settings.Hosts[name])
		} else if was != p.settings.Hosts[name] {
			say("DNS host %s: %s (was %s)", name, p.settings.Hosts[name], was)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.settings.Hosts)) {
		if _, ok := p.settings.Hosts[name]; !ok {
			say("DNS host %s removed", name)
		}
	}
}

func enabledWord(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

// changeForPlanLocked turns a plan into one change: the records, and the
// steps that move the links' addresses, aliases and forwarding.
func (m *Manager) changeForPlanLocked(ctx context.Context, p *plan) *change {
	ch := &change{}
	ids := slices.Sorted(maps.Keys(p.conns))
	// Unsharing first: it gives links their own addresses back before
	// others take private ones.
	for _, id := range ids {
		c, old := p.conns[id], m.conns[id]
		if old.Role != store.RoleNone && (c.Role != old.Role) {
			m.unshareLocked(ch, old)
		}
	}
	for _, id := range ids {
		c, old := p.conns[id], m.conns[id]
		rec := *c
		rec.SavedAddrs = old.SavedAddrs
		for _, u := range ch.conns {
			if u.ID == id {
				rec.SavedAddrs = u.SavedAddrs // as unsharing left it
			}
		}
		if c.Role == store.RolePrivate {
			addr := p.addrs[id]
			if old.Role == store.RolePrivate {
				if addr != old.PrivateAddress {
					m.moveAddressLocked(ch, &rec, old.PrivateAddress, addr)
				}
			} else {
				m.addressLocked(ch, &rec, addr)
			}
		}
		if rec.Name != old.Name {
			if _, ok := m.seen[rec.Interface]; ok {
				ch.setAlias(rec.Interface, rec.Name)
			}
		}
		if !reflect.DeepEqual(&rec, old) || slices.ContainsFunc(ch.conns, func(u store.Connection) bool { return u.ID == id }) {
			ch.conns = append(ch.conns, rec)
		}
	}
	// The mappings as the document says, over what unsharing disabled.
	for id, mp := range p.mappings {
		if old := m.mappings[id]; old == nil || *old != *mp || ch.mappings[id] != nil {
			ch.putMapping(*mp)
		}
	}
	for id, mp := range m.mappings {
		if _, kept := p.mappings[id]; !kept && mp.Origin == OriginUser {
			ch.deleteMapping(id)
		}
	}
	if !reflect.DeepEqual(p.settings.Upstreams, m.settings.Upstreams) || !maps.Equal(p.settings.Hosts, m.settings.Hosts) ||
		!reflect.DeepEqual(p.settings.PortMap, m.settings.PortMap) {
		st := p.settings
		ch.settings = &st
	}
	m.forwardingLocked(ctx, ch)
	return ch
}

// findRecordLocked finds a connection record by id, or else by interface
// name.
func (m *Manager) findRecordLocked(id, iface string) *store.Connection {
	if id != "" {
		return m.conns[strings.ToLower(strings.Trim(id, "{}"))]
	}
	if cid, ok := m.byIface[iface]; ok {
		return m.conns[cid]
	}
	return nil
}

// dhcpFromDocument converts a document's DHCP settings to the record's.
func dhcpFromDocument(dc *DHCPConfig) (*store.DHCP, error) {
	d := &store.DHCP{PoolStart: dc.PoolStart, PoolEnd: dc.PoolEnd, Domain: dc.Domain, Router: dc.Router, DNSServer: dc.DNSServer}
	if err := applyDHCPEdit(d, DHCPEdit{LeaseTime: &dc.LeaseTime}); err != nil {
		return nil, err
	}
	for _, r := range dc.Reservations {
		d.Reservations = append(d.Reservations, store.Reservation(r))
	}
	return d, nil
}

// targetText returns a mapping's target as the changes list it.
func targetText(mp *store.Mapping) string {
	if mp.TargetName != "" {
		return mp.TargetName
	}
	return mp.TargetIP.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
