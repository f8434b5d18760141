package sharing

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/dhcp"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/store"
)

// dhcpSettingsLocked describes the DHCP configuration of c.
func (m *Manager) dhcpSettingsLocked(c *store.Connection) DHCPSettings {
	cfg := dhcpConfig(c)
	_, present := m.seen[c.Interface]
	s := DHCPSettings{
		Connection:   c.ID,
		Active:       c.Role == store.RolePrivate && present,
		Subnet:       cfg.Subnet,
		PoolStart:    cfg.PoolStart,
		PoolEnd:      cfg.PoolEnd,
		LeaseTime:    cfg.LeaseTime,
		Domain:       cfg.Domain,
		Router:       cfg.Router,
		DNSServer:    cfg.DNS,
		Reservations: []Reservation{},
	}
	for _, r := range cfg.Reservations {
		s.Reservations = append(s.Reservations, Reservation{MAC: r.MAC, IP: r.IP, Name: r.Name})
	}
	return s
}

// DHCPSettings returns the DHCP configuration of a connection. It applies
// while the connection is shared as private.
func (m *Manager) DHCPSettings(ctx context.Context, ref string) (DHCPSettings, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	c, err := m.findLocked(ref)
	if err != nil {
		return DHCPSettings{}, err
	}
	return m.dhcpSettingsLocked(c.rec), nil
}

// hostAddr checks that a is an address of the private network p that can
// be given to a host.
func hostAddr(field string, a netip.Addr, p netip.Prefix) (netip.Addr, error) {
	if !a.Is4() {
		return a, hresult.Invalid(field, "%q is not an IPv4 address", a.String())
	}
	switch {
	case !p.Contains(a):
		return a, hresult.Invalid(field, "%s is outside the private network %s", a, p.Masked())
	case a == p.Masked().Addr():
		return a, hresult.Invalid(field, "%s is the network address of %s", a, p.Masked())
	case a == fw.LastAddr(p):
		return a, hresult.Invalid(field, "%s is the broadcast address of %s", a, p.Masked())
	case a == p.Addr():
		return a, hresult.Invalid(field, "%s is the gateway's own address", a)
	}
	return a, nil
}

// changeDHCP validates a new DHCP configuration for c and commits it.
func (m *Manager) changeDHCP(ctx context.Context, c *store.Connection, d *store.DHCP) (DHCPSettings, error) {
	d, err := checkDHCP(privatePrefix(c), d)
	if err != nil {
		return DHCPSettings{}, err
	}
	rec := *c
	rec.DHCP = d
	if err := m.commitLocked(ctx, &change{conns: []store.Connection{rec}}); err != nil {
		return DHCPSettings{}, err
	}
	m.log.Info("DHCP settings changed", "connection", rec.ID, "interface", rec.Interface)
	return m.dhcpSettingsLocked(m.conns[rec.ID]), nil
}

// checkDHCP validates a DHCP configuration for the private network p and
// returns it normalised: nil when every field takes its default.
func checkDHCP(p netip.Prefix, d *store.DHCP) (*store.DHCP, error) {
	var start, end netip.Addr
	var err error
	if d.PoolStart.IsValid() {
		if start, err = hostAddr("poolStart", d.PoolStart, p); err != nil {
			return nil, err
		}
	}
	if d.PoolEnd.IsValid() {
		if end, err = hostAddr("poolEnd", d.PoolEnd, p); err != nil {
			return nil, err
		}
	}
	ds, de := defaultPool(p)
	if !start.IsValid() {
		start = ds
	}
	if !end.IsValid() {
		end = de
	}
	if start.Compare(end) > 0 {
		return nil, hresult.Invalid("poolEnd", "the pool %s-%s is empty: its end comes before its start", start, end)
	}
	if a := d.Router; a.IsValid() {
		if !a.Is4() || !p.Contains(a) || a == p.Masked().Addr() || a == fw.LastAddr(p) {
			return nil, hresult.Invalid("router", "%q is not a host address of the private network %s", a.String(), p.Masked())
		}
	}
	if d.DNSServer.IsValid() {
		if err := checkTargetIP("dnsServer", d.DNSServer); err != nil {
			return nil, err
		}
	}
	if d.LeaseSeconds != 0 {
		if err := checkLeaseTime(time.Duration(d.LeaseSeconds) * time.Second); err != nil {
			return nil, err
		}
	}
	d = cloneDHCP(d)
	if d.Domain != "" {
		if err := checkDomain(d.Domain); err != nil {
			return nil, err
		}
		d.Domain = strings.ToLower(strings.TrimSuffix(d.Domain, "."))
	}
	seenIP, seenName, seenMAC := map[netip.Addr]string{}, map[string]string{}, map[string]bool{}
	for i, r := range d.Reservations {
		mac, err := dhcp.NormalizeMAC(r.MAC)
		if err != nil {
			return nil, hresult.Invalid("mac", "%v", err)
		}
		if seenMAC[mac] {
			return nil, hresult.Clash("mac", "%s has two reservations", mac)
		}
		seenMAC[mac] = true
		ip, err := hostAddr("ip", r.IP, p)
		if err != nil {
			return nil, err
		}
		if r.Name != "" {
			if err := checkHostName(r.Name); err != nil || strings.Contains(r.Name, ".") {
				return nil, hresult.Invalid("name", "%q is not a host name (one label of letters, digits and hyphens)", r.Name)
			}
		}
		if other, ok := seenIP[ip]; ok && other != mac {
			return nil, hresult.Clash("ip", "%s is reserved for %s already", ip, other)
		}
		if other, ok := seenName[strings.ToLower(r.Name)]; ok && r.Name != "" && other != mac {
			return nil, hresult.Clash("name", "%q is the name of the reservation of %s already", r.Name, other)
		}
		seenIP[ip], seenName[strings.ToLower(r.Name)] = mac, mac
		d.Reservations[i] = store.Reservation{MAC: mac, IP: ip, Name: strings.ToLower(r.Name)}
	}
	if !d.PoolStart.IsValid() && !d.PoolEnd.IsValid() && d.LeaseSeconds == 0 && d.Domain == "" && !d.Router.IsValid() && !d.DNSServer.IsValid() && len(d.Reservations) == 0 {
		return nil, nil
	}
	return d, nil
}

func checkLeaseTime(lt time.Duration) error {
	if lt < minLeaseTime || lt > maxLeaseTime {
		return hresult.Invalid("leaseTime", "%v is out of range; a lease lasts %v to %v", lt, minLeaseTime, maxLeaseTime)
	}
	return nil
}

func checkDomain(s string) error {
	if err := checkHostName(s); err != nil {
		return hresult.Invalid("domain", "%q is not a valid domain name", s)
	}
	return nil
}

func cloneDHCP(d *store.DHCP) *store.DHCP {
	if d == nil {
		return &store.DHCP{}
	}
	c := *d
	c.Reservations = slices.Clone(d.Reservations)
	return &c
}

// SetDHCP changes the DHCP settings of a connection; a zero value puts a
// field back to its default.
func (m *Manager) SetDHCP(ctx context.Context, ref string, e DHCPEdit) (DHCPSettings, error) {
	return m.editDHCP(ctx, ref, func(c *store.Connection, d *store.DHCP) error {
		return applyDHCPEdit(d, e)
	})
}

// editDHCP runs edit on a copy of the DHCP configuration of the connection
// ref names, then validates and commits the result.
func (m *Manager) editDHCP(ctx context.Context, ref string, edit func(*store.Connection, *store.DHCP) error) (DHCPSettings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.lookupLocked(ctx, ref)
	if err != nil {
		return DHCPSettings{}, err
	}
	d := cloneDHCP(c.rec.DHCP)
	if err := edit(c.rec, d); err != nil {
		return DHCPSettings{}, err
	}
	return m.changeDHCP(ctx, c.rec, d)
}

// applyDHCPEdit sets the fields e sets.
func applyDHCPEdit(d *store.DHCP, e DHCPEdit) error {
	if e.PoolStart != nil {
		d.PoolStart = *e.PoolStart
	}
	if e.PoolEnd != nil {
		d.PoolEnd = *e.PoolEnd
	}
	if e.Domain != nil {
		d.Domain = *e.Domain
	}
	if e.Router != nil {
		d.Router = *e.Router
	}
	if e.DNSServer != nil {
		d.DNSServer = *e.DNSServer
	}
	if e.LeaseTime != nil {
		d.LeaseSeconds = 0
		if lt := *e.LeaseTime; lt != 0 {
			if err := checkLeaseTime(lt); err != nil {
				return err
			}
			d.LeaseSeconds = int64(lt / time.Second)
		}
	}
	return nil
}

// Reserve gives a hardware address a fixed address (and a name) on a
// private connection, replacing its reservation if it has one.
func (m *Manager) Reserve(ctx context.Context, ref string, r Reservation) (DHCPSettings, error) {
	mac, err := dhcp.NormalizeMAC(r.MAC)
	if err != nil {
		return DHCPSettings{}, hresult.Invalid("mac", "%v", err)
	}
	if r.Name != "" {
		if err := checkHostName(r.Name); err != nil || strings.Contains(r.Name, ".") {
			return DHCPSettings{}, hresult.Invalid("name", "%q is not a host name (one label of letters, digits and hyphens)", r.Name)
		}
	}
	return m.editDHCP(ctx, ref, func(c *store.Connection, d *store.DHCP) error {
		ip, err := hostAddr("ip", r.IP, privatePrefix(c))
		if err != nil {
			return err
		}
		d.Reservations = slices.DeleteFunc(d.Reservations, func(x store.Reservation) bool { return x.MAC == mac })
		for _, x := range d.Reservations {
			if x.IP == ip {
				return hresult.Clash("ip", "%s is reserved for %s already", ip, x.MAC)
			}
			if r.Name != "" && strings.EqualFold(x.Name, r.Name) {
				return hresult.Clash("name", "%q is the name of the reservation of %s already", r.Name, x.MAC)
			}
		}
		d.Reservations = append(d.Reservations, store.Reservation{MAC: mac, IP: ip, Name: strings.ToLower(r.Name)})
		return nil
	})
}

// Unreserve removes the reservation of a hardware address.
func (m *Manager) Unreserve(ctx context.Context, ref, macText string) (DHCPSettings, error) {
	mac, err := dhcp.NormalizeMAC(macText)
	if err != nil {
		return DHCPSettings{}, hresult.Invalid("mac", "%v", err)
	}
	return m.editDHCP(ctx, ref, func(c *store.Connection, d *store.DHCP) error {
		n := len(d.Reservations)
		d.Reservations = slices.DeleteFunc(d.Reservations, func(x store.Reservation) bool { return x.MAC == mac })
		if len(d.Reservations) == n {
			return hresult.Missing("reservation of %s on connection %s: no such reservation", mac, label(c))
		}
		return nil
	})
}

// LeaseList returns the DHCP leases of every connection, active first,
// then by address.
func (m *Manager) LeaseList(ctx context.Context) ([]LeaseInfo, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	now := m.now()
	out := []LeaseInfo{}
	for _, l := range m.leases {
		if l.Declined {
			continue
		}
		exp := time.Unix(l.Expiry, 0).UTC()
		info := LeaseInfo{Connection: l.Connection, MAC: l.MAC, IP: l.IP, Hostname: l.Hostname, Expiry: exp, Active: exp.After(now)}
		if c := m.conns[l.Connection]; c != nil {
			info.Interface = c.Interface
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b LeaseInfo) int {
		if a.Active != b.Active {
			if a.Active {
				return -1
			}
			return 1
		}
		return a.IP.Compare(b.IP)
	})
	return out, nil
}

// DNSSettings returns the forwarder's configuration.
func (m *Manager) DNSSettings(ctx context.Context) (DNSSettings, error) {
	m.view.RLock()
	defer m.view.RUnlock()
	return m.dnsSettingsLocked(), nil
}

func (m *Manager) dnsSettingsLocked() DNSSettings {
	s := DNSSettings{Upstreams: upstreamsOf(m.settings), Effective: m.upstreamsLocked(), Hosts: []DNSHost{}}
	for _, name := range slices.Sorted(maps.Keys(m.settings.Hosts)) {
		s.Hosts = append(s.Hosts, DNSHost{Name: name, IP: m.settings.Hosts[name]})
	}
	return s
}

// upstreamsOf returns the upstream servers the settings name; the store
// checked each when it loaded them.
func upstreamsOf(st store.Settings) []netip.AddrPort {
	out := []netip.AddrPort{}
	for _, s := range st.Upstreams {
		if ap, err := store.ParseUpstream(s); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

func (m *Manager) changeSettingsLocked(ctx context.Context, st store.Settings) (DNSSettings, error) {
	if err := m.commitLocked(ctx, &change{settings: &st}); err != nil {
		return DNSSettings{}, err
	}
	return m.dnsSettingsLocked(), nil
}

func (m *Manager) cloneSettingsLocked() store.Settings {
	st := m.settings
	st.Upstreams = slices.Clone(st.Upstreams)
	st.Hosts = maps.Clone(m.settings.Hosts)
	if st.Hosts == nil {
		st.Hosts = map[string]netip.Addr{}
	}
	return st
}

// SetDNS sets the upstream servers; none means those of resolv.conf.
func (m *Manager) SetDNS(ctx context.Context, upstreams []netip.AddrPort) (DNSSettings, error) {
	ups, err := checkUpstreams(upstreams)
	if err != nil {
		return DNSSettings{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.cloneSettingsLocked()
	st.Upstreams = ups
	return m.changeSettingsLocked(ctx, st)
}

// AddHost adds or replaces a static name.
func (m *Manager) AddHost(ctx context.Context, h DNSHost) (DNSSettings, error) {
	name, err := checkStaticHost(h)
	if err != nil {
		return DNSSettings{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.cloneSettingsLocked()
	st.Hosts[name] = h.IP
	return m.changeSettingsLocked(ctx, st)
}

// checkUpstreams validates DNS upstream servers and returns them as the
// store keeps them.
func checkUpstreams(us []netip.AddrPort) ([]string, error) {
	var ups []string
	for _, ap := range us {
		if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() || ap.Port() == 0 {
			return nil, hresult.Invalid("upstream", "%q is not a DNS server address such as 192.0.2.53 or [2001:db8::53]:53", ap.String())
		}
		ups = append(ups, ap.String())
	}
	return ups, nil
}

// checkStaticHost validates a static DNS name and returns the name in
// its normal form.
func checkStaticHost(h DNSHost) (string, error) {
	if err := checkHostName(h.Name); err != nil || strings.Contains(strings.TrimSuffix(h.Name, "."), ".") {
		return "", hresult.Invalid("name", "%q is not a host name (one label of letters, digits and hyphens)", h.Name)
	}
	if err := checkTargetIP("ip", h.IP); err != nil {
		return "", err
	}
	return strings.ToLower(strings.TrimSuffix(h.Name, ".")), nil
}

// RemoveHost removes a static name.
func (m *Manager) RemoveHost(ctx context.Context, name string) (DNSSettings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if _, ok := m.settings.Hosts[name]; !ok {
		return DNSSettings{}, hresult.Missing("host %q: no such static name", name)
	}
	st := m.cloneSettingsLocked()
	delete(st.Hosts, name)
	return m.changeSettingsLocked(ctx, st)
}
