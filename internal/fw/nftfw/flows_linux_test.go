package nftfw

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
)

// TestFlowCut: a removed mapping's flows are cut, all of them; when a
// mapping to the same target replaced it, only those from the peers the
// new one refuses.
func TestFlowCut(t *testing.T) {
	target := netip.MustParseAddr("192.168.137.10")
	old := fw.Mapping{Key: fw.Key{Interface: "wan0", Protocol: ipproto.UDP, ExternalPort: 7100}, Target: target, InternalPort: 7100}
	only, err := peers.Of(peers.Filter{Prefix: netip.MustParsePrefix("198.51.100.3/32"), Port: 4000})
	if err != nil {
		t.Fatal(err)
	}
	filtered := old
	filtered.Peers = only
	flow := func(proto ipproto.Proto, src string, dport uint16, replySrc string) *netlink.ConntrackFlow {
		s := netip.MustParseAddrPort(src)
		return &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{Protocol: uint8(proto), SrcIP: net.IP(s.Addr().AsSlice()), SrcPort: s.Port(), DstIP: net.ParseIP("198.51.100.1"), DstPort: dport},
			Reverse: netlink.IPTuple{Protocol: uint8(proto), SrcIP: net.ParseIP(replySrc), SrcPort: 7100},
		}
	}
	allowed := flow(ipproto.UDP, "198.51.100.3:4000", 7100, "192.168.137.10")
	other := flow(ipproto.UDP, "198.51.100.2:4000", 7100, "192.168.137.10")
	for _, tt := range []struct {
		name string
		cut  flowCut
		f    *netlink.ConntrackFlow
		want bool
	}{
		{"removed: every flow", flowCut{Mapping: old}, allowed, true},
		{"another protocol", flowCut{Mapping: old}, flow(ipproto.TCP, "198.51.100.3:4000", 7100, "192.168.137.10"), false},
		{"another port", flowCut{Mapping: old}, flow(ipproto.UDP, "198.51.100.3:4000", 7101, "192.168.137.10"), false},
		{"another target", flowCut{Mapping: old}, flow(ipproto.UDP, "198.51.100.3:4000", 7100, "192.168.137.11"), false},
		{"filtered: the peer allowed stays", flowCut{Mapping: old, by: &filtered}, allowed, false},
		{"filtered: another peer is cut", flowCut{Mapping: old, by: &filtered}, other, true},
		{"filter lifted: every flow stays", flowCut{Mapping: filtered, by: &old}, other, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cut.MatchConntrackFlow(tt.f); got != tt.want {
				t.Errorf("MatchConntrackFlow(%v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}
