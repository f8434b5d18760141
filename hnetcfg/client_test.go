package hnetcfg_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/daemon/daemontest"
)

var ctx = context.Background()

func TestClientWalkthrough(t *testing.T) {
	d := daemontest.Start(t)
	m := hnetcfg.NewSharingManager(d.Socket)
	if ok, err := m.SharingInstalled(ctx); !ok || err != nil {
		t.Fatalf("SharingInstalled = %v, %v", ok, err)
	}
	every, err := m.EnumEveryConnection(ctx)
	if err != nil || len(every) != 3 {
		t.Fatalf("EnumEveryConnection = %d, %v", len(every), err)
	}
	wan, err := m.Connection(ctx, "wan0")
	if err != nil {
		t.Fatal(err)
	}
	lan, _ := m.Connection(ctx, "lan0")
	wanCfg := m.INetSharingConfigurationForINetConnection(wan)
	lanCfg := m.INetSharingConfigurationForINetConnection(lan)
	if err := wanCfg.EnableSharing(ctx, hnetcfg.ICSSHARINGTYPE_PUBLIC); err != nil {
		t.Fatal(err)
	}
	if err := lanCfg.EnableSharing(ctx, hnetcfg.ICSSHARINGTYPE_PRIVATE); err != nil {
		t.Fatal(err)
	}
	if on, _ := wanCfg.InternetFirewallEnabled(ctx); !on {
		t.Error("public connection without firewall")
	}
	if typ, _ := lanCfg.SharingConnectionType(ctx); typ != hnetcfg.ICSSHARINGTYPE_PRIVATE {
		t.Errorf("lan type %q", typ)
	}
	pub, _ := m.EnumPublicConnections(ctx, hnetcfg.ICSSC_DEFAULT)
	priv, _ := m.EnumPrivateConnections(ctx, hnetcfg.ICSSC_DEFAULT)
	if len(pub) != 1 || pub[0].ID() != wan.ID() || len(priv) != 1 || priv[0].ID() != lan.ID() {
		t.Fatalf("public %v, private %v", pub, priv)
	}

	pm, err := wanCfg.AddPortMapping(ctx, "web", hnetcfg.NAT_PROTOCOL_TCP, 80, 8080, 0, "192.168.137.10", hnetcfg.ICSTT_IPADDRESS)
	if err != nil {
		t.Fatal(err)
	}
	if pm.Props().Enabled {
		t.Fatal("new mapping is enabled")
	}
	if err := pm.Enable(ctx); err != nil || !pm.Props().Enabled {
		t.Fatalf("Enable: %v %+v", err, pm.Props())
	}
	if got := d.Firewall.Config().Mappings; len(got) != 1 || got[0].ExternalPort != 80 {
		t.Fatalf("firewall %v", got)
	}
	byName, err := wanCfg.AddPortMapping(ctx, "nas", hnetcfg.NAT_PROTOCOL_UDP, 5000, 5000, 0, "nas", hnetcfg.ICSTT_NAME)
	if err != nil || byName.Props().TargetName != "nas" {
		t.Fatalf("name target: %v %+v", err, byName)
	}
	_, err = wanCfg.AddPortMapping(ctx, "dup", hnetcfg.NAT_PROTOCOL_TCP, 80, 1, 0, "10.0.0.1", hnetcfg.ICSTT_IPADDRESS)
	if e := hresult.From(err); e.Code != hresult.InvalidArg || e.Reason != hresult.Conflict {
		t.Fatalf("duplicate: %v", err)
	}
	if err := pm.Edit(ctx, hnetcfg.PortMappingEdit{InternalPort: new(8081)}); err != nil || pm.Props().InternalPort != 8081 {
		t.Fatalf("Edit: %v %+v", err, pm.Props())
	}
	enabled, _ := wanCfg.EnumPortMappings(ctx, hnetcfg.ICSSC_ENABLED)
	all, _ := wanCfg.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	if len(enabled) != 1 || len(all) != 2 {
		t.Fatalf("enabled %v, all %v", enabled, all)
	}
	if err := wanCfg.DisableSharing(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := pm.Properties(ctx); p.Enabled {
		t.Error("DisableSharing left a mapping enabled")
	}
	if err := wanCfg.RemovePortMapping(ctx, byName); err != nil {
		t.Fatal(err)
	}
	if _, err := byName.Properties(ctx); !hresult.IsNotFound(err) {
		t.Fatalf("removed mapping: %v", err)
	}
	if err := lan.Rename(ctx, "Home"); err != nil || lan.Props().Name != "Home" {
		t.Fatalf("Rename: %v %+v", err, lan.Props())
	}
	if err := lan.Disconnect(ctx); err != nil || lan.Props().Status != hnetcfg.NCS_DISCONNECTED {
		t.Fatalf("Disconnect: %v %+v", err, lan.Props())
	}
	if err := lan.Connect(ctx); err != nil || lan.Props().Status == hnetcfg.NCS_DISCONNECTED {
		t.Fatalf("Connect: %v %+v", err, lan.Props())
	}
	if err := lan.Delete(ctx); hresult.CodeOf(err) != hresult.NotImpl {
		t.Errorf("Delete: %v", err)
	}
	if _, err := lan.Duplicate(ctx, "copy"); hresult.CodeOf(err) != hresult.NotImpl {
		t.Errorf("Duplicate: %v", err)
	}

	// Everything survives a restart.
	before, _ := m.EnumEveryConnection(ctx)
	d.Restart()
	after, _ := m.EnumEveryConnection(ctx)
	props := func(cs []*hnetcfg.Connection) string {
		var s string
		for _, c := range cs {
			s += fmt.Sprintf("%+v\n", c.Props())
		}
		return s
	}
	if props(before) != props(after) {
		t.Fatalf("before restart\n%s\nafter\n%s", props(before), props(after))
	}
	if p, err := pm.Properties(ctx); err != nil || p.InternalPort != 8081 {
		t.Fatalf("mapping after restart: %+v %v", p, err)
	}
}

func TestClientDaemonDown(t *testing.T) {
	d := daemontest.Start(t)
	d.Stop()
	m := hnetcfg.NewSharingManager(d.Socket)
	_, err := m.EnumEveryConnection(ctx)
	if e := hresult.From(err); e.Code != hresult.Fail || !contains(e.Message, d.Socket) {
		t.Fatalf("daemon down: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestConcurrentClients has many clients add, enable and remove mappings
// through the socket at once; the daemon ends with a consistent state that
// survives a restart.
func TestConcurrentClients(t *testing.T) {
	d := daemontest.Start(t)
	m := hnetcfg.NewSharingManager(d.Socket)
	wan, _ := m.Connection(ctx, "wan0")
	cfg := m.INetSharingConfigurationForINetConnection(wan)
	if err := cfg.EnableSharing(ctx, hnetcfg.ICSSHARINGTYPE_PUBLIC); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			c := hnetcfg.NewSharingManager(d.Socket)
			wc, err := c.Connection(ctx, "wan0")
			if err != nil {
				t.Error(err)
				return
			}
			s := c.INetSharingConfigurationForINetConnection(wc)
			for i := range 25 {
				pm, err := s.AddPortMapping(ctx, fmt.Sprintf("m%d-%d", w, i), hnetcfg.NAT_PROTOCOL_TCP, 2000+w*100+i, 80, 0, "192.168.137.50", hnetcfg.ICSTT_IPADDRESS)
				if err != nil {
					t.Error(err)
					return
				}
				if err := pm.Enable(ctx); err != nil {
					t.Error(err)
				}
				if i%2 == 0 {
					if err := pm.Delete(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	all, err := cfg.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	if err != nil || len(all) != 16*12 {
		t.Fatalf("%d mappings (%v), want %d", len(all), err, 16*12)
	}
	ports := func() []int {
		var ps []int
		for _, m := range d.Firewall.Config().Mappings {
			ps = append(ps, int(m.ExternalPort))
		}
		return ps
	}
	var want []int
	for _, pm := range all {
		want = append(want, pm.Props().ExternalPort)
	}
	slices.Sort(want)
	if got := ports(); !slices.Equal(got, want) {
		t.Fatalf("firewall ports %v, want %v", got, want)
	}
	d.Restart()
	again, _ := cfg.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	if len(again) != len(all) {
		t.Fatalf("%d mappings after restart, want %d", len(again), len(all))
	}
	if got := ports(); !slices.Equal(got, want) {
		t.Fatalf("firewall ports after restart %v, want %v", got, want)
	}
}

// TestPropertiesAreReplaced checks that fetching or changing an object
// replaces its properties whole: a field the daemon leaves out of its
// answer (omitted when empty) must not keep the value it had before.
func TestPropertiesAreReplaced(t *testing.T) {
	d := daemontest.Start(t)
	m := hnetcfg.NewSharingManager(d.Socket)
	lan, err := m.Connection(ctx, "lan0")
	if err != nil {
		t.Fatal(err)
	}
	lanCfg := m.INetSharingConfigurationForINetConnection(lan)
	if err := lanCfg.EnableSharing(ctx, hnetcfg.ICSSHARINGTYPE_PRIVATE); err != nil {
		t.Fatal(err)
	}
	if _, err := lan.GetProperties(ctx); err != nil || lan.Props().Sharing.Type != hnetcfg.ICSSHARINGTYPE_PRIVATE || lan.Props().Sharing.Address == "" {
		t.Fatalf("shared lan0: %+v, %v", lan.Props().Sharing, err)
	}
	if err := lanCfg.DisableSharing(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := lan.GetProperties(ctx); err != nil || p.Sharing != (hnetcfg.SharingState{}) || lan.Props().Sharing != (hnetcfg.SharingState{}) {
		t.Errorf("unshared lan0 reads as %+v (Props %+v), %v", p.Sharing, lan.Props().Sharing, err)
	}

	// A name target that resolves, then is edited to one that does not:
	// resolvedIPAddress is left out of the answer and must read empty.
	if err := lanCfg.EnableSharing(ctx, hnetcfg.ICSSHARINGTYPE_PRIVATE); err != nil {
		t.Fatal(err)
	}
	if _, err := lanCfg.Reserve(ctx, hnetcfg.Reservation{MAC: "02:00:00:00:00:01", IP: "192.168.137.50", Name: "nas"}); err != nil {
		t.Fatal(err)
	}
	wan, _ := m.Connection(ctx, "wan0")
	wanCfg := m.INetSharingConfigurationForINetConnection(wan)
	if err := wanCfg.EnableSharing(ctx, hnetcfg.ICSSHARINGTYPE_PUBLIC); err != nil {
		t.Fatal(err)
	}
	pm, err := wanCfg.AddPortMapping(ctx, "nas", hnetcfg.NAT_PROTOCOL_TCP, 445, 445, 0, "nas", hnetcfg.ICSTT_NAME)
	if err != nil || pm.Props().ResolvedIPAddress != "192.168.137.50" {
		t.Fatalf("mapping to nas: %+v, %v", pm.Props(), err)
	}
	if err := pm.Edit(ctx, hnetcfg.PortMappingEdit{TargetName: new("nobody")}); err != nil {
		t.Fatal(err)
	}
	if p := pm.Props(); p.ResolvedIPAddress != "" || !p.Unresolved {
		t.Errorf("after the edit to an unknown name: %+v", p)
	}
}
