package sharing

import (
	"slices"
	"strconv"
	"testing"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/store"
)

// Sharing a first connection, and unsharing the last, keep the DNS
// settings: the forwarding bookkeeping once replaced the whole settings
// record.
func TestForwardingKeepsDNSSettings(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.SetDNS(ctx, hnetcfg.DNSEdit{Upstreams: []string{"192.0.2.53"}}))
	h.must(h.m.AddHost(ctx, hnetcfg.DNSHost{Name: "nas", IP: "192.168.137.5"}))
	check := func(when string) {
		t.Helper()
		s, err := h.m.DNSSettings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Upstreams, []string{"192.0.2.53:53"}) || len(s.Hosts) != 1 || s.Hosts[0].Name != "nas" {
			t.Fatalf("%s: DNS settings %+v; want the upstream and the host kept", when, s)
		}
	}
	h.must(h.m.EnableSharing(ctx, "wan0", public))
	check("after sharing the first connection")
	h.restart()
	check("after a restart")
	h.must(h.m.DisableSharing(ctx, "wan0"))
	check("after unsharing the last connection")
	h.check()
}

// A restart of the daemon (the kernel keeps its table) takes the firewall
// state as it is, changing only the mappings that differ from the stored
// state; a reboot (an empty firewall) rebuilds it.
func TestRestartKeepsTheFirewall(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", public))
	h.must(h.m.EnableSharing(ctx, "lan0", private))
	web := h.add("wan0", "web", 80, "192.168.137.10")
	h.must(h.m.EnablePortMapping(ctx, "wan0", web.ID))
	dns := h.add("wan0", "dns", 53, "192.168.137.11")
	h.must(h.m.EnablePortMapping(ctx, "wan0", dns.ID))
	restart := func() {
		t.Helper()
		if err := h.st.Close(); err != nil {
			t.Fatal(err)
		}
		h.startOn() // checks that the firewall holds the stored state
	}
	replaces, _ := h.fw.Calls()
	adopts := h.fw.Adopts()
	restart()
	if r, _ := h.fw.Calls(); r != replaces || h.fw.Adopts() != adopts+1 {
		t.Fatalf("a restart: %d replaces (was %d), %d adopts (was %d); want the state kept", r, replaces, h.fw.Adopts(), adopts)
	}
	// While the daemon was down its state changed (a backup restored):
	// the restart changes those mappings only.
	h.must(h.m.DisablePortMapping(ctx, "wan0", dns.ID))
	before := h.fw.Config()
	h.fw.Replace(ctx, before) // as the kernel keeps it
	var b store.Batch
	b.DeleteMapping(mustID(t, web.ID))
	recs, _ := b.Records()
	if _, err := h.st.Desired.Commit(ctx, store.Any, recs); err != nil {
		t.Fatal(err)
	}
	restart()
	if len(h.fw.Config().Mappings) != 0 || h.fw.Adopts() != adopts+2 {
		t.Fatalf("after a restart on a changed state: %v, %d adopts", h.fw.Config().Mappings, h.fw.Adopts())
	}
	// A change of the rules (another role) is never adopted.
	h.must(h.m.DisableSharing(ctx, "lan0"))
	h.fw.Replace(ctx, h.fw.Config())
	h.fw.Replace(ctx, &fw.Config{Public: "wg0"}) // not what the state compiles to
	restart()
	if h.fw.Adopts() != adopts+2 {
		t.Fatalf("a firewall holding other rules was adopted")
	}
}

func mustID(t *testing.T, id string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
