package nftfw

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/fw/fwtest"
	"github.com/netshare/netshare/internal/nettest"
)

// A restarted backend keeps the table its predecessor left when the rules
// are the same, changing only the elements that differ; otherwise it
// leaves the rebuilding to Replace.
func TestAdopt(t *testing.T) {
	requireNft(t)
	ns := nettest.New(t)
	sig := filepath.Join(t.TempDir(), "nftables.sig")
	pub := []netip.Addr{netip.MustParseAddr("198.51.100.2")}
	cfg := &fw.Config{Public: "wan0", PublicAddrs: pub, Private: []string{"lan0"}, Firewalled: []string{"wan0"},
		Mappings: []fw.Mapping{mapping("wan0", fw.TCP, 80, "192.168.137.10", 8080), mapping("wan0", fw.UDP, 53, "192.168.137.11", 53), mapping("wan0", fw.TCP, 22, "192.168.137.12", 22)}}
	first, err := New(ns.Handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	first.KeepSignature(sig)
	if err := first.Replace(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	first.Close()

	// The stored state moved while the daemon was down: one mapping
	// gone, one pointing elsewhere, one new.
	next := cfg.Clone()
	next.Mappings = []fw.Mapping{mapping("wan0", fw.TCP, 80, "192.168.137.20", 8080), mapping("wan0", fw.UDP, 53, "192.168.137.11", 53), mapping("wan0", fw.TCP, 443, "192.168.137.10", 443)}
	var second *Backend
	second, err = New(ns.Handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.KeepSignature(sig)
	kept, err := second.Adopt(ctx, next)
	if err != nil || !kept {
		t.Fatalf("Adopt = %v, %v; want the table kept", kept, err)
	}
	if d := fwtest.Diff(listed(t, ns), fwtest.Normalize(fw.Compile(next).String())); d != "" {
		t.Fatalf("the adopted table differs from what the state compiles to:\n%s", d)
	}
	// The backend knows the mappings it adopted: a delta applies.
	if err := second.UpdateMappings(ctx, []fw.Mapping{next.Mappings[2]}, nil); err != nil {
		t.Fatalf("a delta after Adopt: %v", err)
	}

	// Other rules (another public connection): not adopted, and Replace
	// then rebuilds.
	other := next.Clone()
	other.Public, other.Firewalled = "wan1", []string{"wan1"}
	if kept, err := second.Adopt(ctx, other); err != nil || kept {
		t.Fatalf("Adopt of other rules = %v, %v; want false", kept, err)
	}
	// A table changed by hand: not adopted.
	ns.MustRun(t, "nft", "add", "rule", "inet", fw.TableName, fw.Compile(next).Chains[0].Name, "counter")
	if kept, err := second.Adopt(ctx, next); err != nil || kept {
		t.Fatalf("Adopt of a table with a rule added by hand = %v, %v; want false", kept, err)
	}
	// No signature (a first start, or one that could not be written):
	// not adopted.
	os.Remove(sig)
	if err := second.Replace(ctx, next); err != nil {
		t.Fatal(err)
	}
	os.Remove(sig)
	if kept, _ := second.Adopt(ctx, next); kept {
		t.Fatal("adopted without a signature")
	}
}
