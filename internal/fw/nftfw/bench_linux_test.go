package nftfw

import (
	"net/netip"
	"testing"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/nettest"
)

// BenchmarkUpdateMappings adds and removes one mapping per iteration, the
// kernel work of enabling and disabling a mapping.
func BenchmarkUpdateMappings(b *testing.B) {
	ns := nettest.New(b)
	be, err := New(ns.Handle, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	if err := be.Replace(ctx, &fw.Config{Public: "wan0", PublicAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}); err != nil {
		b.Fatal(err)
	}
	m := mapping("wan0", fw.TCP, 80, "192.168.137.10", 8080)
	b.Run("add", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			be.UpdateMappings(ctx, []fw.Mapping{m}, nil)
			b.StartTimer()
			if err := be.UpdateMappings(ctx, nil, []fw.Mapping{m}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("delete", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			be.UpdateMappings(ctx, nil, []fw.Mapping{m})
			b.StartTimer()
			if err := be.UpdateMappings(ctx, []fw.Mapping{m}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
