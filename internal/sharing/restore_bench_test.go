package sharing

import (
	"context"
	"fmt"
	"runtime"
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
