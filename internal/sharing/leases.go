package sharing

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netshare/netshare/internal/dhcp"
	"github.com/netshare/netshare/internal/services"
	"github.com/netshare/netshare/internal/store"
)

// The Manager keeps the DHCP servers' leases. These methods are called by
// the servers, with their own locks held: they take only leaseMu, never mu,
// and write the store before they return.
var _ services.Leases = (*Manager)(nil)

// keepExpired is how long an expired lease is kept, so that a client that
// comes back gets its old address if nobody took it.
const keepExpired = 7 * 24 * time.Hour

// Leases implements services.Leases.
func (m *Manager) Leases(conn string) ([]dhcp.Lease, map[netip.Addr]time.Time) {
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	var out []dhcp.Lease
	declined := map[netip.Addr]time.Time{}
	for _, l := range m.leases {
		ip := l.IP
		if l.Connection != conn {
			continue
		}
		if l.Declined {
			declined[ip] = time.Unix(l.Expiry, 0)
			continue
		}
		out = append(out, dhcp.Lease{MAC: l.MAC, IP: ip, Hostname: l.Hostname, Expiry: time.Unix(l.Expiry, 0)})
	}
	return out, declined
}

// putLease writes l, then takes it into the names. Leases written at once
// (by several DHCP servers, or one serving many clients) share a commit.
func (m *Manager) putLease(l store.Lease, drop ...string) error {
	var b store.Batch
	for _, k := range drop {
		b.DeleteLease(k)
	}
	b.PutLease(l)
	if err := m.commitLeases(&b); err != nil {
		return err
	}
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	for _, k := range drop {
		m.dropLeaseLocked(k)
	}
	// An address belongs to one client: a lease of it for another one is
	// over (the allocator gave it away after it expired).
	key := l.Key()
	if k, ok := m.leaseByIP[connAddr{l.Connection, l.IP}]; ok && k != key && !l.Declined {
		m.dropLeaseLocked(k)
	}
	if old, ok := m.leases[key]; ok {
		m.unnameLeaseLocked(key)
		if m.leaseByIP[connAddr{old.Connection, old.IP}] == key {
			delete(m.leaseByIP, connAddr{old.Connection, old.IP})
		}
	}
	m.leases[key] = l
	if !l.Declined {
		m.leaseByIP[connAddr{l.Connection, l.IP}] = key
	}
	m.nameLeaseLocked(l)
	m.gen.Add(1)
	return nil
}

// dropLeaseLocked forgets the lease with key, its name and its address;
// m.leaseMu must be held.
func (m *Manager) dropLeaseLocked(key string) {
	l, ok := m.leases[key]
	if !ok {
		return
	}
	m.unnameLeaseLocked(key)
	if m.leaseByIP[connAddr{l.Connection, l.IP}] == key {
		delete(m.leaseByIP, connAddr{l.Connection, l.IP})
	}
	delete(m.leases, key)
}

// Bind implements services.Leases. The host name a client asks for is
// its only if nobody holds it: a static name, a reservation's name, the
// name of another client's lease that has not ended, or a name on the
// deny list (deniedNames, the gateway's own). A client refused its name
// gets its lease without a name, and a log line says why.
func (m *Manager) Bind(conn string, l dhcp.Lease) error {
	name := strings.ToLower(l.Hostname)
	m.leaseMu.Lock()
	why := m.nameRefusedLocked(name, l.MAC)
	if why == "" && name != "" {
		// Held while the lease is written, so that two clients asking
		// for one name at once do not both get it.
		m.writing[name] = l.MAC
	}
	m.leaseMu.Unlock()
	if why != "" {
		if ok, n := m.nameLog.Allow(time.Now()); ok {
			m.log.Warn("DHCP client's host name refused: the lease has no name", "mac", l.MAC, "ip", l.IP, "hostname", name, "why", why, "suppressed", n)
		}
		name = ""
	}
	err := m.putLease(store.Lease{Connection: conn, MAC: l.MAC, IP: l.IP, Hostname: name, Expiry: l.Expiry.Unix()})
	if name != "" {
		m.leaseMu.Lock()
		delete(m.writing, name)
		m.leaseMu.Unlock()
	}
	return err
}

// deniedNames are names no DHCP client may take: hosts look them up to
// find a proxy (wpad), a tunnel router (isatap), themselves, or the
// gateway. A static name set by the administrator may still use them.
var deniedNames = []string{"wpad", "isatap", "localhost", "localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost", "gateway", "router"}

// nameRefusedLocked says why a client (mac) may not take name, or "";
// leaseMu must be held.
func (m *Manager) nameRefusedLocked(name, mac string) string {
	if name == "" {
		return ""
	}
	if slices.Contains(deniedNames, name) || slices.Contains(m.gatewayNames, name) {
		return "a name no client may take"
	}
	if other, ok := m.writing[name]; ok && other != mac {
		return "being taken by " + other
	}
	if _, ok := m.nameSrc.hosts[name]; ok {
		return "a static name"
	}
	for _, r := range m.nameSrc.reservations {
		if strings.EqualFold(r.Name, name) && r.MAC != mac {
			return "the name of a reservation for " + r.MAC
		}
	}
	if h, ok := m.lnames.holder[name]; ok {
		if o := m.leases[h]; o.MAC != mac && o.Expiry > m.now().Unix() {
			return "held by " + o.MAC + " until its lease ends"
		}
	}
	return ""
}

// Release implements services.Leases.
func (m *Manager) Release(conn string, l dhcp.Lease) error {
	return m.Bind(conn, l)
}

// Decline implements services.Leases.
func (m *Manager) Decline(conn string, ip netip.Addr, until time.Time) error {
	var drop []string
	m.leaseMu.Lock()
	for k, l := range m.leases {
		if l.Connection == conn && l.IP == ip && !l.Declined {
			drop = append(drop, k)
		}
	}
	m.leaseMu.Unlock()
	return m.putLease(store.Lease{Connection: conn, IP: ip, Expiry: until.Unix(), Declined: true}, drop...)
}

// expireLeasesLocked drops from the names the leases that ended, and from
// the store the ones that ended long ago; leaseMu must be held. It runs
// every second and looks at every lease once.
func (m *Manager) expireLeasesLocked() {
	now := m.now()
	var gone []string
	for k, l := range m.leases {
		end := time.Unix(l.Expiry, 0)
		if end.After(now) {
			continue
		}
		m.unnameLeaseLocked(k)
		if now.Sub(end) > keepExpired || l.Declined {
			gone = append(gone, k)
		}
	}
	if len(gone) == 0 {
		return
	}
	slices.Sort(gone)
	var b store.Batch
	for _, k := range gone {
		b.DeleteLease(k)
	}
	if err := m.commitLeases(&b); err != nil {
		m.log.Error("dropping old leases", "err", err)
		return
	}
	for _, k := range gone {
		m.dropLeaseLocked(k)
	}
	m.gen.Add(1)
}

// commitLeases writes b to the runtime state. Leases have one writer each
// (the DHCP server of their connection, which holds the client's lock),
// so they are written whatever the revision; writes made at once share a
// commit.
func (m *Manager) commitLeases(b *store.Batch) error {
	recs, err := b.Records()
	if err != nil {
		return err
	}
	_, err = m.runtime.Commit(context.Background(), store.Any, recs)
	return err
}
