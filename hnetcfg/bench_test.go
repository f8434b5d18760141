package hnetcfg_test

import (
	"context"
	"testing"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/daemon/daemontest"
)

// BenchmarkListMappings lists a connection's 100 mappings through the
// daemon's socket, as a client does.
func BenchmarkListMappings(b *testing.B) {
	ctx := context.Background()
	d := daemontest.Start(b)
	m := hnetcfg.NewSharingManager(d.Socket)
	c, err := m.Connection(ctx, "lan0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := m.INetSharingConfigurationForINetConnection(c)
	for i := range 100 {
		if _, err := cfg.AddPortMapping(ctx, "m", hnetcfg.NAT_PROTOCOL_TCP, 1000+i, 80, 0, "192.168.137.10", hnetcfg.ICSTT_IPADDRESS); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if ms, err := cfg.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT); err != nil || len(ms) != 100 {
			b.Fatal(len(ms), err)
		}
	}
}

// BenchmarkListConnections lists the connections through the socket.
func BenchmarkListConnections(b *testing.B) {
	ctx := context.Background()
	d := daemontest.Start(b)
	m := hnetcfg.NewSharingManager(d.Socket)
	for b.Loop() {
		if _, err := m.EnumEveryConnection(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
