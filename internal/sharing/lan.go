package sharing

import (
	"cmp"
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netshare/netshare/internal/dhcp"
	"github.com/netshare/netshare/internal/dns"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/services"
	"github.com/netshare/netshare/internal/store"
)

// DHCP defaults.
const (
	DefaultLeaseTime = time.Hour
	DefaultDomain    = "home.arpa" // RFC 8375
	minLeaseTime     = time.Minute
	maxLeaseTime     = 365 * 24 * time.Hour
)

// nameTable is a snapshot of the names the administrator gave: static
// entries, then reservations, in that order of precedence, with the
// private networks' subnets and domains. It changes with the model only;
// the names of leases are in leaseNames, which changes with each lease.
type nameTable struct {
	byName  map[string]netip.Addr
	byIP    map[netip.Addr]string
	subnets []netip.Prefix
	domains []string
}

// leaseNames is the live index of the names active leases hold, updated
// lease by lease (a lease costs the same however many there are). A name
// has one holder: Bind gives it to the first client that asks until that
// lease ends.
type leaseNames struct {
	mu     sync.RWMutex // guards the maps; writers also hold Manager.leaseMu
	byName map[string]netip.Addr
	byIP   map[netip.Addr]string
	holder map[string]string // name -> the key of the lease that holds it
}

func newLeaseNames() *leaseNames {
	return &leaseNames{byName: map[string]netip.Addr{}, byIP: map[netip.Addr]string{}, holder: map[string]string{}}
}

// label returns the label a name stands for: a bare name, or a name under
// the domain of a private network.
func (t *nameTable) label(name string) (string, bool) {
	name = strings.ToLower(name)
	if !strings.Contains(name, ".") {
		return name, true
	}
	for _, d := range t.domains {
		if label, ok := strings.CutSuffix(name, "."+d); ok && !strings.Contains(label, ".") {
			return label, true
		}
	}
	return "", false
}

// nameSource is what the name table is built from, besides the leases.
type nameSource struct {
	hosts        map[string]netip.Addr
	reservations []store.Reservation
	subnets      []netip.Prefix
	domains      []string
}

// The Manager answers for the private names, which DNS serves: the static
// names and reservations first, then the leases.
var _ dns.Names = (*Manager)(nil)

// Lookup implements dns.Names.
func (m *Manager) Lookup(label string) (netip.Addr, bool) {
	label = strings.ToLower(label)
	if a, ok := m.names.Load().byName[label]; ok {
		return a, true
	}
	m.lnames.mu.RLock()
	defer m.lnames.mu.RUnlock()
	a, ok := m.lnames.byName[label]
	return a, ok
}

// Reverse implements dns.Names.
func (m *Manager) Reverse(ip netip.Addr) (string, bool) {
	if n, ok := m.names.Load().byIP[ip]; ok {
		return n, true
	}
	m.lnames.mu.RLock()
	defer m.lnames.mu.RUnlock()
	n, ok := m.lnames.byIP[ip]
	return n, ok
}

// Private implements dns.Names.
func (m *Manager) Private(ip netip.Addr) bool {
	for _, p := range m.names.Load().subnets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// resolveTarget resolves a mapping's target name as the names are now.
func (m *Manager) resolveTarget(name string) (netip.Addr, bool) {
	label, ok := m.names.Load().label(name)
	if !ok {
		return netip.Addr{}, false
	}
	return m.Lookup(label)
}

// nameSourceLocked collects the static names and reservations of the
// model.
func (m *Manager) nameSourceLocked() nameSource {
	src := nameSource{hosts: m.settings.Hosts}
	for _, c := range m.conns {
		if c.Role != store.RolePrivate {
			continue
		}
		cfg := dhcpConfig(c)
		for _, r := range cfg.Reservations {
			src.reservations = append(src.reservations, store.Reservation{MAC: r.MAC, IP: r.IP, Name: r.Name})
		}
		src.subnets = append(src.subnets, cfg.Subnet)
		src.domains = append(src.domains, strings.ToLower(cfg.Domain))
	}
	return src
}

// rebuildNamesLocked makes a new table of the static names and
// reservations; m.leaseMu must be held.
func (m *Manager) rebuildNamesLocked() {
	t := &nameTable{byName: map[string]netip.Addr{}, byIP: map[netip.Addr]string{}, subnets: m.nameSrc.subnets, domains: m.nameSrc.domains}
	add := func(name string, a netip.Addr) {
		if name == "" || !a.IsValid() {
			return
		}
		name = strings.ToLower(name)
		if _, taken := t.byName[name]; !taken {
			t.byName[name] = a
		}
		if _, taken := t.byIP[a]; !taken {
			t.byIP[a] = name
		}
	}
	names := make([]string, 0, len(m.nameSrc.hosts))
	for n := range m.nameSrc.hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		add(n, m.nameSrc.hosts[n])
	}
	for _, r := range m.nameSrc.reservations {
		add(r.Name, r.IP)
	}
	m.names.Store(t)
	m.namesChangedLocked()
}

// namesChangedLocked tells the watchers that a name came, went or moved.
func (m *Manager) namesChangedLocked() {
	m.gen.Add(1)
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// nameLeaseLocked gives an active lease its host name in the index, if
// nobody holds the name (a holder whose lease ended gives it up);
// m.leaseMu must be held.
func (m *Manager) nameLeaseLocked(l store.Lease) {
	name := strings.ToLower(l.Hostname)
	if l.Declined || name == "" || l.Expiry <= m.now().Unix() {
		return
	}
	ip := l.IP
	key := l.Key()
	if h, ok := m.lnames.holder[name]; ok && h != key {
		if other, ok := m.leases[h]; ok && other.Expiry > m.now().Unix() {
			return
		}
		m.unnameLeaseLocked(h)
	}
	m.lnames.mu.Lock()
	m.lnames.holder[name] = key
	m.lnames.byName[name] = ip
	m.lnames.byIP[ip] = name
	m.lnames.mu.Unlock()
	m.namesChangedLocked()
}

// unnameLeaseLocked takes the name of the lease with key out of the
// index, if it holds one; m.leaseMu must be held.
func (m *Manager) unnameLeaseLocked(key string) {
	l, ok := m.leases[key]
	if !ok {
		return
	}
	name := strings.ToLower(l.Hostname)
	if name == "" || m.lnames.holder[name] != key {
		return
	}
	m.lnames.mu.Lock()
	ip := m.lnames.byName[name]
	delete(m.lnames.holder, name)
	delete(m.lnames.byName, name)
	if m.lnames.byIP[ip] == name {
		delete(m.lnames.byIP, ip)
	}
	m.lnames.mu.Unlock()
	m.namesChangedLocked()
}

// setNameSourceLocked records what names come from after a change of the
// model, and rebuilds the table.
func (m *Manager) setNameSourceLocked() {
	src := m.nameSourceLocked()
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	m.nameSrc = src
	m.rebuildNamesLocked()
}

// Changed returns a channel that receives when the names change (a lease
// came or went); Refresh then moves name-target mappings.
func (m *Manager) Changed() <-chan struct{} { return m.changed }

// privatePrefix returns the address of a private connection.
func privatePrefix(c *store.Connection) netip.Prefix {
	return cmp.Or(c.PrivateAddress, DefaultPrivateAddress)
}

// dhcpConfig returns the DHCP configuration of c, defaults filled in.
func dhcpConfig(c *store.Connection) dhcp.Config {
	p := privatePrefix(c)
	cfg := dhcp.Config{
		ServerIP:  p.Addr(),
		Subnet:    p.Masked(),
		LeaseTime: DefaultLeaseTime,
		Domain:    DefaultDomain,
		Router:    p.Addr(),
		DNS:       p.Addr(),
	}
	cfg.PoolStart, cfg.PoolEnd = defaultPool(p)
	if d := c.DHCP; d != nil {
		// A pool or reservation left outside the subnet by a change of
		// the private address falls back to the defaults.
		if cfg.Subnet.Contains(d.PoolStart) {
			cfg.PoolStart = d.PoolStart
		}
		if cfg.Subnet.Contains(d.PoolEnd) {
			cfg.PoolEnd = d.PoolEnd
		}
		if cfg.PoolStart.Compare(cfg.PoolEnd) > 0 {
			cfg.PoolStart, cfg.PoolEnd = defaultPool(p)
		}
		if d.LeaseSeconds > 0 {
			cfg.LeaseTime = time.Duration(d.LeaseSeconds) * time.Second
		}
		if d.Domain != "" {
			cfg.Domain = d.Domain
		}
		if cfg.Subnet.Contains(d.Router) {
			cfg.Router = d.Router
		}
		if d.DNSServer.IsValid() {
			cfg.DNS = d.DNSServer
		}
		for _, r := range d.Reservations {
			if cfg.Subnet.Contains(r.IP) {
				cfg.Reservations = append(cfg.Reservations, dhcp.Reservation{MAC: r.MAC, IP: r.IP, Name: r.Name})
			}
		}
	}
	return cfg
}

// defaultPool returns .100 to .254 of a /24, and the like for other sizes:
// from the 100th address (or the second, for small networks) to the one
// before the broadcast address.
func defaultPool(p netip.Prefix) (netip.Addr, netip.Addr) {
	base := p.Masked().Addr()
	last := fw.LastAddr(p).Prev()
	start := base
	for range 100 {
		start = start.Next()
	}
	if start.Compare(last) > 0 {
		start = base.Next().Next()
	}
	return start, last
}

// servicesConfigLocked compiles the model into the services' desired
// state: DHCP and DNS on each present private connection.
func (m *Manager) servicesConfigLocked() *services.Config {
	cfg := &services.Config{Upstreams: m.upstreamsLocked(), PortMapEpoch: m.pmEpoch}
	var ids []string
	for id, c := range m.conns {
		if _, present := m.seen[c.Interface]; c.Role == store.RolePrivate && present {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := m.conns[id]
		cfg.Networks = append(cfg.Networks, services.Network{
			Connection:  c.ID,
			Interface:   c.Interface,
			Address:     privatePrefix(c),
			DHCP:        dhcpConfig(c),
			PortMap:     c.NATTraversal,
			PortMapRate: m.policyLocked().Rate,
		})
	}
	return cfg
}

// upstreamsLocked returns the configured upstreams, or those of the
// namespace's resolv.conf.
func (m *Manager) upstreamsLocked() []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range m.settings.Upstreams {
		if a, err := parseUpstream(s); err == nil {
			out = append(out, a)
		}
	}
	if len(out) == 0 && m.resolvConf != "" {
		out, _ = dns.SystemUpstreams(m.resolvConf)
	}
	return out
}

func parseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, 53), nil
}

// applyServicesLocked brings the services in line with the model; a
// failure is logged and tried again by Refresh.
func (m *Manager) applyServicesLocked(ctx context.Context) {
	cfg := m.servicesConfigLocked()
	if cfg.Equal(m.svcApplied) {
		return
	}
	if err := m.svc.Apply(ctx, cfg); err != nil {
		m.log.Error("starting the DHCP and DNS services; trying again", "err", err)
		return
	}
	m.svcApplied = cfg
}

// resolveNamesLocked moves the firewall's name-target mappings to where
// their names point now. It costs the mappings by name, whatever the
// number of leases.
func (m *Manager) resolveNamesLocked(ctx context.Context) {
	now := map[string]netip.Addr{}
	for _, mp := range m.mappings {
		if mp.TargetName == "" || !mp.Enabled {
			continue
		}
		key := strings.ToLower(mp.TargetName)
		if _, seen := now[key]; !seen {
			a, _ := m.resolveTarget(key)
			now[key] = a
		}
	}
	old := m.fwTargets
	if maps.Equal(old, now) {
		return
	}
	var d delta
	in := func(targets map[string]netip.Addr) func(string) (netip.Addr, bool) {
		return func(name string) (netip.Addr, bool) {
			key := strings.ToLower(name)
			a, ok := targets[key]
			if !ok {
				a, _ = m.resolveTarget(key)
			}
			return a, a.IsValid()
		}
	}
	for _, mp := range m.mappings {
		if mp.TargetName == "" || !mp.Enabled {
			continue
		}
		was, wasOK := m.activeWith(mp, in(old))
		is, isOK := m.activeWith(mp, in(now))
		d.note(was, wasOK, is, isOK)
	}
	if del, add := d.sorted(); len(del)+len(add) > 0 {
		if err := m.fw.UpdateMappings(ctx, del, add); err != nil {
			m.log.Error("moving mappings to their hosts' new addresses; trying again", "err", err)
			return
		}
		m.log.Info("mappings follow their hosts", "removed", len(del), "added", len(add))
	}
	m.view.Lock()
	m.fwTargets = now
	m.view.Unlock()
	m.gen.Add(1)
}

// FollowNames moves the name-target mappings to where their names point
// now: the daemon calls it when names change (Changed).
func (m *Manager) FollowNames(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resolveNamesLocked(ctx)
}
