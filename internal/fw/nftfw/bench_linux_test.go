package nftfw

import (
	"net/netip"
	"testing"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
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
	m := mapping("wan0", ipproto.TCP, 80, "192.168.137.10", 8080)
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

// BenchmarkReplace50k replaces the table with 50,000 mappings, the
// kernel work of a restore: over no table ("fresh"), and over the table a
// daemon left ("over").
func BenchmarkReplace50k(b *testing.B) {
	ns := nettest.New(b)
	be, err := New(ns.Handle, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	cfg := &fw.Config{Public: "wan0", PublicAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}, Private: []string{"lan0"}, Firewalled: []string{"wan0"}}
	for i := range 50000 {
		cfg.Mappings = append(cfg.Mappings, mapping("wan0", ipproto.TCP, uint16(10000+i), "192.168.137.10", 80))
	}
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			be.Remove(ctx)
			b.StartTimer()
			if err := be.Replace(ctx, cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("over", func(b *testing.B) {
		for b.Loop() {
			if err := be.Replace(ctx, cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
