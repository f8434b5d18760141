package sharing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/conntrack"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/store"
)

var (
	ctx    = context.Background()
	noAddr = netip.Prefix{}
	addr10 = netip.MustParsePrefix("10.1.0.1/24")
)

// harness is a Manager on a store in a temporary directory, with fake
// links and a fake firewall.
type harness struct {
	flows conntrack.Fake // the kernel's connection tracking
	t     testing.TB
	dir   string
	st    *store.File
	links *link.Fake
	fw    *fw.Fake
	m     *Manager
	// clock, when set, is the Manager's time (tests that need one set it
	// between calls); otherwise the Manager reads the system's.
	clock time.Time
}

func testLinks() *link.Fake {
	return link.NewFake(
		link.Link{Name: "lo", Kind: "loopback", Up: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		link.Link{Name: "wan0", Kind: "device", Driver: "e1000e", Up: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}},
		link.Link{Name: "lan0", Kind: "veth", Up: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.137.1/24")}},
		link.Link{Name: "lan1", Kind: "bridge", Up: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}},
		link.Link{Name: "wg0", Kind: "wireguard", Up: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}},
	)
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), links: testLinks()}
	h.start()
	t.Cleanup(func() { h.st.Close() })
	return h
}

// start opens the store and a Manager on a fresh fake firewall, as after a
// reboot.
func (h *harness) start() {
	h.t.Helper()
	st, err := store.Open(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	h.fw = fw.NewFake()
	now := func() time.Time {
		if h.clock.IsZero() {
			return time.Now()
		}
		return h.clock
	}
	m, err := New(ctx, Options{Desired: st.Desired, Runtime: st.Runtime, Links: h.links, Firewall: h.fw, Now: now, Flows: &h.flows})
	if err != nil {
		h.t.Fatal(err)
	}
	h.m = m
	h.check()
}

// restart closes the store and starts again.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.start()
}

// check verifies that memory, the store and the firewall agree: the
// firewall holds what the stored state compiles to.
func (h *harness) check() {
	h.t.Helper()
	h.m.mu.Lock()
	want := h.m.fwConfigLocked()
	mem := h.m.dumpLocked()
	h.m.mu.Unlock()
	if got := h.fw.Config(); !got.Equal(want) {
		h.t.Fatalf("firewall holds\n%+v\nwant\n%+v", got, want)
	}
	if got := h.stored(); got != mem {
		h.t.Fatalf("store holds\n%s\nmemory holds\n%s", got, mem)
	}
}

// dumpLocked renders the records in memory.
func (m *Manager) dumpLocked() string {
	st := &store.State{Rev: m.rev, LastMappingID: m.lastID, Settings: m.settings, PortMapEpoch: m.pmEpoch.Unix(), PortMapAddr: m.pmAddr}
	for _, c := range m.conns {
		st.Connections = append(st.Connections, *c)
	}
	for _, mp := range m.mappings {
		st.Mappings = append(st.Mappings, *mp)
	}
	m.leaseMu.Lock()
	for _, l := range m.leases {
		st.Leases = append(st.Leases, l)
	}
	m.leaseMu.Unlock()
	return dump(st)
}

func dump(st *store.State) string {
	slices.SortFunc(st.Connections, func(a, b store.Connection) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Mappings, func(a, b store.Mapping) int { return int(a.ID) - int(b.ID) })
	slices.SortFunc(st.Leases, func(a, b store.Lease) int { return strings.Compare(a.Key(), b.Key()) })
	b, _ := json.MarshalIndent(st, "", " ")
	return string(b)
}

// stored renders the store's records.
func (h *harness) stored() string {
	h.t.Helper()
	st, err := store.LoadState(ctx, h.st.Desired, h.st.Runtime)
	if err != nil {
		h.t.Fatal(err)
	}
	st.RuntimeRev = 0 // the leases' revision is the store's alone
	return dump(st)
}

// state renders everything a refused call must leave as it was.
func (h *harness) state() string {
	h.t.Helper()
	f, _ := json.Marshal(h.fw.Config())
	l, _ := h.links.List(ctx)
	ls, _ := json.Marshal(l)
	return h.stored() + "\n" + string(f) + "\n" + string(ls)
}

func (h *harness) props(ref string) Connection {
	h.t.Helper()
	p, err := h.m.NetConnectionProps(ctx, ref)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) must(_ any, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	h.check()
}

func (h *harness) add(ref, name string, ext int, ip string) Mapping {
	h.t.Helper()
	p, err := h.m.AddPortMapping(ctx, ref, MappingSpec{Name: name, Protocol: ipproto.TCP, ExternalPort: uint16(ext), InternalPort: uint16(ext + 1000), Target: Target{IP: netip.MustParseAddr(ip)}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.check()
	return p
}

func names(ps []Connection) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Interface)
	}
	return out
}

func TestConnectionsListed(t *testing.T) {
	h := newHarness(t)
	all, err := h.m.EnumEveryConnection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(all), []string{"lan0", "lan1", "wan0", "wg0"}; !slices.Equal(got, want) {
		t.Fatalf("connections %v, want %v (loopback excluded, sorted)", got, want)
	}
	want := map[string]struct {
		media  Media
		device string
	}{
		"wan0": {MediaLAN, "e1000e"},
		"lan0": {MediaLAN, "veth"},
		"lan1": {MediaBridge, "bridge"},
		"wg0":  {MediaTunnel, "wireguard"},
	}
	ids := map[string]bool{}
	for _, p := range all {
		w := want[p.Interface]
		if p.Name != p.Interface || p.Media != w.media || p.Device != w.device || p.Status != StatusConnected {
			t.Errorf("%s: %+v, want name %s, media %d, device %s, connected", p.Interface, p, p.Interface, w.media, w.device)
		}
		if len(p.ID) != 36 || ids[p.ID] {
			t.Errorf("%s: id %q is not a fresh GUID", p.Interface, p.ID)
		}
		ids[p.ID] = true
		if p.Characteristics != CharAllUsers|CharAllowRename || p.Role != RoleNone || p.Firewall {
			t.Errorf("%s: %+v, want an unshared, unfirewalled connection", p.Interface, p)
		}
	}
	// Lookup by id (in any case, with braces), interface and name.
	wan := h.props("wan0")
	for _, ref := range []string{wan.ID, strings.ToUpper(wan.ID), "{" + wan.ID + "}"} {
		if p := h.props(ref); p.Interface != "wan0" {
			t.Errorf("lookup %q found %s", ref, p.Interface)
		}
	}
	_, err = h.m.NetConnectionProps(ctx, "lo")
	if !hresult.IsNotFound(err) {
		t.Errorf("loopback: got %v, want a not-found error", err)
	}
	_, err = h.m.NetConnectionProps(ctx, "eth9")
	if !hresult.IsNotFound(err) || hresult.CodeOf(err) != hresult.InvalidArg || !strings.Contains(err.Error(), `"eth9"`) {
		t.Errorf("unknown: got %v, want E_INVALIDARG not-found naming eth9", err)
	}
}

func TestStatus(t *testing.T) {
	v4 := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}
	ll6 := []netip.Prefix{netip.MustParsePrefix("fe80::1/64")}
	g6 := []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}
	tests := []struct {
		link *link.Link
		want Status
	}{
		{nil, StatusHardwareNotPresent},
		{&link.Link{Up: false, Carrier: true, Addrs: v4}, StatusDisconnected},
		{&link.Link{Up: true, Carrier: false, Addrs: v4}, StatusMediaDisconnected},
		{&link.Link{Up: true, Carrier: true}, StatusInvalidAddress},
		{&link.Link{Up: true, Carrier: true, Addrs: ll6}, StatusInvalidAddress},
		{&link.Link{Up: true, Carrier: true, Addrs: g6}, StatusConnected},
		{&link.Link{Up: true, Carrier: true, Addrs: v4}, StatusConnected},
	}
	for _, tt := range tests {
		if got := statusOf(tt.link); got != tt.want {
			t.Errorf("statusOf(%+v) = %d, want %d", tt.link, got, tt.want)
		}
	}
	for kind, want := range map[string]Media{
		"device": MediaLAN, "veth": MediaLAN, "vlan": MediaLAN, "bond": MediaLAN, "macvlan": MediaLAN,
		"bridge": MediaBridge, "ppp": MediaPPPoE, "tun": MediaTunnel, "wireguard": MediaTunnel, "gre": MediaTunnel, "vxlan": MediaTunnel,
		"can": MediaNone,
	} {
		if got := mediaOf(&link.Link{Kind: kind}); got != want {
			t.Errorf("mediaOf(%s) = %d, want %d", kind, got, want)
		}
	}
}

func TestConnectDisconnect(t *testing.T) {
	h := newHarness(t)
	p, err := h.m.Disconnect(ctx, "lan0")
	if err != nil || p.Status != StatusDisconnected {
		t.Fatalf("Disconnect = %+v, %v; want disconnected", p, err)
	}
	if l, _ := h.links.Get("lan0"); l.Up {
		t.Fatal("lan0 is still up")
	}
	p, err = h.m.Connect(ctx, "lan0")
	if err != nil || p.Status != StatusConnected {
		t.Fatalf("Connect = %+v, %v; want connected", p, err)
	}
	h.links.FailNext(errors.New("operation not permitted"))
	_, err = h.m.Disconnect(ctx, "lan0")
	if hresult.CodeOf(err) != hresult.Fail || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("failing Disconnect = %v, want E_FAIL with the cause", err)
	}
	if err := h.m.Delete(ctx, "lan0"); hresult.CodeOf(err) != hresult.NotImpl {
		t.Errorf("Delete = %v, want E_NOTIMPL", err)
	}
	if err := h.m.Duplicate(ctx, "lan0", "copy"); hresult.CodeOf(err) != hresult.NotImpl {
		t.Errorf("Duplicate = %v, want E_NOTIMPL", err)
	}
	if err := h.m.Delete(ctx, "nope"); !hresult.IsNotFound(err) {
		t.Errorf("Delete(unknown) = %v, want not found", err)
	}
}

func TestRename(t *testing.T) {
	h := newHarness(t)
	id := h.props("lan0").ID
	p, err := h.m.Rename(ctx, "lan0", "Home network")
	if err != nil || p.Name != "Home network" || p.ID != id || p.Interface != "lan0" {
		t.Fatalf("Rename = %+v, %v", p, err)
	}
	h.check()
	if l, _ := h.links.Get("lan0"); l.Alias != "Home network" {
		t.Errorf("alias %q, want the friendly name", l.Alias)
	}
	if h.props("Home network").ID != id {
		t.Error("lookup by the new name failed")
	}
	before := h.state()
	for _, tt := range []struct{ name, field string }{
		{"", "name"},
		{"wan0", "name"},
		{"bad\x01name", "name"},
		{strings.Repeat("n", 257), "name"},
	} {
		_, err := h.m.Rename(ctx, "wan0", tt.name)
		if tt.name == "wan0" {
			// Renaming a connection to its own interface name is allowed.
			if err != nil {
				t.Errorf("Rename(wan0, wan0) = %v", err)
			}
			continue
		}
		wantInvalid(t, err, tt.field)
	}
	_, err = h.m.Rename(ctx, "wan0", "Home network")
	wantInvalid(t, err, "name")
	if hresult.From(err).Reason != hresult.Conflict {
		t.Errorf("duplicate name: reason %q, want conflict", hresult.From(err).Reason)
	}
	_, err = h.m.Rename(ctx, "wan0", "lan0")
	wantInvalid(t, err, "name")
	h.links.FailNext(errors.New("no alias for you"))
	_, err = h.m.Rename(ctx, "wan0", "Upstream")
	if hresult.CodeOf(err) != hresult.Fail {
		t.Errorf("Rename with a failing alias = %v, want E_FAIL", err)
	}
	if got := h.state(); got != before {
		t.Fatalf("refused renames changed the state:\n%s\nwant\n%s", got, before)
	}
	// The name and id survive a restart.
	h.restart()
	if p := h.props(id); p.Name != "Home network" || p.Interface != "lan0" {
		t.Fatalf("after restart: %+v", p)
	}
	// Back to the default name.
	h.must(h.m.Rename(ctx, id, "lan0"))
	if p := h.props(id); p.Name != "lan0" {
		t.Fatalf("after renaming to the interface name: %+v", p)
	}
}

func TestSharingRules(t *testing.T) {
	h := newHarness(t)
	// A public connection gets the firewall switched on.
	p, err := h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr)
	if err != nil || p.Role == RoleNone || p.Role != "public" || !p.Firewall {
		t.Fatalf("EnableSharing(public) = %+v, %v", p, err)
	}
	if p.Characteristics != CharAllUsers|CharAllowRename|CharShared|CharFirewalled {
		t.Errorf("characteristics %v", p.Characteristics)
	}
	h.check()
	// A private connection keeps its firewall as it is.
	p, err = h.m.EnableSharing(ctx, "lan0", RolePrivate, noAddr)
	if err != nil || p.Role != "private" || p.Firewall {
		t.Fatalf("EnableSharing(private) = %+v, %v", p, err)
	}
	h.must(h.m.EnableInternetFirewall(ctx, "lan1", nil))
	h.must(h.m.EnableSharing(ctx, "lan1", RolePrivate, addr10))
	if !h.props("lan1").Firewall {
		t.Error("lan1 lost its firewall when shared as private")
	}
	if got := h.fw.Config(); got.Public != "wan0" || !slices.Equal(got.Private, []string{"lan0", "lan1"}) || !slices.Equal(got.Firewalled, []string{"lan1", "wan0"}) {
		t.Fatalf("firewall config %+v", got)
	}
	// Enabling the same role again changes nothing.
	replaces, _ := h.fw.Calls()
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	if r, _ := h.fw.Calls(); r != replaces {
		t.Error("enabling the same role again replaced the firewall")
	}

	// One public connection: a new public one unshares the old one and
	// disables its mappings, leaving its firewall on.
	m1 := h.add("wan0", "web", 80, "192.168.137.10")
	h.must(h.m.EnablePortMapping(ctx, "wan0", m1.ID))
	if len(h.fw.Config().Mappings) != 1 {
		t.Fatal("the enabled mapping is not in the firewall")
	}
	h.must(h.m.EnableSharing(ctx, "wg0", RolePublic, noAddr))
	pub, _ := h.m.EnumPublicConnections(ctx)
	priv, _ := h.m.EnumPrivateConnections(ctx)
	if !slices.Equal(names(pub), []string{"wg0"}) || !slices.Equal(names(priv), []string{"lan0", "lan1"}) {
		t.Fatalf("public %v, private %v", names(pub), names(priv))
	}
	if w := h.props("wan0"); w.Role != RoleNone || !w.Firewall {
		t.Errorf("old public: %+v, want unshared with the firewall still on", w)
	}
	if mp, _ := h.m.PortMapping(ctx, "wan0", m1.ID); mp.Enabled {
		t.Error("the old public connection's mapping is still enabled")
	}
	if len(h.fw.Config().Mappings) != 0 {
		t.Error("the firewall still holds the old public connection's mapping")
	}

	// A connection has one role: making a private one public takes it out
	// of the private ones.
	h.must(h.m.EnableSharing(ctx, "lan1", RolePublic, noAddr))
	pub, _ = h.m.EnumPublicConnections(ctx)
	priv, _ = h.m.EnumPrivateConnections(ctx)
	if !slices.Equal(names(pub), []string{"lan1"}) || !slices.Equal(names(priv), []string{"lan0"}) {
		t.Fatalf("after lan1 went public: public %v, private %v", names(pub), names(priv))
	}
	o, err := h.m.Sharing(ctx)
	if err != nil || !slices.Equal(names(o.Public), []string{"lan1"}) || !slices.Equal(names(o.Private), []string{"lan0"}) {
		t.Fatalf("Sharing() = %+v, %v", o, err)
	}

	// DisableSharing disables every mapping and leaves the firewall.
	m2 := h.add("lan1", "ssh", 22, "192.168.137.20")
	m3 := h.add("lan1", "dns", 53, "192.168.137.20")
	h.must(h.m.EnablePortMapping(ctx, "lan1", m2.ID))
	h.must(h.m.EnablePortMapping(ctx, "lan1", m3.ID))
	p, err = h.m.DisableSharing(ctx, "lan1")
	if err != nil || p.Role != RoleNone || !p.Firewall {
		t.Fatalf("DisableSharing = %+v, %v", p, err)
	}
	h.check()
	if en, _, _ := h.m.EnumPortMappings(ctx, "lan1", MappingFilter{EnabledOnly: true}); len(en) != 0 {
		t.Fatalf("enabled mappings after DisableSharing: %+v", en)
	}
	// Disable succeeds when already off, and still disables mappings.
	h.must(h.m.EnablePortMapping(ctx, "lan1", m2.ID))
	h.must(h.m.DisableSharing(ctx, "lan1"))
	if mp, _ := h.m.PortMapping(ctx, "lan1", m2.ID); mp.Enabled {
		t.Error("DisableSharing on an unshared connection left a mapping enabled")
	}
	h.must(h.m.DisableSharing(ctx, "lan1"))
	// Firewall switches are idempotent.
	h.must(h.m.DisableInternetFirewall(ctx, "lan1"))
	h.must(h.m.DisableInternetFirewall(ctx, "lan1"))
	h.must(h.m.EnableInternetFirewall(ctx, "lan1", nil))
	h.must(h.m.EnableInternetFirewall(ctx, "lan1", nil))
	if !h.props("lan1").Firewall {
		t.Error("firewall is off")
	}
	_, err = h.m.EnableSharing(ctx, "lan0", "both", noAddr)
	wantInvalid(t, err, "type")
	_, err = h.m.EnableSharing(ctx, "nope", RolePublic, noAddr)
	if !hresult.IsNotFound(err) {
		t.Errorf("unknown connection: %v", err)
	}
}

func TestSharingPersists(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	h.must(h.m.EnableSharing(ctx, "lan0", RolePrivate, noAddr))
	m1 := h.add("wan0", "web", 80, "192.168.137.10")
	h.must(h.m.EnablePortMapping(ctx, "wan0", m1.ID))
	h.add("wan0", "off", 81, "192.168.137.10")
	before, _ := h.m.EnumEveryConnection(ctx)
	fwBefore := h.fw.Config()
	h.restart()
	after, _ := h.m.EnumEveryConnection(ctx)
	if !slices.EqualFunc(before, after, func(a, b Connection) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Fatalf("connections changed over a restart:\n%+v\n%+v", before, after)
	}
	if got := h.fw.Config(); !got.Equal(fwBefore) || len(got.Mappings) != 1 {
		t.Fatalf("firewall after restart %+v, want %+v", got, fwBefore)
	}
	// Ids are never reused, even after the newest mapping is removed.
	last := h.add("wan0", "last", 90, "192.168.137.10")
	if err := h.m.RemovePortMapping(ctx, "wan0", last.ID); err != nil {
		t.Fatal(err)
	}
	h.restart()
	next := h.add("wan0", "next", 90, "192.168.137.10")
	if next.ID == last.ID {
		t.Fatalf("mapping id %s reused after a restart", next.ID)
	}
}

func TestAbsentConnection(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wg0", RolePublic, noAddr))
	id := h.props("wg0").ID
	h.links.Remove("wg0")
	h.links.Remove("lan1") // not configured: no longer listed
	h.m.Refresh(ctx)       // as the daemon's link watcher does
	all, _ := h.m.EnumEveryConnection(ctx)
	if got := names(all); !slices.Equal(got, []string{"lan0", "wan0", "wg0"}) {
		t.Fatalf("connections %v", got)
	}
	p := h.props("wg0")
	if p.Status != StatusHardwareNotPresent || p.ID != id || p.Role == RoleNone {
		t.Fatalf("absent public connection: %+v", p)
	}
	if _, err := h.m.Connect(ctx, "wg0"); hresult.CodeOf(err) != hresult.Fail {
		t.Errorf("Connect(absent) = %v, want E_FAIL", err)
	}
	// The interface comes back with the same id.
	h.links.Add(link.Link{Name: "wg0", Kind: "wireguard", Up: true, Carrier: true})
	h.m.Refresh(ctx)
	if p := h.props("wg0"); p.ID != id || p.Status != StatusInvalidAddress {
		t.Fatalf("returned connection: %+v", p)
	}
}

func TestPortMappings(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	p, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: "web", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 8080, Target: Target{IP: netip.MustParseAddr("192.168.137.10")}})
	if err != nil {
		t.Fatal(err)
	}
	want := Mapping{ID: p.ID, Connection: p.Connection, MappingSpec: MappingSpec{Name: "web", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 8080, Target: Target{IP: netip.MustParseAddr("192.168.137.10")}}}
	if p != want {
		t.Fatalf("AddPortMapping = %+v, want %+v (disabled)", p, want)
	}
	h.check()
	if len(h.fw.Config().Mappings) != 0 {
		t.Fatal("a new, disabled mapping is in the firewall")
	}
	// Enable puts it in the firewall as one delta.
	_, updates := h.fw.Calls()
	p, err = h.m.EnablePortMapping(ctx, "wan0", p.ID)
	if err != nil || !p.Enabled {
		t.Fatalf("Enable = %+v, %v", p, err)
	}
	h.check()
	if _, u := h.fw.Calls(); u != updates+1 {
		t.Errorf("Enable made %d firewall updates, want 1", u-updates)
	}
	wantFW := fw.Mapping{Key: fw.Key{Interface: "wan0", Protocol: ipproto.TCP, ExternalPort: 80}, Target: netip.MustParseAddr("192.168.137.10"), InternalPort: 8080}
	if got := h.fw.Config().Mappings; !slices.Equal(got, []fw.Mapping{wantFW}) {
		t.Fatalf("firewall mappings %v, want %v", got, wantFW)
	}
	h.must(h.m.EnablePortMapping(ctx, "wan0", p.ID)) // idempotent

	// The same port with the other protocol, and a name target.
	u, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: "web-udp", Protocol: ipproto.UDP, ExternalPort: 80, InternalPort: 80, Target: Target{Name: "NAS.home.arpa"}})
	if err != nil || u.Target.Name != "nas.home.arpa" || u.Target.IP.IsValid() {
		t.Fatalf("udp/80 by name = %+v, %v", u, err)
	}
	h.must(h.m.EnablePortMapping(ctx, "wan0", u.ID))
	if len(h.fw.Config().Mappings) != 1 {
		t.Error("a name target that cannot be resolved yet is in the firewall")
	}
	// The same key on another connection is fine.
	h.add("lan0", "web-lan", 80, "192.168.137.11")

	// Refused calls change nothing.
	before := h.state()
	refused := []struct {
		spec  MappingSpec
		field string
	}{
		{MappingSpec{Name: "dup", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "externalPort"},
		{MappingSpec{Name: "", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "name"},
		{MappingSpec{Name: strings.Repeat("x", 257), Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "name"},
		{MappingSpec{Name: "ctl\x1b", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "name"},
		{MappingSpec{Name: "p", Protocol: 1, ExternalPort: 81, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "protocol"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 0, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "externalPort"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 0, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "internalPort"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Options: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}, "options"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1}, "target"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{Name: "a", IP: netip.MustParseAddr("10.0.0.1")}}, "target"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("fe80::1")}}, "targetIPAddress"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("224.0.0.1")}}, "targetIPAddress"},
		{MappingSpec{Name: "p", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{Name: "bad_name"}}, "targetName"},
	}
	for _, tt := range refused {
		_, err := h.m.AddPortMapping(ctx, "wan0", tt.spec)
		wantInvalid(t, err, tt.field)
	}
	if _, err := h.m.AddPortMapping(ctx, "nope", refused[0].spec); !hresult.IsNotFound(err) {
		t.Errorf("unknown connection: %v", err)
	}
	for _, id := range []MappingID{999, 0} {
		_, err := h.m.EnablePortMapping(ctx, "wan0", id)
		if hresult.CodeOf(err) != hresult.InvalidArg || !hresult.IsNotFound(err) {
			t.Errorf("Enable(%d) = %v, want E_INVALIDARG, not found", id, err)
		}
	}
	// A mapping is reached through its own connection only.
	if _, err := h.m.PortMapping(ctx, "lan0", p.ID); !hresult.IsNotFound(err) {
		t.Errorf("mapping of wan0 through lan0: %v, want not found", err)
	}
	for _, e := range []struct {
		edit  MappingEdit
		field string
	}{
		{MappingEdit{Protocol: new(ipproto.UDP)}, "externalPort"}, // udp/80 is taken
		{MappingEdit{Name: new("")}, "name"},
		{MappingEdit{ExternalPort: new(uint16(0))}, "externalPort"},
		{MappingEdit{TargetIP: &netip.Addr{}}, "target"},
		{MappingEdit{TargetIP: new(netip.MustParseAddr("fe80::1"))}, "targetIPAddress"},
		{MappingEdit{TargetName: new("x"), TargetIP: new(netip.MustParseAddr("10.0.0.1"))}, "target"},
		{MappingEdit{Options: new(uint32(2))}, "options"},
	} {
		_, err := h.m.EditPortMapping(ctx, "wan0", p.ID, e.edit)
		wantInvalid(t, err, e.field)
	}
	// A firewall that refuses a change of sharing leaves everything as
	// it was.
	h.fw.FailNext(errors.New("netlink: busy"))
	if _, err := h.m.EnableSharing(ctx, "lan0", RolePrivate, noAddr); hresult.CodeOf(err) != hresult.Fail {
		t.Errorf("EnableSharing with a failing firewall = %v, want E_FAIL", err)
	}
	if got := h.state(); got != before {
		t.Fatalf("refused calls changed the state:\n%s\nwant\n%s", got, before)
	}
	h.check()
	// A change of a mapping is stored first: when the firewall then
	// refuses it, the caller hears so, the mapping says so, and Refresh
	// applies it until the firewall holds it.
	cause := errors.New("netlink: out of memory")
	h.fw.FailNext(cause)
	d, err := h.m.DisablePortMapping(ctx, "wan0", p.ID)
	if hresult.CodeOf(err) != hresult.Fail || !errors.Is(err, cause) {
		t.Errorf("Disable with a failing firewall = %v, want E_FAIL with the cause", err)
	}
	if d.Enabled || !errors.Is(d.ApplyError, cause) {
		t.Errorf("Disable with a failing firewall returned %+v; want the stored mapping with its applyError", d)
	}
	if g, _ := h.m.PortMapping(ctx, "wan0", p.ID); g.Enabled || g.ApplyError == nil {
		t.Errorf("the mapping after a failed apply: %+v; want disabled, with applyError", g)
	}
	if got := h.fw.Config().Mappings; len(got) != 1 {
		t.Fatalf("the firewall took a change it refused: %v", got)
	}
	h.fw.FailNext(errors.New("netlink: still busy"))
	if err := h.m.Refresh(ctx); err == nil {
		t.Error("Refresh with a failing firewall succeeded")
	}
	if g, _ := h.m.PortMapping(ctx, "wan0", p.ID); !errors.Is(g.ApplyError, cause) {
		t.Errorf("the mapping after a failed retry: %+v; want its applyError", g)
	}
	if err := h.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	h.check()
	if g, _ := h.m.PortMapping(ctx, "wan0", p.ID); g.ApplyError != nil || len(h.fw.Config().Mappings) != 0 {
		t.Fatalf("after the retry: %+v, firewall %v; want it applied", g, h.fw.Config().Mappings)
	}
	h.must(h.m.EnablePortMapping(ctx, "wan0", p.ID))
	h.check()

	// Edit keeps the id and moves the firewall element.
	e, err := h.m.EditPortMapping(ctx, "wan0", p.ID, MappingEdit{ExternalPort: new(uint16(8443)), InternalPort: new(uint16(443)), TargetIP: new(netip.MustParseAddr("192.168.137.12")), Name: new("web-tls")})
	if err != nil || e.ID != p.ID || e.ExternalPort != 8443 || e.InternalPort != 443 || e.Name != "web-tls" || !e.Enabled {
		t.Fatalf("Edit = %+v, %v", e, err)
	}
	h.check()
	if got := h.fw.Config().Mappings; len(got) != 1 || got[0].ExternalPort != 8443 || got[0].Target != netip.MustParseAddr("192.168.137.12") {
		t.Fatalf("firewall after edit: %v", got)
	}
	// Switching the target to a name takes it out of the firewall.
	e, err = h.m.EditPortMapping(ctx, "wan0", p.ID, MappingEdit{TargetName: new("nas")})
	if err != nil || e.Target.Name != "nas" || e.Target.IP.IsValid() {
		t.Fatalf("Edit to a name = %+v, %v", e, err)
	}
	h.check()
	if len(h.fw.Config().Mappings) != 0 {
		t.Fatal("a name target is in the firewall")
	}
	// Enum: all, or enabled only, in the order added.
	all, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{})
	en, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{EnabledOnly: true})
	if len(all) != 2 || all[0].ID != p.ID || all[1].ID != u.ID || len(en) != 2 {
		t.Fatalf("Enum: all %+v, enabled %+v", all, en)
	}
	h.must(h.m.DisablePortMapping(ctx, "wan0", u.ID))
	if en, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{EnabledOnly: true}); len(en) != 1 || en[0].ID != p.ID {
		t.Fatalf("enabled after disabling one: %+v", en)
	}
	// Remove.
	if err := h.m.RemovePortMapping(ctx, "wan0", p.ID); err != nil {
		t.Fatal(err)
	}
	h.check()
	if _, err := h.m.PortMapping(ctx, "wan0", p.ID); !hresult.IsNotFound(err) {
		t.Errorf("removed mapping: %v", err)
	}
	if err := h.m.RemovePortMapping(ctx, "wan0", p.ID); !hresult.IsNotFound(err) {
		t.Errorf("removing twice: %v", err)
	}
	// Its key is free again.
	h.add("wan0", "again", 80, "192.168.137.10")
}

// TestConcurrent has many goroutines add, enable, edit and remove mappings
// and switch sharing, then checks that memory, store and firewall agree.
func TestConcurrent(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	var wg sync.WaitGroup
	const workers, rounds = 8, 40
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				port := 1000 + i%10 // workers collide on purpose
				p, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{
					Name: fmt.Sprintf("w%d-%d", w, i), Protocol: ipproto.TCP, ExternalPort: uint16(port), InternalPort: uint16(port),
					Target: Target{IP: netip.AddrFrom4([4]byte{192, 168, 137, byte(10 + w)})},
				})
				if err != nil {
					if hresult.From(err).Reason != hresult.Conflict {
						t.Errorf("add: %v", err)
					}
					continue
				}
				if _, err := h.m.EnablePortMapping(ctx, "wan0", p.ID); err != nil {
					t.Errorf("enable: %v", err)
				}
				if i%3 == 0 {
					if err := h.m.RemovePortMapping(ctx, "wan0", p.ID); err != nil {
						t.Errorf("remove: %v", err)
					}
				}
				if w == 0 && i%10 == 0 {
					h.m.EnableSharing(ctx, "lan1", RolePrivate, addr10)
					h.m.DisableSharing(ctx, "lan1")
				}
			}
		})
	}
	wg.Wait()
	h.check()
	all, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{})
	seen := map[uint16]bool{}
	for _, p := range all {
		if seen[p.ExternalPort] {
			t.Fatalf("two mappings on tcp/%d", p.ExternalPort)
		}
		seen[p.ExternalPort] = true
	}
	if len(all) == 0 || len(h.fw.Config().Mappings) != len(all) {
		t.Fatalf("%d mappings, %d in the firewall", len(all), len(h.fw.Config().Mappings))
	}
	h.restart()
	if again, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); !slices.Equal(again, all) {
		t.Fatal("mappings changed over a restart")
	}
}

func (h *harness) addrs(name string) []string {
	h.t.Helper()
	l, ok := h.links.Get(name)
	if !ok {
		h.t.Fatalf("no link %s", name)
	}
	var out []string
	for _, p := range l.Addrs {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

func (h *harness) forwarding() bool {
	on, _ := h.links.IPv4Forwarding(ctx)
	return on
}

func TestPrivateAddressAndForwarding(t *testing.T) {
	h := newHarness(t)
	if h.forwarding() {
		t.Fatal("forwarding on at the start")
	}
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	if !h.forwarding() {
		t.Fatal("sharing did not turn forwarding on")
	}
	p, err := h.m.EnableSharing(ctx, "lan1", RolePrivate, noAddr)
	if err != nil || p.PrivateAddress != DefaultPrivateAddress {
		t.Fatalf("EnableSharing(lan1, RolePrivate, noAddr) = %+v, %v", p, err)
	}
	h.check()
	if got := h.addrs("lan1"); !slices.Equal(got, []string{"192.168.137.1/24"}) {
		t.Fatalf("lan1 addresses %v, want the private address only", got)
	}
	// Overlaps are refused and change nothing.
	before := h.state()
	for _, tt := range []struct {
		ref  string
		role Role
		addr string
		want string
	}{
		{"wg0", RolePrivate, "198.51.100.77/24", "address: 198.51.100.77/24 overlaps 198.51.100.0/24 of the public connection"},
		{"wg0", RolePrivate, "192.168.137.5/16", "overlaps 192.168.137.0/24 of the private connection"},
		{"wg0", RolePrivate, "192.168.137.0/24", "network address"},
		{"wg0", RolePrivate, "10.9.255.255/16", "broadcast address"},
		{"wg0", RolePrivate, "10.9.0.1/31", "prefix length must be 8 to 30"},
		{"wg0", RolePrivate, "fd00::1/64", "not IPv4"},
		{"wg0", RolePrivate, "127.0.0.2/8", "not a usable"},
		{"wg0", RolePublic, "10.9.0.1/24", "address: is for private connections"},
	} {
		_, err := h.m.EnableSharing(ctx, tt.ref, tt.role, netip.MustParsePrefix(tt.addr))
		if hresult.CodeOf(err) != hresult.InvalidArg || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("EnableSharing(%s, %s, %s) = %v, want E_INVALIDARG with %q", tt.ref, tt.role, tt.addr, err, tt.want)
		}
	}
	if got := h.state(); got != before {
		t.Fatalf("refused overlaps changed the state:\n%s\nwant\n%s", got, before)
	}
	// A public connection whose network overlaps a private one.
	h.links.Add(link.Link{Name: "wan1", Kind: "device", Up: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.137.200/24")}})
	h.m.Refresh(ctx) // records wan1
	before = h.state()
	if _, err := h.m.EnableSharing(ctx, "wan1", RolePublic, noAddr); hresult.CodeOf(err) != hresult.InvalidArg || !strings.Contains(err.Error(), "overlaps the private network 192.168.137.0/24") {
		t.Errorf("overlapping public: %v", err)
	}
	// A link that refuses the address leaves everything as it was.
	h.links.FailNext(errors.New("address refused"))
	if _, err := h.m.EnableSharing(ctx, "wg0", RolePrivate, netip.MustParsePrefix("10.77.0.1/24")); hresult.CodeOf(err) != hresult.Fail {
		t.Errorf("failing link: %v", err)
	}
	if got := h.state(); got != before {
		t.Fatalf("refused calls changed the state:\n%s\nwant\n%s", got, before)
	}
	// A second private network, then a new address for it.
	h.must(h.m.EnableSharing(ctx, "wg0", RolePrivate, netip.MustParsePrefix("10.77.0.1/24")))
	h.must(h.m.EnableSharing(ctx, "wg0", RolePrivate, netip.MustParsePrefix("10.78.0.1/24")))
	if got := h.addrs("wg0"); !slices.Equal(got, []string{"10.78.0.1/24"}) {
		t.Fatalf("wg0 addresses %v", got)
	}
	// Restart in a namespace that lost its state (a reboot): forwarding
	// and the private addresses come back.
	h.links.SetForwarding(false)
	h.links.RemoveAddr("lan1", netip.MustParsePrefix("192.168.137.1/24"))
	h.restart()
	if !h.forwarding() || !slices.Equal(h.addrs("lan1"), []string{"192.168.137.1/24"}) {
		t.Fatalf("after restart: forwarding %v, lan1 %v", h.forwarding(), h.addrs("lan1"))
	}
	// Unsharing puts the old addresses back; the last one puts forwarding
	// back as it was.
	h.must(h.m.DisableSharing(ctx, "wg0"))
	if got := h.addrs("wg0"); !slices.Equal(got, []string{"10.9.0.1/24"}) {
		t.Fatalf("wg0 after unsharing: %v, want its own address back", got)
	}
	h.must(h.m.DisableSharing(ctx, "lan1"))
	if got := h.addrs("lan1"); !slices.Equal(got, []string{"10.1.0.1/24"}) {
		t.Fatalf("lan1 after unsharing: %v", got)
	}
	if !h.forwarding() {
		t.Fatal("forwarding off while wan0 is still shared")
	}
	h.must(h.m.DisableSharing(ctx, "wan0"))
	if h.forwarding() {
		t.Fatal("forwarding still on after the last sharing stopped")
	}
	// Forwarding that was on before stays on.
	h.links.SetForwarding(true)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	h.must(h.m.DisableSharing(ctx, "wan0"))
	if !h.forwarding() {
		t.Fatal("forwarding that was on before sharing was turned off")
	}
	// The remembered private address is used again.
	p, err = h.m.EnableSharing(ctx, "wg0", RolePrivate, noAddr)
	if err != nil || p.PrivateAddress != netip.MustParsePrefix("10.78.0.1/24") {
		t.Fatalf("re-enabling wg0: %+v, %v", p, err)
	}
}

func TestAllowPing(t *testing.T) {
	h := newHarness(t)
	yes, no := true, false
	p, err := h.m.EnableInternetFirewall(ctx, "wan0", &yes)
	if err != nil || !p.Firewall || !p.AllowPing {
		t.Fatalf("enable with ping: %+v, %v", p, err)
	}
	h.check()
	if got := h.fw.Config().Ping; !slices.Equal(got, []string{"wan0"}) {
		t.Fatalf("ping set %v", got)
	}
	// Unset leaves it as it is; disabling the firewall takes it out.
	h.must(h.m.EnableInternetFirewall(ctx, "wan0", nil))
	if !h.props("wan0").AllowPing {
		t.Fatal("an enable without the option changed it")
	}
	h.must(h.m.DisableInternetFirewall(ctx, "wan0"))
	if got := h.fw.Config().Ping; len(got) != 0 {
		t.Fatalf("ping set %v with the firewall off", got)
	}
	h.must(h.m.EnableInternetFirewall(ctx, "wan0", &no))
	if h.props("wan0").AllowPing || len(h.fw.Config().Ping) != 0 {
		t.Fatal("ping still allowed")
	}
}

// TestGeneration checks that the generation grows with what a client
// shows, and only then: committed changes and changes seen in the links.
func TestGeneration(t *testing.T) {
	h := newHarness(t)
	m := h.m
	same := func(what string) {
		t.Helper()
		g := m.Generation()
		if err := m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m.EnumEveryConnection(ctx); err != nil {
			t.Fatal(err)
		}
		if m.Generation() != g {
			t.Errorf("%s: the generation moved from %d to %d with nothing changed", what, g, m.Generation())
		}
	}
	grows := func(what string, change func()) {
		t.Helper()
		g := m.Generation()
		change()
		if err := m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if m.Generation() <= g {
			t.Errorf("%s: the generation stayed at %d", what, g)
		}
	}
	same("at rest")
	grows("a link goes down", func() { h.links.SetDown(ctx, "wg0") })
	same("after the link went down")
	grows("an address is added", func() { h.links.AddAddr("wg0", netip.MustParsePrefix("10.9.1.1/24")) })
	grows("a new interface", func() { h.links.Add(link.Link{Name: "eth9", Kind: "device", Up: true}) })
	grows("a rename", func() {
		if _, err := m.Rename(ctx, "wg0", "vpn"); err != nil {
			t.Fatal(err)
		}
	})
	same("after the rename")
	g := m.Generation()
	if _, err := m.EnableSharing(ctx, "wan0", "bogus", noAddr); err == nil {
		t.Fatal("a bogus sharing type was accepted")
	}
	if m.Generation() != g {
		t.Errorf("a refused change moved the generation")
	}
}
