// Package sharing is netshare's model: the connections of the namespace,
// their sharing roles and firewall switches, and their port mappings, with
// the rules of Windows' HNetCfg (one public connection, new mappings start
// disabled, DisableSharing disables the connection's mappings, ...).
//
// Manager is the only writer of state. Each change is validated, written to
// the store and applied to the firewall backend as one step: either all of
// it happens or none of it does, and a refused call changes nothing.
package sharing

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/conntrack"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/ratelimit"
	"github.com/netshare/netshare/internal/services"
	"github.com/netshare/netshare/internal/store"
)

// Options configure a Manager. Desired, Runtime, Links and Firewall are
// required.
type Options struct {
	// Desired keeps the connections, mappings and settings; Runtime keeps
	// the DHCP leases.
	Desired  store.Store
	Runtime  store.Store
	Links    link.Backend
	Firewall fw.Backend
	// Services runs DHCP and DNS on the private networks; nil means none.
	// A Runner is made with the Manager as its lease keeper and name
	// table, so it is set after New with SetServices.
	Services services.Backend
	// ResolvConf is the file the default DNS upstreams come from;
	// "" means none.
	ResolvConf string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the model's log lines; nil discards them.
	Logger *slog.Logger
	// GatewayNames are the gateway's own host names, which no DHCP client
	// may take (lower case).
	GatewayNames []string
	// Flows is the kernel's connection tracking, which PCP's PEER asks
	// about; nil answers every PEER request with ErrNoFlow.
	Flows conntrack.Table
}

// connAddr is an address on a connection.
type connAddr struct {
	conn string
	ip   netip.Addr
}

// protoPort is a mapping's key on its connection.
type protoPort struct {
	proto ipproto.Proto
	port  uint16
}

// Manager holds the model. Its methods are safe for concurrent use.
//
// Changes are carried out one at a time, under mu. Reads do not take mu:
// they take view for reading, never call the kernel and never write the
// store; they see the links as the last Refresh observed them. The fields
// under "view" are changed only with both mu and view held, so a writer
// reads them freely and a reader waits only while a change is stored in
// memory, never while it goes to the disk or the kernel.
type Manager struct {
	st      store.Store // the desired state
	runtime store.Store // the leases
	links   link.Backend
	fw      fw.Backend
	flows   conntrack.Table // connection tracking, for PCP's PEER
	log     *slog.Logger

	mu   sync.Mutex   // serialises changes; guards the fields below
	view sync.RWMutex // with mu, guards the fields below for readers

	conns       map[string]*store.Connection
	byIface     map[string]string // interface name -> connection id
	mappings    map[uint64]*store.Mapping
	byConn      map[string]map[protoPort]uint64 // connection id -> key -> mapping id
	order       map[string][]uint64             // connection id -> its mappings' ids, ascending
	byDevice    map[deviceKey]uint64            // a device's mappings by internal host, protocol and port
	expiries    expiryHeap                      // the device mappings, by expiry
	deviceCount map[netip.Addr]int              // how many mappings each host leased
	pmEpoch     time.Time                       // when the devices' mapping state began
	pmAddr      netip.Addr                      // the public address the devices' mappings are on
	pmAddrA     atomic.Pointer[netip.Addr]      // pmAddr, for readers that hold no lock
	lastID      uint64                          // the highest mapping id ever stored
	rev         store.Rev                       // the desired state's revision in memory
	settings    store.Settings
	seen        map[string]link.Link  // the links as last observed, by name
	fwTargets   map[string]netip.Addr // where each target name points in the firewall (invalid: unresolved)

	svc        services.Backend
	svcApplied *services.Config
	resolvConf string
	now        func() time.Time
	changed    chan struct{}
	expiryWake chan struct{} // an earlier expiry appeared

	leaseMu      sync.Mutex        // guards leases, leaseByIP, nameSrc and the writes of lnames; taken after mu
	writing      map[string]string // host names of leases being written, and their MACs; under leaseMu
	gatewayNames []string
	nameLog      *ratelimit.Sampler
	leases       map[string]store.Lease
	leaseByIP    map[connAddr]string // the key of the lease of each address
	lnames       *leaseNames
	nameSrc      nameSource
	names        atomic.Pointer[nameTable]

	gen     atomic.Uint64 // counts the changes a client can see
	opMu    sync.Mutex    // guards ops and leading
	ops     []*mappingOp  // changes of mappings waiting to be carried out
	leading bool          // a caller is carrying out the queue

	// fwErr, under view, is set while the firewall may not hold the state
	// in memory (a change it refused); Refresh replaces it whole until it
	// does. unapplied are the mappings changed since, which show fwErr.
	fwErr     error
	unapplied map[uint64]bool

	public atomic.Pointer[[]netip.Addr] // the public addresses, as applied
	pubIf  atomic.Pointer[string]       // the public connection's interface, as applied
}

// Generation counts the changes of the state that clients show: it grows
// with every committed change, every change of the leases and names, and
// every change seen in the links (status, addresses, new interfaces),
// which the daemon looks at every second. Watchers compare it to know when
// to look again.
func (m *Manager) Generation() uint64 { return m.gen.Load() }

// PublicAddrs returns the public connection's IPv4 addresses, as last
// applied to the firewall, without waiting for a change in progress.
func (m *Manager) PublicAddrs() []netip.Addr {
	if p := m.public.Load(); p != nil {
		return *p
	}
	return nil
}

// PublicInterface returns the public connection's interface, as last
// applied to the firewall ("" when none), without waiting for a change in
// progress.
func (m *Manager) PublicInterface() string {
	if p := m.pubIf.Load(); p != nil {
		return *p
	}
	return ""
}

// New loads the stored state, records the links present, and applies the
// stored state to the firewall backend, so that a restart brings back what
// was there before.
func New(ctx context.Context, o Options) (*Manager, error) {
	if o.Desired == nil || o.Runtime == nil || o.Links == nil || o.Firewall == nil {
		return nil, errors.New("sharing.New: Desired, Runtime, Links and Firewall are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	st, err := store.LoadState(ctx, o.Desired, o.Runtime)
	if err != nil {
		return nil, err
	}
	loaded := time.Now()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Services == nil {
		o.Services = &services.Fake{}
	}
	m := &Manager{
		st:           o.Desired,
		runtime:      o.Runtime,
		rev:          st.Rev,
		links:        o.Links,
		fw:           o.Firewall,
		flows:        o.Flows,
		log:          o.Logger,
		conns:        map[string]*store.Connection{},
		byIface:      map[string]string{},
		mappings:     map[uint64]*store.Mapping{},
		byConn:       map[string]map[protoPort]uint64{},
		byDevice:     map[deviceKey]uint64{},
		order:        map[string][]uint64{},
		deviceCount:  map[netip.Addr]int{},
		expiryWake:   make(chan struct{}, 1),
		svc:          o.Services,
		resolvConf:   o.ResolvConf,
		now:          o.Now,
		changed:      make(chan struct{}, 1),
		nameLog:      ratelimit.NewSampler(1, 5),
		writing:      map[string]string{},
		gatewayNames: o.GatewayNames,
		leases:       map[string]store.Lease{},
		leaseByIP:    map[connAddr]string{},
		lnames:       newLeaseNames(),
	}
	for _, l := range st.Leases {
		m.leases[l.Key()] = l
		if !l.Declined {
			m.leaseByIP[connAddr{l.Connection, l.IP}] = l.Key()
		}
	}
	// The names of the leases, in a fixed order should two hold one
	// (records from before a name had one holder).
	for _, k := range slices.Sorted(maps.Keys(m.leases)) {
		m.nameLeaseLocked(m.leases[k])
	}
	for _, c := range st.Connections {
		m.setConn(c.ID, &c)
	}
	m.mappings = make(map[uint64]*store.Mapping, len(st.Mappings))
	var ended store.Batch // devices' mappings that ended while netshare was away
	for i := range st.Mappings {
		mp := &st.Mappings[i]
		if m.conns[mp.Connection] == nil {
			return nil, fmt.Errorf("stored state: mapping %d belongs to unknown connection %s", mp.ID, mp.Connection)
		}
		if mp.Origin != OriginUser && (mp.Expiry <= o.Now().UnixMilli() || m.conns[mp.Connection].Role != RolePublic) {
			ended.DeleteMapping(mp.ID, mp.Origin)
			continue
		}
		// The loaded records are the Manager's: no copy.
		m.putMapping(mp.ID, mp)
	}
	if ended.Len() > 0 {
		if _, recs, err := ended.Split(); err == nil {
			if _, err := o.Runtime.Commit(ctx, store.Any, recs); err != nil {
				return nil, fmt.Errorf("removing the devices' mappings that ended: %w", err)
			}
		}
		m.log.Info("devices' mappings ended while netshare was stopped", "count", ended.Len())
	}
	m.lastID = max(m.lastID, st.LastMappingID)
	m.pmAddr = st.PortMapAddr
	addr := st.PortMapAddr // a copy: pmAddr changes, what readers hold does not
	m.pmAddrA.Store(&addr)
	if st.PortMapEpoch != 0 {
		m.pmEpoch = time.Unix(st.PortMapEpoch, 0)
	} else {
		m.pmEpoch = time.Unix(o.Now().Unix(), 0) // as stored: in seconds
		var b store.Batch
		b.SetPortMapEpoch(m.pmEpoch)
		if _, recs, err := b.Split(); err == nil {
			if _, err := o.Runtime.Commit(ctx, store.Any, recs); err != nil {
				return nil, fmt.Errorf("recording the epoch of the devices' mappings: %w", err)
			}
		}
	}
	m.settings = st.Settings
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.observeLocked(ctx); err != nil {
		return nil, err
	}
	if err := m.reconcileLocked(ctx); err != nil {
		return nil, err
	}
	m.setNameSourceLocked()
	m.fwTargets = map[string]netip.Addr{}
	cfg := m.fwConfigLocked()
	compiled := time.Now()
	if err := m.replaceLocked(ctx, cfg); err != nil {
		return nil, fmt.Errorf("applying the stored state to the firewall: %w", err)
	}
	m.log.Info("state loaded", "load", loaded.Sub(start).Round(time.Millisecond), "model", compiled.Sub(loaded).Round(time.Millisecond),
		"firewall", time.Since(compiled).Round(time.Millisecond), "connections", len(m.conns), "mappings", len(m.mappings),
		"public", cfg.Public, "private", cfg.Private, "activeMappings", len(cfg.Mappings), "leases", len(m.leases))
	m.applyServicesLocked(ctx)
	return m, nil
}

// SetServices sets the DHCP and DNS runner and starts what the state asks
// for.
func (m *Manager) SetServices(ctx context.Context, s services.Backend) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.svc = s
	m.svcApplied = nil
	m.applyServicesLocked(ctx)
}

// reconcileLocked puts back what the stored state asks of the namespace
// and a restart or a reboot may have lost: IPv4 forwarding while sharing,
// and the private addresses of present private connections.
func (m *Manager) reconcileLocked(ctx context.Context) error {
	ch := &change{}
	shared := false
	for _, c := range m.conns {
		if c.Role == store.RoleNone {
			continue
		}
		shared = true
		if c.Role != store.RolePrivate {
			continue
		}
		if c.PrivateAddress.IsValid() {
			rec := *c
			m.addressLocked(ch, &rec, c.PrivateAddress)
		}
	}
	if shared {
		on, err := m.links.IPv4Forwarding(ctx)
		if err != nil {
			return fmt.Errorf("reading IPv4 forwarding: %w", err)
		}
		if !on {
			was := false
			if m.settings.ForwardingSaved {
				was = m.settings.ForwardingWas
			}
			st := m.cloneSettingsLocked()
			st.ForwardingSaved, st.ForwardingWas = true, was
			ch.settings = &st
			ch.setForwarding(true)
		}
	}
	m.pruneLinksLocked(ctx, &ch.links)
	if ch.links.Empty() {
		return nil
	}
	m.log.Info("restoring the namespace's sharing state", "links", len(ch.links.IPv4), "forwarding", ch.links.IPv4Forwarding != nil)
	if err := m.commitLocked(ctx, ch); err != nil {
		return fmt.Errorf("restoring the namespace's sharing state: %w", err)
	}
	return nil
}

// setConn sets or (for nil) deletes a connection record in memory.
func (m *Manager) setConn(id string, c *store.Connection) {
	m.view.Lock()
	defer m.view.Unlock()
	if old := m.conns[id]; old != nil {
		delete(m.byIface, old.Interface)
	}
	if c == nil {
		delete(m.conns, id)
		return
	}
	c = new(*c)
	m.conns[id] = c
	m.byIface[c.Interface] = id
}

// setMapping sets or (for nil) deletes a mapping record in memory, keeping
// the per-connection key index.
func (m *Manager) setMapping(id uint64, mp *store.Mapping) {
	m.view.Lock()
	defer m.view.Unlock()
	if old := m.mappings[id]; old != nil {
		delete(m.byConn[old.Connection], protoPort{old.Protocol, old.ExternalPort})
		if mp == nil || mp.Connection != old.Connection {
			ids := m.order[old.Connection]
			if i, found := slices.BinarySearch(ids, id); found {
				m.order[old.Connection] = slices.Delete(ids, i, i+1)
			}
		}
		if old.Origin != OriginUser {
			delete(m.byDevice, deviceKeyOf(old))
			if m.deviceCount[old.TargetIP]--; m.deviceCount[old.TargetIP] <= 0 {
				delete(m.deviceCount, old.TargetIP)
			}
			if mp == nil {
				m.expiries.remove(id)
			}
		}
	}
	if mp == nil {
		delete(m.mappings, id)
		return
	}
	m.putMapping(id, new(*mp))
}

// putMapping records mp, which the Manager owns from now on; the caller
// holds the locks setMapping takes, or is New.
func (m *Manager) putMapping(id uint64, mp *store.Mapping) {
	m.mappings[id] = mp
	keys := m.byConn[mp.Connection]
	if keys == nil {
		keys = map[protoPort]uint64{}
		m.byConn[mp.Connection] = keys
	}
	keys[protoPort{mp.Protocol, mp.ExternalPort}] = id
	m.lastID = max(m.lastID, id)
	// Ids come in ascending order at a restore and for new mappings: an
	// append, almost always.
	ids := m.order[mp.Connection]
	if n := len(ids); n == 0 || ids[n-1] < id {
		m.order[mp.Connection] = append(ids, id)
	} else if i, found := slices.BinarySearch(ids, id); !found {
		m.order[mp.Connection] = slices.Insert(ids, i, id)
	}
	if mp.Origin != OriginUser {
		m.byDevice[deviceKeyOf(mp)] = id
		m.deviceCount[mp.TargetIP]++
		if m.expiries.set(id, mp.Expiry) {
			select {
			case m.expiryWake <- struct{}{}:
			default:
			}
		}
	}
}

// observeLocked lists the links of the namespace, gives each new one a
// connection record with a fresh id, and returns the links by name.
func (m *Manager) observeLocked(ctx context.Context) (map[string]link.Link, error) {
	ls, err := m.links.List(ctx)
	if err != nil {
		return nil, hresult.New(hresult.Fail, "listing network interfaces: %w", err)
	}
	links := make(map[string]link.Link, len(ls))
	defer func() {
		if !maps.EqualFunc(m.seen, links, sameLink) {
			m.gen.Add(1)
		}
		m.view.Lock()
		m.seen = links
		m.view.Unlock()
	}()
	var fresh []store.Connection
	for _, l := range ls {
		if isLoopback(l) {
			continue
		}
		links[l.Name] = l
		if _, ok := m.byIface[l.Name]; !ok {
			fresh = append(fresh, store.Connection{ID: newGUID(), Interface: l.Name})
		}
	}
	if len(fresh) > 0 {
		var b store.Batch
		for _, c := range fresh {
			b.PutConnection(c)
		}
		if err := m.commitRecordsLocked(ctx, &b); err != nil {
			return nil, hresult.New(hresult.Fail, "recording new connections: %w", err)
		}
		for _, c := range fresh {
			m.setConn(c.ID, &c)
			m.log.Info("new connection", "id", c.ID, "interface", c.Interface)
		}
	}
	return links, nil
}

// sameLink reports whether two observations of a link look the same to
// a client.
func sameLink(a, b link.Link) bool {
	return slices.Equal(a.Addrs, b.Addrs) && a.Name == b.Name && a.Index == b.Index && a.Kind == b.Kind &&
		a.Driver == b.Driver && a.Alias == b.Alias && a.Up == b.Up && a.Carrier == b.Carrier && a.Wireless == b.Wireless
}

func isLoopback(l link.Link) bool { return l.Kind == "loopback" || l.Name == "lo" }

// newGUID returns a random (version 4) GUID in its lower-case string form.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// replaceLocked replaces the firewall state with cfg.
func (m *Manager) replaceLocked(ctx context.Context, cfg *fw.Config) error {
	if err := m.fw.Replace(ctx, cfg); err != nil {
		return err
	}
	if m.fwErr != nil {
		m.log.Info("the firewall holds the stored state again")
		m.view.Lock()
		m.fwErr, m.unapplied = nil, nil
		m.view.Unlock()
	}
	m.public.Store(&cfg.PublicAddrs)
	m.pubIf.Store(&cfg.Public)
	m.gen.Add(1)
	return nil
}

// Refresh observes the links and, when the public connection's addresses
// changed since the firewall state was last replaced, replaces it again
// (hairpin traffic is matched by those addresses). The daemon calls it
// every second.
//
// It also starts DHCP and DNS where they should run and do not, drops
// expired leases from the names, and moves mappings whose target is a name
// to the host's address. When the public address the devices' mappings are
// on moves, they end (see publicAddressMoved).
func (m *Manager) Refresh(ctx context.Context) error {
	m.mu.Lock()
	err := m.refreshAddrsLocked(ctx)
	m.applyServicesLocked(ctx)
	m.leaseMu.Lock()
	m.expireLeasesLocked()
	m.leaseMu.Unlock()
	m.resolveNamesLocked(ctx)
	moved := m.notePublicAddrLocked(ctx)
	m.mu.Unlock()
	if moved {
		return errors.Join(err, m.publicAddressMoved(ctx))
	}
	return err
}

func (m *Manager) refreshAddrsLocked(ctx context.Context) error {
	if _, err := m.observeLocked(ctx); err != nil {
		return err
	}
	// This runs every second: look at the public addresses alone, and
	// compile the whole state (every mapping) only when they changed, or
	// when the firewall refused a change.
	if slices.Equal(m.publicAddrsLocked(), m.PublicAddrs()) && m.fwErr == nil {
		return nil
	}
	cfg := m.fwConfigLocked()
	if m.fwErr != nil {
		m.log.Info("applying the stored state to the firewall again", "after", m.fwErr)
	} else {
		m.log.Info("the public connection's addresses changed", "public", cfg.Public, "addresses", cfg.PublicAddrs)
	}
	return m.replaceLocked(ctx, cfg)
}

// fwConfigLocked compiles the model into the firewall's desired state.
func (m *Manager) fwConfigLocked() *fw.Config {
	cfg := &fw.Config{}
	for _, c := range m.conns {
		switch c.Role {
		case store.RolePublic:
			cfg.Public = c.Interface
		case store.RolePrivate:
			cfg.Private = append(cfg.Private, c.Interface)
		}
		if c.Firewall {
			cfg.Firewalled = append(cfg.Firewalled, c.Interface)
			if c.AllowPing {
				cfg.Ping = append(cfg.Ping, c.Interface)
			}
		}
	}
	cfg.PublicAddrs = m.publicAddrsLocked()
	cfg.Mappings = make([]fw.Mapping, 0, len(m.mappings))
	for _, mp := range m.mappings {
		if fm, ok := m.activeLocked(mp); ok {
			cfg.Mappings = append(cfg.Mappings, fm)
		}
	}
	cfg.Sort()
	return cfg
}

// publicAddrsLocked returns the public connection's IPv4 addresses, sorted.
func (m *Manager) publicAddrsLocked() []netip.Addr {
	var out []netip.Addr
	for _, c := range m.conns {
		if c.Role == store.RolePublic {
			for _, p := range m.ipv4Locked(c.Interface) {
				out = append(out, p.Addr())
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// fwTargetLocked returns the address a target name has in the firewall:
// as the last follow of the names left it, or, for a name the firewall
// has not followed yet, as it resolves now (recorded, so that the model
// and the firewall agree until the next follow).
func (m *Manager) fwTargetLocked(name string) (netip.Addr, bool) {
	key := strings.ToLower(name)
	a, ok := m.fwTargets[key]
	if !ok {
		a, _ = m.resolveTarget(key)
		m.view.Lock()
		m.fwTargets[key] = a
		m.view.Unlock()
	}
	return a, a.IsValid()
}

// activeLocked returns the firewall's view of mp, if mp is enabled and its
// target is an address. A target by name takes effect once the DHCP and DNS
// part of netshare resolves names.
func (m *Manager) activeLocked(mp *store.Mapping) (fw.Mapping, bool) {
	return m.activeWith(mp, m.fwTargetLocked)
}

// activeWith is activeLocked with the addresses of target names given by
// target.
func (m *Manager) activeWith(mp *store.Mapping, target func(name string) (netip.Addr, bool)) (fw.Mapping, bool) {
	if mp == nil || !mp.Enabled {
		return fw.Mapping{}, false
	}
	c := m.conns[mp.Connection]
	if c == nil {
		return fw.Mapping{}, false
	}
	var ip netip.Addr
	var ok bool
	if mp.TargetName != "" {
		ip, ok = target(mp.TargetName)
	} else {
		ip, ok = targetIP(mp)
	}
	if !ok {
		return fw.Mapping{}, false
	}
	return fw.Mapping{
		Key:          fw.Key{Interface: c.Interface, Protocol: ipproto.Proto(mp.Protocol), ExternalPort: mp.ExternalPort},
		Target:       ip,
		InternalPort: mp.InternalPort,
		Peers:        mp.Peers,
	}, true
}

// change is a set of records that one call writes. A nil mapping in
// mappings deletes it.
type change struct {
	conns    []store.Connection
	mappings map[uint64]*store.Mapping
	// settings, if set, replaces the stored settings.
	settings *store.Settings
	// links is what the change sets on the links (addresses, aliases,
	// forwarding), after the firewall, before the store.
	links link.Config
	// steps are other changes outside the store, run after the links;
	// an error undoes the steps done and rolls the whole change back.
	steps []step
}

func (ch *change) setIPv4(iface string, ps []netip.Prefix) {
	if ch.links.IPv4 == nil {
		ch.links.IPv4 = map[string][]netip.Prefix{}
	}
	ch.links.IPv4[iface] = ps
}

func (ch *change) setAlias(iface, alias string) {
	if ch.links.Aliases == nil {
		ch.links.Aliases = map[string]string{}
	}
	ch.links.Aliases[iface] = alias
}

func (ch *change) setForwarding(on bool) { ch.links.IPv4Forwarding = &on }

// pruneLinksLocked drops from c what the links have already, as last
// observed.
func (m *Manager) pruneLinksLocked(ctx context.Context, c *link.Config) {
	for iface, want := range c.IPv4 {
		have := m.ipv4Locked(iface)
		if add, del := link.Plan(have, want); len(add)+len(del) == 0 {
			delete(c.IPv4, iface)
		}
	}
	for iface, alias := range c.Aliases {
		if l, ok := m.seen[iface]; ok && l.Alias == alias {
			delete(c.Aliases, iface)
		}
	}
	if on := c.IPv4Forwarding; on != nil {
		if now, err := m.links.IPv4Forwarding(ctx); err == nil && now == *on {
			c.IPv4Forwarding = nil
		}
	}
}

// linkStepLocked returns the step that sets want on the links, and whose
// undo puts back what the links had, as last observed.
func (m *Manager) linkStepLocked(ctx context.Context, want *link.Config) step {
	before := &link.Config{}
	for iface := range want.IPv4 {
		if before.IPv4 == nil {
			before.IPv4 = map[string][]netip.Prefix{}
		}
		before.IPv4[iface] = m.ipv4Locked(iface)
	}
	for iface := range want.Aliases {
		if before.Aliases == nil {
			before.Aliases = map[string]string{}
		}
		before.Aliases[iface] = m.seen[iface].Alias
	}
	if want.IPv4Forwarding != nil {
		if on, err := m.links.IPv4Forwarding(ctx); err == nil {
			before.IPv4Forwarding = &on
		}
	}
	return step{
		do: func(ctx context.Context) error {
			if _, err := m.links.Set(ctx, want); err != nil {
				return hresult.New(hresult.Fail, "changing the links: %w", err)
			}
			return nil
		},
		undo: func(ctx context.Context) error {
			_, err := m.links.Set(ctx, before)
			return err
		},
		partial: true,
	}
}

// step is a change to the system outside the store, with its undo.
type step struct {
	do, undo func(ctx context.Context) error
	// partial marks a step that may have done part of its work when it
	// fails, and whose undo is safe whatever it did (a declarative Set):
	// it is undone even when it fails.
	partial bool
}

func (ch *change) putMapping(mp store.Mapping) {
	if ch.mappings == nil {
		ch.mappings = map[uint64]*store.Mapping{}
	}
	ch.mappings[mp.ID] = &mp
}

func (ch *change) deleteMapping(id uint64) {
	if ch.mappings == nil {
		ch.mappings = map[uint64]*store.Mapping{}
	}
	ch.mappings[id] = nil
}

// mappingDeltaLocked returns what a change to mappings alone does to the
// active mappings, against the memory before the change.
func (m *Manager) mappingDeltaLocked(ch *change) (del, add []fw.Mapping) {
	var d delta
	for id, mp := range ch.mappings {
		was, wasOK := fw.Mapping{}, false
		if old := m.mappings[id]; old != nil {
			was, wasOK = m.activeLocked(old)
		}
		now, nowOK := fw.Mapping{}, false
		if mp != nil {
			now, nowOK = m.activeLocked(mp)
		}
		d.note(was, wasOK, now, nowOK)
	}
	return d.sorted()
}

// delta collects the changes of active mappings for the firewall.
type delta struct {
	del, add []fw.Mapping
}

// note records that a mapping went from was (if wasOK) to now (if nowOK).
func (d *delta) note(was fw.Mapping, wasOK bool, now fw.Mapping, nowOK bool) {
	if wasOK && nowOK && was == now {
		return
	}
	if wasOK {
		d.del = append(d.del, was)
	}
	if nowOK {
		d.add = append(d.add, now)
	}
}

func (d *delta) sorted() (del, add []fw.Mapping) {
	fw.SortMappings(d.del)
	fw.SortMappings(d.add)
	return d.del, d.add
}

// commitLocked makes ch happen everywhere or nowhere: in memory, in the
// store (synced to disk), in the firewall backend and in ch's steps. A
// change to a connection replaces the firewall state; a change to mappings
// alone is sent as a delta of the active mappings.
func (m *Manager) commitLocked(ctx context.Context, ch *change) error {
	oldConns := map[string]*store.Connection{}
	for _, c := range ch.conns {
		if _, seen := oldConns[c.ID]; !seen {
			oldConns[c.ID] = m.conns[c.ID]
		}
	}
	oldMappings := map[uint64]*store.Mapping{}
	for id := range ch.mappings {
		oldMappings[id] = m.mappings[id]
	}
	var fwStep step
	if len(ch.conns) > 0 || m.fwErr != nil {
		oldCfg := m.fwConfigLocked()
		fwStep = step{
			do: func(ctx context.Context) error {
				if err := m.replaceLocked(ctx, m.fwConfigLocked()); err != nil {
					return hresult.New(hresult.Fail, "applying the firewall state: %w", err)
				}
				return nil
			},
			undo: func(ctx context.Context) error { return m.replaceLocked(ctx, oldCfg) },
		}
	} else if del, add := m.mappingDeltaLocked(ch); len(del)+len(add) > 0 {
		fwStep = step{
			do: func(ctx context.Context) error {
				if err := m.fw.UpdateMappings(ctx, del, add); err != nil {
					return hresult.New(hresult.Fail, "applying port mappings: %w", err)
				}
				return nil
			},
			undo: func(ctx context.Context) error { return m.fw.UpdateMappings(ctx, add, del) },
		}
	}
	var steps []step
	if fwStep.do != nil {
		steps = append(steps, fwStep)
	}
	linksAt := len(steps) // the index of the links' step, if any
	m.pruneLinksLocked(ctx, &ch.links)
	if !ch.links.Empty() {
		steps = append(steps, m.linkStepLocked(ctx, &ch.links))
	} else {
		linksAt = -1
	}
	steps = append(steps, ch.steps...)
	oldSettings, oldLastID := m.settings, m.lastID
	for _, c := range ch.conns {
		m.setConn(c.ID, &c)
	}
	for id, mp := range ch.mappings {
		m.setMapping(id, mp)
	}
	if ch.settings != nil {
		m.view.Lock()
		m.settings = *ch.settings
		m.view.Unlock()
	}
	var done []step
	defer func() {
		if linksAt >= 0 && len(done) > linksAt {
			// The steps may have changed the public connection's
			// addresses, which the hairpin map follows.
			if err := m.refreshAddrsLocked(ctx); err != nil {
				m.log.Error("following the links", "err", err)
			}
		}
	}()
	// The kernel first, then the store: no kernel call happens while a
	// store write is open, and a change the kernel refused is never
	// written.
	var err error
	for _, s := range steps {
		if err = s.do(ctx); err != nil {
			if s.partial {
				done = append(done, s)
			}
			break
		}
		done = append(done, s)
	}
	if err == nil {
		var b store.Batch
		for _, c := range ch.conns {
			b.PutConnection(c)
		}
		for _, id := range slices.Sorted(maps.Keys(ch.mappings)) {
			if mp := ch.mappings[id]; mp == nil {
				b.DeleteMapping(id, oldMappings[id].Origin)
			} else {
				b.PutMapping(*mp)
			}
		}
		if m.lastID > oldLastID {
			b.SetLastMappingID(m.lastID)
		}
		if ch.settings != nil {
			b.PutSettings(*ch.settings)
		}
		err = m.commitRecordsLocked(ctx, &b)
	}
	if err == nil {
		if len(ch.conns) > 0 || ch.settings != nil {
			m.setNameSourceLocked()
			m.applyServicesLocked(ctx)
		}
		m.gen.Add(1)
		return nil
	}
	for id, c := range oldConns {
		m.setConn(id, c)
	}
	for id, mp := range oldMappings {
		m.setMapping(id, mp)
	}
	m.view.Lock()
	m.lastID = oldLastID
	m.settings = oldSettings
	m.view.Unlock()
	undoFailed := false
	for i := len(done) - 1; i >= 0; i-- {
		if uerr := done[i].undo(ctx); uerr != nil {
			m.log.Error("undoing a change failed", "err", uerr)
			undoFailed = true
		}
	}
	if undoFailed && fwStep.do != nil {
		// Make sure the firewall holds the state that stands.
		if rerr := m.replaceLocked(ctx, m.fwConfigLocked()); rerr != nil {
			m.log.Error("firewall resynchronisation failed", "err", rerr)
		}
	}
	return hresult.From(err)
}

// commitRecordsLocked writes b to the desired state, on the revision in
// memory, and moves that revision on.
func (m *Manager) commitRecordsLocked(ctx context.Context, b *store.Batch) error {
	desired, runtime, err := b.Split()
	if err != nil {
		return hresult.New(hresult.Fail, "writing the state: %w", err)
	}
	// Devices' mappings first: that commit fails only with the disk. Should
	// the desired state's then fail, the runtime store keeps a device's
	// mapping the memory dropped; it ends at its expiry after a restart.
	if len(runtime) > 0 {
		if _, err := m.runtime.Commit(ctx, store.Any, runtime); err != nil {
			return hresult.New(hresult.Fail, "writing the devices' mappings: %w", err)
		}
	}
	if len(desired) == 0 {
		return nil
	}
	rev, err := m.st.Commit(ctx, m.rev, desired)
	if err != nil {
		return hresult.New(hresult.Fail, "writing the state: %w", err)
	}
	m.view.Lock()
	m.rev = rev
	m.view.Unlock()
	return nil
}

// conn is a connection record with its link, if present.
type conn struct {
	rec  *store.Connection
	link *link.Link
}

// lookupLocked observes the links (recording new ones) and finds a
// connection by id, interface name or friendly name: for changes.
func (m *Manager) lookupLocked(ctx context.Context, ref string) (conn, error) {
	if _, err := m.observeLocked(ctx); err != nil {
		return conn{}, err
	}
	return m.findLocked(ref)
}

// findLocked finds a connection by id, interface name or friendly name,
// among the links as last observed; mu or view is held.
func (m *Manager) findLocked(ref string) (conn, error) {
	links := m.seen
	find := func(match func(c *store.Connection) bool) (conn, bool) {
		for _, c := range m.conns {
			l, present := links[c.Interface]
			if !present && !m.configuredLocked(c) {
				continue
			}
			if match(c) {
				cn := conn{rec: c}
				if present {
					cn.link = &l
				}
				return cn, true
			}
		}
		return conn{}, false
	}
	id := strings.ToLower(strings.Trim(ref, "{}"))
	if c, ok := find(func(c *store.Connection) bool { return c.ID == id }); ok {
		return c, nil
	}
	if c, ok := find(func(c *store.Connection) bool { return c.Interface == ref }); ok {
		return c, nil
	}
	if c, ok := find(func(c *store.Connection) bool { return c.Name == ref }); ok {
		return c, nil
	}
	return conn{}, hresult.Missing("connection %q: no such connection (give an interface name, a connection name or an id, as 'netshare connection list' shows them)", ref)
}

// configuredLocked reports whether a connection carries configuration of its
// own. Such a connection stays listed while its interface is absent.
func (m *Manager) configuredLocked(c *store.Connection) bool {
	return c.Role != store.RoleNone || c.Firewall || c.Name != "" || len(m.byConn[c.ID]) > 0
}

// listLocked returns every listed connection, sorted by interface name,
// with the links as last observed; mu or view is held.
func (m *Manager) listLocked() []conn {
	links := m.seen
	var out []conn
	for _, c := range m.conns {
		l, present := links[c.Interface]
		switch {
		case present:
			out = append(out, conn{rec: c, link: &l})
		case m.configuredLocked(c):
			out = append(out, conn{rec: c})
		}
	}
	slices.SortFunc(out, func(a, b conn) int { return strings.Compare(a.rec.Interface, b.rec.Interface) })
	return out
}

// label names a connection in messages.
func label(c *store.Connection) string {
	if c.Name != "" && c.Name != c.Interface {
		return fmt.Sprintf("%q (%s)", c.Name, c.Interface)
	}
	return fmt.Sprintf("%q", c.Interface)
}

// targetIP returns the address of a mapping whose target is an address.
func targetIP(mp *store.Mapping) (netip.Addr, bool) {
	return mp.TargetIP, mp.TargetIP.IsValid()
}
