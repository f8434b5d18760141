package api

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/sharing"
)

// wantField checks that err is an E_INVALIDARG about field, its message
// starting with the field's name.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var e *hresult.Error
	if !errors.As(err, &e) || e.Code != hresult.InvalidArg || e.Field != field || !strings.HasPrefix(e.Message, field+":") {
		t.Errorf("%s: %v; want E_INVALIDARG about %s", what, err, field)
	}
}

// The checks of what the wire can get wrong, which the model's types
// cannot even hold: a word that is no protocol, a port out of range, text
// that is no address.
func TestParseRefused(t *testing.T) {
	spec := func(proto hnetcfg.Protocol, ext, in, opts int, ip string) error {
		_, err := mappingSpec("x", proto, ext, in, opts, "", ip)
		return err
	}
	for _, tt := range []struct {
		what  string
		err   error
		field string
	}{
		{"no protocol", spec("", 80, 80, 0, ""), "protocol"},
		{"icmp", spec("icmp", 80, 80, 0, ""), "protocol"},
		{"sctp", spec("sctp", 80, 80, 0, ""), "protocol"},
		{"protocol by number", spec("6", 80, 80, 0, ""), "protocol"},
		{"protocol with a space", spec("tcp ", 80, 80, 0, ""), "protocol"},
		{"tcpudp", spec("tcpudp", 80, 80, 0, ""), "protocol"},
		{"external port -1", spec("tcp", -1, 80, 0, ""), "externalPort"},
		{"external port 65536", spec("tcp", 65536, 80, 0, ""), "externalPort"},
		{"internal port 70000", spec("tcp", 80, 70000, 0, ""), "internalPort"},
		{"internal port 2^20", spec("tcp", 80, 1<<20, 0, ""), "internalPort"},
		{"options -1", spec("tcp", 80, 80, -1, ""), "options"},
		{"three-part address", spec("tcp", 80, 80, 0, "192.168.137"), "targetIPAddress"},
		{"octet over 255", spec("tcp", 80, 80, 0, "192.168.137.256"), "targetIPAddress"},
		{"name as address", spec("tcp", 80, 80, 0, "host.example"), "targetIPAddress"},
		{"leading space", spec("tcp", 80, 80, 0, " 10.0.0.1"), "targetIPAddress"},
		{"edit to port 0", func() error { _, err := mappingEdit(hnetcfg.PortMappingEdit{ExternalPort: new(0)}); return err }(), "externalPort"},
		{"edit to gre", func() error {
			_, err := mappingEdit(hnetcfg.PortMappingEdit{Protocol: new(hnetcfg.Protocol("gre"))})
			return err
		}(), "protocol"},
		{"edit to a bad address", func() error {
			_, err := mappingEdit(hnetcfg.PortMappingEdit{TargetIPAddress: new("10.0.0")})
			return err
		}(), "targetIPAddress"},
		{"mapping id x", func() error { _, err := mappingID("x"); return err }(), "id"},
		{"mapping id empty", func() error { _, err := mappingID(""); return err }(), "id"},
		{"mapping id -1", func() error { _, err := mappingID("-1"); return err }(), "id"},
		{"mapping id 0", func() error { _, err := mappingID("0"); return err }(), "id"},
		{"address without a prefix", func() error { _, err := privateAddress("10.9.0.1"); return err }(), "address"},
		{"sharing type both", func() error { _, err := sharingRole("type", "both"); return err }(), "type"},
		{"sharing type missing", func() error { _, err := sharingRole("type", ""); return err }(), "type"},
		{"pool start banana", func() error { _, err := dhcpEdit(hnetcfg.DHCPEdit{PoolStart: new("banana")}); return err }(), "poolStart"},
		{"lease time forever", func() error { _, err := dhcpEdit(hnetcfg.DHCPEdit{LeaseTime: new("forever")}); return err }(), "leaseTime"},
		{"lease time 0s", func() error { _, err := dhcpEdit(hnetcfg.DHCPEdit{LeaseTime: new("0s")}); return err }(), "leaseTime"},
		{"reservation without an address", func() error { _, err := reservation(hnetcfg.Reservation{MAC: "02:00:00:00:00:01"}); return err }(), "ip"},
		{"upstream banana", func() error { _, err := upstreams([]string{"banana"}); return err }(), "upstream"},
		{"host address nope", func() error { _, err := dnsHost(hnetcfg.DNSHost{Name: "x", IP: "nope"}); return err }(), "ip"},
	} {
		t.Run(tt.what, func(t *testing.T) { wantField(t, tt.what, tt.err, tt.field) })
	}
}

func TestParseAccepted(t *testing.T) {
	for _, p := range []hnetcfg.Protocol{"tcp", "TCP", "udp", "Udp"} {
		if _, err := protocol(p); err != nil {
			t.Errorf("protocol(%q) = %v", p, err)
		}
	}
	s, err := mappingSpec("web", "TCP", 80, 8080, 0, "", "192.168.137.10")
	want := sharing.MappingSpec{Name: "web", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 8080,
		Target: sharing.Target{IP: netip.MustParseAddr("192.168.137.10")}}
	if err != nil || s != want {
		t.Errorf("mappingSpec = %+v, %v; want %+v", s, err, want)
	}
	// "" in an edit puts the field back: the zero value.
	e, err := dhcpEdit(hnetcfg.DHCPEdit{PoolStart: new(""), LeaseTime: new("")})
	if err != nil || e.PoolStart == nil || e.PoolStart.IsValid() || e.LeaseTime == nil || *e.LeaseTime != 0 {
		t.Errorf("dhcpEdit of empty fields = %+v, %v", e, err)
	}
	ups, err := upstreams([]string{"192.0.2.53", " [2001:db8::53]:5353 "})
	if err != nil || len(ups) != 2 || ups[0] != netip.MustParseAddrPort("192.0.2.53:53") || ups[1].Port() != 5353 {
		t.Errorf("upstreams = %v, %v", ups, err)
	}
}

// A document's parse errors say where in it they are, as the model's
// errors do.
func TestConfigFromRefused(t *testing.T) {
	good := func() hnetcfg.Config {
		return hnetcfg.Config{Connections: []hnetcfg.ConnectionConfig{
			{Interface: "wan0", Sharing: "public", Mappings: []hnetcfg.MappingConfig{
				{Name: "web", Protocol: "tcp", ExternalPort: 80, InternalPort: 80, TargetIPAddress: "192.168.137.10"}}},
			{Interface: "lan0", Sharing: "private", Address: "192.168.137.1/24", DHCP: &hnetcfg.DHCPConfig{LeaseTime: "2h",
				Reservations: []hnetcfg.Reservation{{MAC: "02:00:00:00:00:01", IP: "192.168.137.5"}}}},
		}, DNS: hnetcfg.DNSConfig{Upstreams: []string{"192.0.2.53"}, Hosts: []hnetcfg.DNSHost{{Name: "nas", IP: "192.168.137.5"}}}}
	}
	if _, err := configFrom(good()); err != nil {
		t.Fatalf("a good document: %v", err)
	}
	for _, tt := range []struct {
		what  string
		edit  func(*hnetcfg.Config)
		field string
	}{
		{"sharing both", func(d *hnetcfg.Config) { d.Connections[1].Sharing = "both" }, "connections[1].sharing"},
		{"address without a prefix", func(d *hnetcfg.Config) { d.Connections[1].Address = "10.0.0.1" }, "connections[1].address"},
		{"mapping id", func(d *hnetcfg.Config) { d.Connections[0].Mappings[0].ID = "web" }, "connections[0].mappings[0].id"},
		{"mapping port", func(d *hnetcfg.Config) { d.Connections[0].Mappings[0].ExternalPort = 70000 }, "connections[0].mappings[0].externalPort"},
		{"mapping protocol", func(d *hnetcfg.Config) { d.Connections[0].Mappings[0].Protocol = "gre" }, "connections[0].mappings[0].protocol"},
		{"mapping target", func(d *hnetcfg.Config) { d.Connections[0].Mappings[0].TargetIPAddress = "10.0.0" }, "connections[0].mappings[0].targetIPAddress"},
		{"lease time", func(d *hnetcfg.Config) { d.Connections[1].DHCP.LeaseTime = "forever" }, "connections[1].dhcp.leaseTime"},
		{"pool start", func(d *hnetcfg.Config) { d.Connections[1].DHCP.PoolStart = "x" }, "connections[1].dhcp.poolStart"},
		{"reservation address", func(d *hnetcfg.Config) { d.Connections[1].DHCP.Reservations[0].IP = "y" }, "connections[1].dhcp.reservations[0].ip"},
		{"upstream", func(d *hnetcfg.Config) { d.DNS.Upstreams = []string{"nowhere"} }, "dns.upstream"},
		{"host address", func(d *hnetcfg.Config) { d.DNS.Hosts[0].IP = "z" }, "dns.hosts[0].ip"},
	} {
		t.Run(tt.what, func(t *testing.T) {
			d := good()
			tt.edit(&d)
			_, err := configFrom(d)
			wantField(t, tt.what, err, tt.field)
		})
	}
}

// The model's values come out on the wire as before the model had its
// own types: the same words, the same order, "" for no address.
func TestToWire(t *testing.T) {
	c := connectionProps(sharing.Connection{ID: "id", Name: "LAN", Interface: "lan0", Device: "veth",
		Status: sharing.StatusMediaDisconnected, Media: sharing.MediaBridge, Role: sharing.RolePrivate,
		Characteristics: sharing.CharFirewalled | sharing.CharAllUsers | sharing.CharSharedPrivate | sharing.CharAllowRename,
		PrivateAddress:  netip.MustParsePrefix("10.1.0.1/24"), Firewall: true})
	want := hnetcfg.ConnectionProps{ID: "id", Name: "LAN", Interface: "lan0", DeviceName: "veth", Status: "media-disconnected", MediaType: "bridge",
		Characteristics: []hnetcfg.Characteristic{"all-users", "allow-rename", "shared-private", "firewalled"},
		Sharing:         hnetcfg.SharingState{Enabled: true, Type: "private", Address: "10.1.0.1/24"}, FirewallEnabled: true}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("connection\n%+v\nwant\n%+v", c, want)
	}
	if c := connectionProps(sharing.Connection{}); c.Sharing.Enabled || c.Sharing.Type != "" || c.Characteristics == nil || c.Status != "disconnected" || c.MediaType != "none" {
		t.Errorf("an unshared connection: %+v", c)
	}
	m := mappingProps(sharing.Mapping{ID: 7, MappingSpec: sharing.MappingSpec{Name: "cam", Protocol: ipproto.UDP, ExternalPort: 9, InternalPort: 10,
		Target: sharing.Target{Name: "camera"}}, Unresolved: true, ApplyError: errors.New("netlink: busy")})
	wantM := hnetcfg.PortMappingProps{ID: "7", Name: "cam", Protocol: "udp", ExternalPort: 9, InternalPort: 10, TargetName: "camera",
		Unresolved: true, ApplyError: "netlink: busy", Origin: hnetcfg.OriginUser}
	if !reflect.DeepEqual(m, wantM) {
		t.Errorf("mapping\n%+v\nwant\n%+v", m, wantM)
	}
	d := mappingProps(sharing.Mapping{ID: 8, MappingSpec: sharing.MappingSpec{Name: "natpmp", Protocol: ipproto.TCP, ExternalPort: 5000, InternalPort: 5000,
		Target: sharing.Target{IP: netip.MustParseAddr("10.0.0.5")}}, Enabled: true, Origin: sharing.OriginNATPMP, Client: netip.MustParseAddr("10.0.0.5"),
		Expires: time.Date(2026, 11, 23, 13, 0, 0, 0, time.FixedZone("x", 3600))})
	if d.Origin != hnetcfg.OriginNATPMP || d.Client != "10.0.0.5" || d.Expires != "2026-11-23T12:00:00Z" {
		t.Errorf("a device's mapping: %+v", d)
	}
	l := leaseList([]sharing.LeaseInfo{{IP: netip.MustParseAddr("10.0.0.5"), Expiry: time.Date(2026, 11, 23, 12, 0, 0, 0, time.FixedZone("x", 3600))}})
	if l[0].IP != "10.0.0.5" || l[0].Expiry != "2026-11-23T11:00:00Z" {
		t.Errorf("lease %+v", l[0])
	}
}

func TestPortMapPolicyWire(t *testing.T) {
	good := hnetcfg.PortMapPolicy{
		Rules: []hnetcfg.PortMapRule{
			{Action: "deny", Clients: "192.168.137.10", External: "1-65535", Internal: "1-65535"},
			{Action: "allow", Clients: "192.168.137.0/24", External: "1024-65535", Internal: "22000"},
		},
		MinLifetime: "2m0s", MaxLifetime: "24h0m0s", Quota: 64, Rate: 20,
	}
	p, err := policyFrom(good)
	if err != nil {
		t.Fatal(err)
	}
	back := policyWire(p)
	good.Rules[0].Clients = "192.168.137.10/32"
	if !reflect.DeepEqual(back, good) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, good)
	}
	for _, tt := range []struct {
		mod   func(*hnetcfg.PortMapPolicy)
		field string
	}{
		{func(w *hnetcfg.PortMapPolicy) { w.Rules[1].Action = "permit" }, "rules[1].action"},
		{func(w *hnetcfg.PortMapPolicy) { w.Rules[0].Clients = "lan" }, "rules[0].clients"},
		{func(w *hnetcfg.PortMapPolicy) { w.Rules[0].Clients = "fd00::/64" }, "rules[0].clients"},
		{func(w *hnetcfg.PortMapPolicy) { w.Rules[1].External = "2000-1000" }, "rules[1].external"},
		{func(w *hnetcfg.PortMapPolicy) { w.Rules[1].Internal = "0" }, "rules[1].internal"},
		{func(w *hnetcfg.PortMapPolicy) { w.Rules[1].Internal = "70000" }, "rules[1].internal"},
		{func(w *hnetcfg.PortMapPolicy) { w.MinLifetime = "2 minutes" }, "minLifetime"},
		{func(w *hnetcfg.PortMapPolicy) { w.MaxLifetime = "" }, "maxLifetime"},
	} {
		w := good
		w.Rules = slices.Clone(good.Rules)
		tt.mod(&w)
		_, err := policyFrom(w)
		wantField(t, fmt.Sprintf("%+v", w), err, tt.field)
	}
}
