package sharing

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/ipproto"
)

func (h *harness) config() Config {
	h.t.Helper()
	doc, err := h.m.Config(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return doc
}

func (h *harness) apply(doc Config, dryRun bool) ConfigResult {
	h.t.Helper()
	res, err := h.m.ApplyConfig(ctx, doc, doc.Revision, dryRun)
	if err != nil {
		h.t.Fatalf("ApplyConfig: %v", err)
	}
	return res
}

func connOf(doc *Config, iface string) *ConnectionConfig {
	for i := range doc.Connections {
		if doc.Connections[i].Interface == iface {
			return &doc.Connections[i]
		}
	}
	return nil
}

func TestConfigDocument(t *testing.T) {
	h := newHarness(t)
	// A document written by hand: a public and a private connection, a
	// name, mappings, DNS.
	doc := Config{
		Connections: []ConnectionConfig{
			{Interface: "wan0", Role: RolePublic, Firewall: true, Name: "Upstream", Mappings: []MappingConfig{
				{MappingSpec: MappingSpec{Name: "web", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 8080, Target: Target{IP: netip.MustParseAddr("10.5.0.10")}}, Enabled: true},
				{MappingSpec: MappingSpec{Name: "nas", Protocol: ipproto.UDP, ExternalPort: 9000, InternalPort: 9000, Target: Target{Name: "nas"}}},
			}},
			{Interface: "lan0", Role: RolePrivate, Address: netip.MustParsePrefix("10.5.0.1/24"), DHCP: &DHCPConfig{LeaseTime: 2 * time.Hour,
				Reservations: []Reservation{{MAC: "02:00:00:00:00:01", IP: mustIP("10.5.0.5"), Name: "nas"}}}},
		},
		DNS: DNSConfig{Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}, Hosts: []DNSHost{{Name: "printer", IP: mustIP("10.5.0.7")}}},
	}
	rev := h.m.Revision()
	dry, err := h.m.ApplyConfig(ctx, doc, rev, true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || len(dry.Changes) < 6 || h.m.Revision() != rev {
		t.Fatalf("dry run: %+v; revision %s -> %s", dry, rev, h.m.Revision())
	}
	for _, want := range []string{"connection lan0: shared as private (was not shared)", `connection wan0: name "Upstream" (was "wan0")`, `mapping 1 ("web") added: tcp 80 -> 10.5.0.10:8080, enabled`, "DNS host printer: 10.5.0.7 added"} {
		if !slices.ContainsFunc(dry.Changes, func(c string) bool { return strings.Contains(c, want) }) {
			t.Errorf("dry run changes %q lack %q", dry.Changes, want)
		}
	}
	res, err := h.m.ApplyConfig(ctx, doc, rev, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.DryRun || !slices.Equal(res.Changes, dry.Changes) || res.Config.Revision == rev {
		t.Fatalf("apply: %+v; want the dry run's changes at a new revision", res)
	}
	h.check()
	if got := h.addrs("lan0"); !slices.Equal(got, []string{"10.5.0.1/24"}) {
		t.Errorf("lan0 addresses %v", got)
	}
	if !h.forwarding() {
		t.Error("forwarding is off while sharing")
	}
	if p := h.props("wan0"); p.Name != "Upstream" || p.Role == RoleNone || !p.Firewall {
		t.Errorf("wan0: %+v", p)
	}
	if l, _ := h.links.Get("wan0"); l.Alias != "Upstream" {
		t.Errorf("wan0's alias %q", l.Alias)
	}
	if ms := h.fw.Config().Mappings; len(ms) != 1 || ms[0].ExternalPort != 80 {
		t.Errorf("firewall mappings %v", ms)
	}
	if d, _ := h.m.DHCPSettings(ctx, "lan0"); d.LeaseTime.String() != "2h0m0s" || len(d.Reservations) != 1 {
		t.Errorf("DHCP %+v", d)
	}

	// Export, then apply what was exported: nothing changes.
	out := h.config()
	again := h.apply(out, false)
	if len(again.Changes) != 0 || again.Config.Revision != out.Revision {
		t.Fatalf("applying the export changed %q (revision %s -> %s)", again.Changes, out.Revision, again.Config.Revision)
	}
	// It survives a restart, as it was.
	h.restart()
	if after := h.config(); !equalDocs(after, out) {
		t.Fatalf("after a restart:\n%+v\nwant\n%+v", after, out)
	}

	// Edit the export: a mapping removed, one changed, lan0 left out.
	edit := h.config()
	w := connOf(&edit, "wan0")
	w.Mappings = w.Mappings[1:]
	w.Mappings[0].Enabled = true
	w.Mappings[0].Target = Target{IP: mustIP("10.1.0.9")}
	edit.Connections = slices.DeleteFunc(edit.Connections, func(c ConnectionConfig) bool { return c.Interface == "lan0" })
	res = h.apply(edit, false)
	h.check()
	if p := h.props("lan0"); p.Role != RoleNone {
		t.Errorf("lan0 was left out and is still shared: %+v", p)
	}
	if got := h.addrs("lan0"); !slices.Equal(got, []string{"192.168.137.1/24"}) {
		t.Errorf("lan0 addresses %v after unsharing; want its own back", got)
	}
	if ms := h.fw.Config().Mappings; len(ms) != 1 || ms[0].ExternalPort != 9000 {
		t.Errorf("firewall mappings %v", ms)
	}
	t.Logf("changes: %q", res.Changes)
}

func equalDocs(a, b Config) bool {
	return strings.EqualFold(strings.TrimSpace(fmtDoc(a)), strings.TrimSpace(fmtDoc(b)))
}

func fmtDoc(d Config) string {
	var b strings.Builder
	for _, c := range d.Connections {
		fmt.Fprint(&b, c.Interface, c.Name, c.Role, c.Address)
		for _, m := range c.Mappings {
			fmt.Fprint(&b, m.ID, m.Name)
		}
	}
	return fmt.Sprint(d.Revision, b.String(), d.DNS.Upstreams)
}

// A document with any error changes nothing, and the error says where.
func TestConfigDocumentRefused(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	web := h.add("wan0", "web", 80, "192.168.137.10")
	base := h.config()
	before := h.state()
	mod := func(f func(d *Config)) Config {
		d := h.config()
		f(&d)
		return d
	}
	for _, tt := range []struct {
		name  string
		doc   Config
		field string
	}{
		{"unknown connection", mod(func(d *Config) {
			d.Connections = append(d.Connections, ConnectionConfig{Interface: "eth9"})
		}), "connections[4]"},
		{"listed twice", mod(func(d *Config) {
			d.Connections = append(d.Connections, ConnectionConfig{Interface: "wan0"})
		}), "connections[4].id"},
		{"two public", mod(func(d *Config) { connOf(d, "lan0").Role = RolePublic }), "connections"},
		{"bad sharing", mod(func(d *Config) { connOf(d, "lan0").Role = "both" }), "connections[0].sharing"},
		{"address of a public", mod(func(d *Config) { connOf(d, "wan0").Address = netip.MustParsePrefix("10.0.0.1/24") }), "connections[2].address"},
		{"overlapping privates", mod(func(d *Config) {
			connOf(d, "lan0").Role, connOf(d, "lan1").Role = RolePrivate, RolePrivate
			connOf(d, "lan1").Address = netip.MustParsePrefix("192.168.137.9/24")
		}), "address"},
		{"private over the public", mod(func(d *Config) {
			connOf(d, "lan0").Role, connOf(d, "lan0").Address = RolePrivate, netip.MustParsePrefix("198.51.100.9/24")
		}), "address"},
		{"name taken", mod(func(d *Config) { connOf(d, "lan0").Name = "wan0" }), "connections.name"},
		{"bad mapping", mod(func(d *Config) { connOf(d, "wan0").Mappings[0].ExternalPort = 0 }), "connections[2].mappings[0].externalPort"},
		{"same port twice", mod(func(d *Config) {
			w := connOf(d, "wan0")
			w.Mappings = append(w.Mappings, MappingConfig{MappingSpec: MappingSpec{Name: "x", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}})
		}), "connections[2].mappings[1].externalPort"},
		{"unknown mapping id", mod(func(d *Config) { connOf(d, "wan0").Mappings[0].ID = 77 }), "connections[2].mappings[0]"},
		{"mapping of another connection", mod(func(d *Config) {
			connOf(d, "lan0").Mappings = []MappingConfig{{ID: web.ID, MappingSpec: MappingSpec{Name: "x", Protocol: ipproto.TCP, ExternalPort: 81, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("10.0.0.1")}}}}
		}), "connections[0].mappings[0]"},
		{"bad DHCP", mod(func(d *Config) {
			c := connOf(d, "lan0")
			c.Role, c.DHCP = RolePrivate, &DHCPConfig{PoolStart: mustIP("10.9.9.9")}
		}), "connections[0].dhcp.poolStart"},
		{"bad lease time", mod(func(d *Config) { connOf(d, "lan0").DHCP = &DHCPConfig{LeaseTime: time.Second} }), "connections[0].dhcp.leaseTime"},
		{"bad upstream", mod(func(d *Config) { d.DNS.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")} }), "dns.upstream"},
		{"host twice", mod(func(d *Config) {
			d.DNS.Hosts = []DNSHost{{Name: "a", IP: mustIP("10.0.0.1")}, {Name: "A", IP: mustIP("10.0.0.2")}}
		}), "dns.hosts[1].name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.m.ApplyConfig(ctx, tt.doc, tt.doc.Revision, false)
			var e *hresult.Error
			if !errors.As(err, &e) || e.Code != hresult.InvalidArg || e.Field != tt.field || !strings.HasPrefix(e.Message, tt.field) {
				t.Fatalf("ApplyConfig = %v (field %q); want E_INVALIDARG at %q", err, fieldOf(err), tt.field)
			}
			if got := h.state(); got != before {
				t.Fatalf("a refused document changed the state:\n%s\nwant\n%s", got, before)
			}
		})
	}
	// A stale document is refused; without a revision it applies.
	h.must(h.m.EnableInternetFirewall(ctx, "lan0", nil))
	before = h.state()
	if _, err := h.m.ApplyConfig(ctx, base, base.Revision, false); hresult.From(err).Reason != hresult.Stale {
		t.Fatalf("a stale document: %v; want a stale error", err)
	}
	if got := h.state(); got != before {
		t.Fatal("a stale document changed the state")
	}
	res, err := h.m.ApplyConfig(ctx, base, "", false)
	if err != nil || !slices.Contains(res.Changes, "connection lan0: firewall off") {
		t.Fatalf("applying without a revision: %+v, %v", res.Changes, err)
	}
	h.check()
	// A link that refuses a change leaves everything as it was.
	doc := h.config()
	connOf(&doc, "lan0").Role, connOf(&doc, "lan0").Address = RolePrivate, netip.MustParsePrefix("10.77.0.1/24")
	before = h.state()
	h.links.FailNext(errors.New("address refused"))
	if _, err := h.m.ApplyConfig(ctx, doc, doc.Revision, false); hresult.CodeOf(err) != hresult.Fail {
		t.Fatalf("a failing link: %v; want E_FAIL", err)
	}
	if got := h.state(); got != before {
		t.Fatalf("a failed apply changed the state:\n%s\nwant\n%s", got, before)
	}
	h.check()
}

func fieldOf(err error) string {
	var e *hresult.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
