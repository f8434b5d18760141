package sharing

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/store"
)

// BenchmarkRestore50k starts a Manager on a state of 50,000 enabled
// mappings, with the fake firewall: the Go side of a restore.
func BenchmarkRestore50k(b *testing.B) {
	h := newHarness(b)
	h.fill(50000)
	h.st.Close()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		st, err := store.Open(h.dir)
		if err != nil {
			b.Fatal(err)
		}
		m, err := New(context.Background(), Options{Desired: st.Desired, Runtime: st.Runtime, Links: h.links, Firewall: fw.NewFake()})
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(d.Milliseconds()), "ms")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), "MiB-alloc")
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "MiB-live")
		_ = m
		st.Close()
	}
}

// BenchmarkToggle times disable and enable of one mapping with N others
// present (real store, fake firewall): the Go and disk part of a change.
func BenchmarkToggle(b *testing.B) {
	for _, n := range []int{0, 50000} {
		b.Run(fmt.Sprint("N=", n), func(b *testing.B) {
			h := newHarness(b)
			h.fill(n)
			h.restart()
			p := h.add("wan0", "op", 2000, "192.168.137.10")
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.m.EnablePortMapping(ctx, "wan0", p.ID); err != nil {
					b.Fatal(err)
				}
				if _, err := h.m.DisablePortMapping(ctx, "wan0", p.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill shares wan0 as public and writes n enabled mappings of it straight
// to the store, as a long-running gateway would have them; the Manager
// sees them at its next start.
func (h *harness) fill(n int) {
	h.t.Helper()
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	wan := h.props("wan0").ID
	var batch store.Batch
	for i := range n {
		batch.PutMapping(store.Mapping{ID: uint64(i + 1), Connection: wan, Name: fmt.Sprint("fill-", i), Protocol: ipproto.TCP,
			ExternalPort: uint16(10000 + i), InternalPort: 80, TargetIP: mustIP("192.168.137.10"), Enabled: true})
	}
	if n == 0 {
		return
	}
	batch.SetLastMappingID(uint64(n))
	recs, _ := batch.Records()
	if _, err := h.st.Desired.Commit(ctx, store.Any, recs); err != nil {
		h.t.Fatal(err)
	}
}

// BenchmarkLease times devices' requests through the model and a real
// store (the fake firewall), from 64 goroutines at once, with N devices'
// mappings present: "renew" renews the caller's own mapping, moving its
// expiry (a store write, no kernel change), "map" makes a new one and
// releases it (two writes, two firewall changes).
func BenchmarkLease(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		for _, op := range []string{"renew", "map"} {
			b.Run(fmt.Sprintf("%s/N=%d", op, n), func(b *testing.B) {
				h := sharedHarness(b)
				h.clock = time.Time{} // the system's clock
				wan := h.props("wan0").ID
				var batch store.Batch
				for i := range n {
					host := netip.AddrFrom4([4]byte{192, 168, 137, byte(2 + i%250)})
					batch.PutMapping(store.Mapping{ID: uint64(100 + i), Connection: wan, Name: "fill", Protocol: ipproto.UDP,
						ExternalPort: uint16(2000 + i), InternalPort: uint16(2000 + i), TargetIP: host, Enabled: true,
						Origin: OriginNATPMP, Client: host, Expiry: time.Now().Add(time.Hour).UnixMilli()})
				}
				if n > 0 {
					batch.SetLastDeviceMappingID(uint64(100 + n))
					_, recs, _ := batch.Split()
					if _, err := h.st.Runtime.Commit(ctx, store.Any, recs); err != nil {
						b.Fatal(err)
					}
					h.restart()
				}
				var next atomic.Uint32
				b.SetParallelism(32) // 64 goroutines on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					k := next.Add(1)
					host := netip.AddrFrom4([4]byte{192, 168, 137, byte(2 + k%250)})
					port := uint16(40000 + k)
					r := natpmp(host, ipproto.TCP, port, time.Hour)
					for i := 0; pb.Next(); i++ {
						// A lifetime a second longer every other time: each
						// renewal moves the expiry, and is written.
						r.Lifetime = time.Hour + time.Duration(i%2)*time.Second
						if _, err := h.m.LeaseMapping(ctx, r); err != nil {
							b.Fatal(err)
						}
						if op == "map" {
							if err := h.m.ReleaseMapping(ctx, OriginNATPMP, host, ipproto.TCP, port, [12]byte{}); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			})
		}
	}
}
