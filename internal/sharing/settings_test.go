package sharing

import (
	"net/netip"
	"slices"
	"testing"
)

// Sharing a first connection, and unsharing the last, keep the DNS
// settings: the forwarding bookkeeping once replaced the whole settings
// record.
func TestForwardingKeepsDNSSettings(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.SetDNS(ctx, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}))
	h.must(h.m.AddHost(ctx, DNSHost{Name: "nas", IP: mustIP("192.168.137.5")}))
	check := func(when string) {
		t.Helper()
		s, err := h.m.DNSSettings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Upstreams, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}) || len(s.Hosts) != 1 || s.Hosts[0].Name != "nas" {
			t.Fatalf("%s: DNS settings %+v; want the upstream and the host kept", when, s)
		}
	}
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	check("after sharing the first connection")
	h.restart()
	check("after a restart")
	h.must(h.m.DisableSharing(ctx, "wan0"))
	check("after unsharing the last connection")
	h.check()
}
