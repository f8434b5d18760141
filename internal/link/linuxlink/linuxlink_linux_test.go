package linuxlink

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/nettest"
)

func TestBackend(t *testing.T) {
	ns := nettest.New(t)
	ns.MustRun(t, "ip", "link", "add", "wan0", "type", "veth", "peer", "name", "peer0")
	ns.MustRun(t, "ip", "addr", "add", "198.51.100.2/24", "dev", "wan0")
	ns.MustRun(t, "ip", "link", "set", "wan0", "up")
	b, err := New(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	get := func(name string) link.Link {
		t.Helper()
		ls, err := b.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Name == name {
				return l
			}
		}
		t.Fatalf("no link %s in %+v", name, ls)
		return link.Link{}
	}
	lo := get("lo")
	if lo.Kind != "loopback" || !lo.Up || !slices.Contains(lo.Addrs, netip.MustParsePrefix("127.0.0.1/8")) {
		t.Errorf("lo: %+v", lo)
	}
	wan := get("wan0")
	// The peer is down, so wan0 has no carrier yet.
	if wan.Kind != "veth" || wan.Driver != "veth" || !wan.Up || wan.Carrier || !slices.Contains(wan.Addrs, netip.MustParsePrefix("198.51.100.2/24")) {
		t.Errorf("wan0: %+v", wan)
	}
	ns.MustRun(t, "ip", "link", "set", "peer0", "up")
	if wan := get("wan0"); !wan.Carrier {
		t.Errorf("wan0 without carrier after its peer came up: %+v", wan)
	}
	if err := b.SetDown(ctx, "wan0"); err != nil {
		t.Fatal(err)
	}
	if wan := get("wan0"); wan.Up || wan.Carrier {
		t.Errorf("wan0 after SetDown: %+v", wan)
	}
	if err := b.SetUp(ctx, "wan0"); err != nil {
		t.Fatal(err)
	}
	if wan := get("wan0"); !wan.Up {
		t.Errorf("wan0 after SetUp: %+v", wan)
	}
	if _, err := b.Set(ctx, &link.Config{Aliases: map[string]string{"wan0": "Upstream (ISP)"}}); err != nil {
		t.Fatal(err)
	}
	if out := ns.MustRun(t, "ip", "link", "show", "wan0"); !strings.Contains(out, "alias Upstream (ISP)") {
		t.Errorf("ip link show wan0:\n%s", out)
	}
	if wan := get("wan0"); wan.Alias != "Upstream (ISP)" {
		t.Errorf("alias %q", wan.Alias)
	}
	// Exactly these IPv4 addresses; the IPv6 ones stay; a second Set
	// changes nothing.
	own := get("wan0").Addrs
	p := netip.MustParsePrefix("192.168.137.1/24")
	for range 2 {
		got, err := b.Set(ctx, &link.Config{IPv4: map[string][]netip.Prefix{"wan0": {p}}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.IPv4["wan0"], []netip.Prefix{p}) {
			t.Fatalf("Set reached %v", got.IPv4)
		}
		var v4 []netip.Prefix
		for _, a := range get("wan0").Addrs {
			if a.Addr().Is4() {
				v4 = append(v4, a)
			}
		}
		if !slices.Equal(v4, []netip.Prefix{p}) {
			t.Fatalf("wan0's IPv4 addresses %v, want %s alone", v4, p)
		}
	}
	var own4 []netip.Prefix
	for _, a := range own {
		if a.Addr().Is4() {
			own4 = append(own4, a)
		}
	}
	// A failure does not stop the rest, and says what failed where.
	_, err = b.Set(ctx, &link.Config{IPv4: map[string][]netip.Prefix{"wan0": own4, "nonesuch0": {p}}, Aliases: map[string]string{"wan0": ""}})
	var oe *link.OpError
	if !errors.As(err, &oe) || oe.Link != "nonesuch0" || !strings.Contains(err.Error(), "on nonesuch0") {
		t.Fatalf("Set with a missing link: %v; want an OpError naming it", err)
	}
	if wan := get("wan0"); wan.Alias != "" || slices.Contains(wan.Addrs, p) {
		t.Errorf("the rest of a failed Set was not done: %+v", wan)
	}
	// Forwarding is per namespace: the test's, not the host's.
	hostFwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	for _, on := range []bool{true, false, true} {
		if _, err := b.Set(ctx, &link.Config{IPv4Forwarding: &on}); err != nil {
			t.Fatal(err)
		}
		if got, err := b.IPv4Forwarding(ctx); err != nil || got != on {
			t.Fatalf("IPv4Forwarding = %v, %v; want %v", got, err, on)
		}
		if out := ns.MustRun(t, "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != map[bool]string{true: "1", false: "0"}[on] {
			t.Fatalf("ip_forward in the namespace is %q, want %v", out, on)
		}
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(after) != string(hostFwd) {
		t.Fatalf("the host's ip_forward changed from %q to %q", hostFwd, after)
	}
	// Watch reports changes.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 16)
	if err := b.Watch(wctx, func() { changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	ns.MustRun(t, "ip", "addr", "add", "10.5.0.1/24", "dev", "wan0")
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not report an address change")
	}
	if err := b.SetUp(ctx, "nope0"); err == nil || !strings.Contains(err.Error(), `"nope0"`) {
		t.Errorf("SetUp(nope0) = %v", err)
	}
}
