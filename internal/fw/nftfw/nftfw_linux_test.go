package nftfw

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/fw/fwtest"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/nettest"
	"github.com/netshare/netshare/internal/peers"
)

var ctx = context.Background()

func requireNft(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("the nft command is needed as the test oracle: apt-get install nftables")
	}
}

// listed returns what `nft list table inet netshare` prints in ns,
// normalized.
func listed(t *testing.T, ns *nettest.NetNS) string {
	t.Helper()
	return fwtest.Normalize(ns.MustRun(t, "nft", "list", "table", "inet", fw.TableName))
}

func newBackend(t *testing.T, ns *nettest.NetNS) *Backend {
	t.Helper()
	b, err := New(ns.Handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestGoldenInKernel applies each golden Config in a fresh namespace and
// compares the kernel's table, as nft lists it, with the golden text.
func TestGoldenInKernel(t *testing.T) {
	requireNft(t)
	for _, g := range fwtest.ReadGoldens(t, "../testdata") {
		t.Run(g.Path, func(t *testing.T) {
			ns := nettest.New(t)
			b := newBackend(t, ns)
			if err := b.Replace(ctx, g.Config); err != nil {
				t.Fatal(err)
			}
			if d := fwtest.Diff(listed(t, ns), fwtest.Normalize(g.Want)); d != "" {
				t.Fatalf("kernel table differs from %s:\n%s", g.Path, d)
			}
			// Replacing again with the same Config changes nothing.
			if err := b.Replace(ctx, g.Config); err != nil {
				t.Fatal(err)
			}
			if d := fwtest.Diff(listed(t, ns), fwtest.Normalize(g.Want)); d != "" {
				t.Fatalf("after a second Replace:\n%s", d)
			}
		})
	}
}

func mapping(iface string, proto ipproto.Proto, ext uint16, target string, in uint16) fw.Mapping {
	return fw.Mapping{Key: fw.Key{Interface: iface, Protocol: proto, ExternalPort: ext}, Target: netip.MustParseAddr(target), InternalPort: in}
}

// TestUpdateMappings checks that deltas leave the table equal to what the
// whole Config compiles to, and that a failing batch changes nothing.
func TestUpdateMappings(t *testing.T) {
	requireNft(t)
	ns := nettest.New(t)
	b := newBackend(t, ns)
	cfg := &fw.Config{Public: "wan0", PublicAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}, Private: []string{"lan0"}, Firewalled: []string{"wan0"}}
	if err := b.Replace(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	web := mapping("wan0", ipproto.TCP, 80, "192.168.137.10", 8080)
	dns := mapping("wan0", ipproto.UDP, 53, "192.168.137.11", 53)
	web2 := mapping("wan0", ipproto.TCP, 80, "192.168.137.12", 80)
	// A device's mapping with remote peer filters, and the same with other
	// filters (a PCP client adding some).
	game := mapping("wan0", ipproto.UDP, 41641, "192.168.137.13", 41641)
	game.Peers, _ = peers.Of(peers.Filter{Prefix: netip.MustParsePrefix("203.0.113.0/24")})
	game2 := game
	game2.Peers, _ = game.Peers.Add(peers.Filter{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Port: 3478})
	steps := []struct {
		del, add []fw.Mapping
		want     []fw.Mapping
	}{
		{nil, []fw.Mapping{web, dns}, []fw.Mapping{web, dns}},
		{[]fw.Mapping{web}, []fw.Mapping{web2}, []fw.Mapping{web2, dns}}, // an edit: same key, new target
		{[]fw.Mapping{dns}, nil, []fw.Mapping{web2}},
		{nil, []fw.Mapping{game}, []fw.Mapping{web2, game}},
		{[]fw.Mapping{game}, []fw.Mapping{game2}, []fw.Mapping{web2, game2}},
		{[]fw.Mapping{game2}, nil, []fw.Mapping{web2}},
	}
	for i, s := range steps {
		if err := b.UpdateMappings(ctx, s.del, s.add); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want := cfg.Clone()
		want.Mappings = s.want
		if d := fwtest.Diff(listed(t, ns), fwtest.Normalize(fw.Compile(want).String())); d != "" {
			t.Fatalf("step %d:\n%s", i, d)
		}
	}
	// Deleting an absent element fails the whole batch: the add in it
	// does not happen either.
	before := listed(t, ns)
	if err := b.UpdateMappings(ctx, []fw.Mapping{dns}, []fw.Mapping{web}); err == nil {
		t.Fatal("deleting an absent mapping succeeded")
	}
	if after := listed(t, ns); after != before {
		t.Fatalf("a failed batch changed the table:\n%s", fwtest.Diff(after, before))
	}
	// The backend still works after a failed batch.
	if err := b.UpdateMappings(ctx, nil, []fw.Mapping{dns}); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if out, _ := ns.Run("nft", "list", "tables"); strings.Contains(out, fw.TableName) {
		t.Fatalf("table still there after Remove: %s", out)
	}
}

// TestCheckRestores has another program change or delete the table and
// checks that Check puts it back, with its mappings, and leaves it alone
// when only other tables change.
func TestCheckRestores(t *testing.T) {
	requireNft(t)
	ns := nettest.New(t)
	b := newBackend(t, ns)
	cfg := &fw.Config{Public: "wan0", Private: []string{"lan0"}, Firewalled: []string{"wan0"}}
	if err := b.Replace(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	web := mapping("wan0", ipproto.TCP, 80, "192.168.137.10", 8080)
	if err := b.UpdateMappings(ctx, nil, []fw.Mapping{web}); err != nil {
		t.Fatal(err)
	}
	cfg.Mappings = []fw.Mapping{web}
	want := fwtest.Normalize(fw.Compile(cfg).String())
	if restored, err := b.Check(ctx); restored || err != nil {
		t.Fatalf("Check on an intact table = %v, %v", restored, err)
	}
	for _, change := range [][]string{
		{"nft", "delete", "table", "inet", "netshare"},
		{"nft", "flush", "chain", "inet", "netshare", "forward"},
		{"nft", "add", "rule", "inet", "netshare", "input", "accept"},
		{"nft", "delete", "element", "inet", "netshare", "private", "{", "lan0", "}"},
		{"nft", "flush", "ruleset"},
	} {
		ns.MustRun(t, change...)
		restored, err := b.Check(ctx)
		if err != nil || !restored {
			t.Fatalf("after %v: Check = %v, %v; want restored", change, restored, err)
		}
		if d := fwtest.Diff(listed(t, ns), want); d != "" {
			t.Fatalf("after %v the table is not back:\n%s", change, d)
		}
	}
	// Other tables are not netshare's business.
	ns.MustRun(t, "nft", "add", "table", "ip", "other")
	if restored, err := b.Check(ctx); restored || err != nil {
		t.Fatalf("Check after another table changed = %v, %v", restored, err)
	}
}
