package sharing

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/conntrack"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
	"github.com/netshare/netshare/internal/portmap"
)

var (
	lanHost  = mustIP("192.168.137.10")
	lanHost2 = mustIP("192.168.137.11")
)

// sharedHarness shares wan0 as public and lan0 as private, with a clock.
func sharedHarness(t testing.TB) *harness {
	h := newHarness(t)
	h.clock = time.Unix(1_800_000_000, 0)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	h.must(h.m.EnableSharing(ctx, "lan0", RolePrivate, noAddr))
	return h
}

func isClash(err error) bool {
	var e *hresult.Error
	return errors.As(err, &e) && e.Reason == hresult.Conflict
}

func natpmp(client netip.Addr, proto ipproto.Proto, port uint16, life time.Duration) LeaseRequest {
	return LeaseRequest{Origin: OriginNATPMP, Client: client, Target: client, Protocol: proto, InternalPort: port, Lifetime: life}
}

func (h *harness) lease(r LeaseRequest) Mapping {
	h.t.Helper()
	mp, err := h.m.LeaseMapping(ctx, r)
	if err != nil {
		h.t.Fatalf("LeaseMapping(%+v): %v", r, err)
	}
	h.check()
	return mp
}

func TestDeviceMappingLease(t *testing.T) {
	h := sharedHarness(t)
	rev := h.m.rev
	mp := h.lease(natpmp(lanHost, ipproto.UDP, 41641, 2*time.Hour))
	if mp.Origin != OriginNATPMP || mp.Client != lanHost || mp.Target.IP != lanHost || mp.ExternalPort != 41641 || !mp.Enabled ||
		!mp.Expires.Equal(h.clock.Add(2*time.Hour)) || mp.Connection != h.props("wan0").ID {
		t.Fatalf("leased %+v", mp)
	}
	if h.m.rev != rev {
		t.Errorf("a device's mapping moved the desired state's revision from %d to %d", rev, h.m.rev)
	}
	ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{})
	if len(ms) != 1 || ms[0].ID != mp.ID || ms[0].Origin != OriginNATPMP {
		t.Fatalf("listed %+v", ms)
	}
	if len(h.fw.Config().Mappings) != 1 {
		t.Fatalf("the firewall holds %+v", h.fw.Config().Mappings)
	}

	t.Run("renewal keeps the port and does not touch the kernel", func(t *testing.T) {
		_, updates := h.fw.Calls()
		h.clock = h.clock.Add(time.Hour)
		again := h.lease(natpmp(lanHost, ipproto.UDP, 41641, 2*time.Hour))
		if again.ID != mp.ID || again.ExternalPort != mp.ExternalPort || !again.Expires.Equal(h.clock.Add(2*time.Hour)) {
			t.Fatalf("renewed as %+v", again)
		}
		if _, u := h.fw.Calls(); u != updates {
			t.Errorf("a renewal sent %d firewall updates", u-updates)
		}
	})
	t.Run("a person's mapping may not take a leased port", func(t *testing.T) {
		before := h.state()
		_, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: "x", Protocol: ipproto.UDP, ExternalPort: 41641, InternalPort: 1, Target: Target{IP: lanHost2}})
		if !isClash(err) {
			t.Fatalf("AddPortMapping on a leased port: %v", err)
		}
		if h.state() != before {
			t.Error("the refused add changed the state")
		}
	})
	t.Run("the document leaves devices' mappings out and keeps them", func(t *testing.T) {
		doc := h.config()
		if w := connOf(&doc, "wan0"); len(w.Mappings) != 0 {
			t.Fatalf("the document lists %+v", w.Mappings)
		}
		h.apply(doc, false)
		h.check()
		if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 1 {
			t.Fatalf("after applying the document: %+v", ms)
		}
		w := connOf(&doc, "wan0")
		w.Mappings = append(w.Mappings, MappingConfig{MappingSpec: MappingSpec{Name: "x", Protocol: ipproto.UDP, ExternalPort: 41641, InternalPort: 1, Target: Target{IP: lanHost2}}})
		if _, err := h.m.ApplyConfig(ctx, doc, doc.Revision, false); !isClash(err) {
			t.Fatalf("a document taking a leased port: %v", err)
		}
	})
	t.Run("a device's mapping is removed, not changed", func(t *testing.T) {
		before := h.state()
		port := uint16(9999)
		for name, err := range map[string]error{
			"disable": func() error { _, err := h.m.DisablePortMapping(ctx, "wan0", mp.ID); return err }(),
			"edit": func() error {
				_, err := h.m.EditPortMapping(ctx, "wan0", mp.ID, MappingEdit{ExternalPort: &port})
				return err
			}(),
		} {
			if hresult.CodeOf(err) != hresult.InvalidArg {
				t.Errorf("%s: %v, want E_INVALIDARG", name, err)
			}
		}
		if h.state() != before {
			t.Error("a refused change of a device's mapping changed the state")
		}
	})
	t.Run("restart keeps it", func(t *testing.T) {
		h.restart()
		if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 1 || ms[0].ID != mp.ID {
			t.Fatalf("after a restart: %+v", ms)
		}
		next := h.lease(natpmp(lanHost2, ipproto.TCP, 8080, time.Hour))
		if next.ID <= mp.ID {
			t.Errorf("a new mapping after the restart got id %d, not above %d", next.ID, mp.ID)
		}
	})
}

func TestDeviceMappingPorts(t *testing.T) {
	h := sharedHarness(t)
	h.must(h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: "game", Protocol: ipproto.UDP, ExternalPort: 27015, InternalPort: 27015, Target: Target{IP: lanHost2}}))
	tests := []struct {
		name string
		req  LeaseRequest
		port uint16
		err  error
	}{
		{"free", natpmp(lanHost, ipproto.UDP, 5000, time.Hour), 5000, nil},
		{"suggested", func() LeaseRequest {
			r := natpmp(lanHost, ipproto.UDP, 5001, time.Hour)
			r.SuggestedPort = 6000
			return r
		}(), 6000, nil},
		{"taken by a person: the next", natpmp(lanHost, ipproto.UDP, 27015, time.Hour), 27016, nil},
		{"taken, other protocol", natpmp(lanHost, ipproto.TCP, 27015, time.Hour), 27015, nil},
		{"taken, prefer failure", func() LeaseRequest {
			r := natpmp(lanHost, ipproto.UDP, 7000, time.Hour)
			r.Origin, r.SuggestedPort, r.PreferFailure = OriginPCP, 27015, true
			return r
		}(), 0, ErrPortTaken},
		{"well-known port", natpmp(lanHost, ipproto.TCP, 80, time.Hour), 1024, nil},
		{"well-known, prefer failure", func() LeaseRequest {
			r := natpmp(lanHost, ipproto.TCP, 81, time.Hour)
			r.Origin, r.PreferFailure = OriginPCP, true
			return r
		}(), 0, ErrNotAllowed},
		{"wraps round", natpmp(lanHost, ipproto.TCP, 65535, time.Hour), 65535, nil},
		{"after 65535", func() LeaseRequest {
			r := natpmp(lanHost2, ipproto.TCP, 9, time.Hour)
			r.SuggestedPort = 65535
			return r
		}(), 1025, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.state()
			mp, err := h.m.LeaseMapping(ctx, tt.req)
			if !errors.Is(err, tt.err) || (err == nil && mp.ExternalPort != tt.port) {
				t.Fatalf("LeaseMapping = port %d, %v; want %d, %v", mp.ExternalPort, err, tt.port, tt.err)
			}
			if err != nil && h.state() != before {
				t.Error("a refused request changed the state")
			}
			h.check()
		})
	}
	for _, r := range []LeaseRequest{
		{Origin: OriginUser, Client: lanHost, Target: lanHost, Protocol: ipproto.TCP, InternalPort: 1, Lifetime: time.Hour},
		{Origin: OriginNATPMP, Client: mustIP("fd00::1"), Target: mustIP("fd00::1"), Protocol: ipproto.TCP, InternalPort: 1, Lifetime: time.Hour},
		{Origin: OriginNATPMP, Client: lanHost, Target: lanHost, Protocol: 47, InternalPort: 1, Lifetime: time.Hour},
		{Origin: OriginNATPMP, Client: lanHost, Target: lanHost, Protocol: ipproto.TCP, Lifetime: time.Hour},
		{Origin: OriginNATPMP, Client: lanHost, Target: lanHost, Protocol: ipproto.TCP, InternalPort: 1},
	} {
		if _, err := h.m.LeaseMapping(ctx, r); hresult.CodeOf(err) != hresult.InvalidArg {
			t.Errorf("LeaseMapping(%+v) = %v, want E_INVALIDARG", r, err)
		}
	}
}

func TestDeviceMappingOwnership(t *testing.T) {
	h := sharedHarness(t)
	a, b := [12]byte{1}, [12]byte{2}
	r := LeaseRequest{Origin: OriginPCP, Client: lanHost, Target: lanHost, Protocol: ipproto.TCP, InternalPort: 22000, Lifetime: time.Hour, Nonce: a}
	mp := h.lease(r)
	other := r
	other.Nonce = b
	if _, err := h.m.LeaseMapping(ctx, other); !errors.Is(err, ErrNotOwner) || hresult.CodeOf(err) != hresult.AccessDenied {
		t.Fatalf("a renewal with another nonce: %v", err)
	}
	if err := h.m.ReleaseMapping(ctx, OriginPCP, lanHost, ipproto.TCP, 22000, b); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("a release with another nonce: %v", err)
	}
	// NAT-PMP has no nonce: the same host renews it.
	if again := h.lease(natpmp(lanHost, ipproto.TCP, 22000, time.Hour)); again.ID != mp.ID {
		t.Fatalf("NAT-PMP renewal made %+v", again)
	}
	if err := h.m.ReleaseMapping(ctx, OriginPCP, lanHost, ipproto.TCP, 22000, a); err != nil {
		t.Fatal(err)
	}
	h.check()
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 0 {
		t.Fatalf("after the release: %+v", ms)
	}
	if err := h.m.ReleaseMapping(ctx, OriginPCP, lanHost, ipproto.TCP, 22000, a); err != nil {
		t.Fatalf("releasing nothing: %v", err)
	}

	h.lease(natpmp(lanHost, ipproto.UDP, 1, time.Hour))
	h.lease(natpmp(lanHost, ipproto.UDP, 2, time.Hour))
	h.lease(natpmp(lanHost, ipproto.TCP, 3, time.Hour))
	h.lease(natpmp(lanHost2, ipproto.UDP, 4, time.Hour))
	if err := h.m.ReleaseAll(ctx, lanHost, ipproto.UDP); err != nil {
		t.Fatal(err)
	}
	h.check()
	ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{})
	if len(ms) != 2 || ms[0].InternalPort != 3 || ms[1].Target.IP != lanHost2 {
		t.Fatalf("after releasing lanHost's UDP mappings: %+v", ms)
	}
}

func TestDeviceMappingExpiry(t *testing.T) {
	h := sharedHarness(t)
	h.clock = h.clock.Add(400 * time.Millisecond) // not on a second
	start := h.clock
	short := h.lease(natpmp(lanHost, ipproto.UDP, 5000, 3*time.Minute))
	h.lease(natpmp(lanHost, ipproto.UDP, 5001, time.Hour))
	select {
	case <-h.m.ExpiryChanged():
	default:
		t.Error("no wake-up for the first expiry")
	}
	if next, err := h.m.ExpireMappings(ctx); err != nil || !next.Equal(short.Expires) {
		t.Fatalf("ExpireMappings before any end: next %v, %v; want %v", next, err, short.Expires)
	}
	// A lease ends at its lifetime to the millisecond, neither before nor
	// rounded up to a second.
	h.clock = start.Add(3*time.Minute - time.Millisecond)
	if _, err := h.m.ExpireMappings(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 2 {
		t.Fatalf("a millisecond before the end: %d mappings", len(ms))
	}
	h.clock = start.Add(3 * time.Minute)
	next, err := h.m.ExpireMappings(ctx)
	if err != nil || !next.Equal(start.Add(time.Hour)) {
		t.Fatalf("ExpireMappings: next %v, %v", next, err)
	}
	h.check()
	ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{})
	if len(ms) != 1 || ms[0].InternalPort != 5001 {
		t.Fatalf("after the first expiry: %+v", ms)
	}
	// A renewal moves the end; what ended while netshare was stopped is
	// gone when it starts again, from the kernel and the store.
	h.clock = start.Add(30 * time.Minute)
	h.lease(natpmp(lanHost, ipproto.UDP, 5001, time.Hour))
	h.clock = start.Add(80 * time.Minute)
	if _, err := h.m.ExpireMappings(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 1 {
		t.Fatalf("the renewed mapping ended early: %+v", ms)
	}
	h.clock = start.Add(2 * time.Hour)
	h.restart()
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 0 || len(h.fw.Config().Mappings) != 0 {
		t.Fatalf("after a restart past the end: %+v", ms)
	}
	if next, _ := h.m.ExpireMappings(ctx); !next.IsZero() {
		t.Errorf("next expiry %v with none left", next)
	}
}

func TestDeviceMappingsEndWithSharing(t *testing.T) {
	h := newHarness(t)
	if _, err := h.m.LeaseMapping(ctx, natpmp(lanHost, ipproto.UDP, 5000, time.Hour)); !errors.Is(err, ErrNoPublic) {
		t.Fatalf("without a public connection: %v", err)
	}
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	h.must(h.m.EnableSharing(ctx, "lan0", RolePrivate, noAddr))
	h.lease(natpmp(lanHost, ipproto.UDP, 5000, time.Hour))
	gone := h.lease(natpmp(lanHost2, ipproto.UDP, 5001, time.Hour))
	h.must(nil, h.m.RemovePortMapping(ctx, "wan0", gone.ID))
	user := h.add("wan0", "web", 80, "192.168.137.20")
	h.must(h.m.DisableSharing(ctx, "wan0"))
	ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{})
	if len(ms) != 1 || ms[0].ID != user.ID {
		t.Fatalf("after unsharing: %+v", ms)
	}
}

func TestDeviceQuota(t *testing.T) {
	h := sharedHarness(t)
	for i := range DefaultPortMapPolicy.Quota {
		h.lease(natpmp(lanHost, ipproto.UDP, uint16(2000+i), time.Hour))
	}
	before := h.state()
	_, err := h.m.LeaseMapping(ctx, natpmp(lanHost, ipproto.UDP, 3000, time.Hour))
	if !errors.Is(err, ErrQuota) || hresult.CodeOf(err) != hresult.AccessDenied {
		t.Fatalf("over the quota: %v", err)
	}
	if h.state() != before {
		t.Error("the refused lease changed the state")
	}
	// A renewal is not a new mapping; another host has its own quota.
	h.lease(natpmp(lanHost, ipproto.UDP, 2000, time.Hour))
	h.lease(natpmp(lanHost2, ipproto.UDP, 3000, time.Hour))
	if err := h.m.ReleaseMapping(ctx, OriginNATPMP, lanHost, ipproto.UDP, 2001, [12]byte{}); err != nil {
		t.Fatal(err)
	}
	h.lease(natpmp(lanHost, ipproto.UDP, 3000, time.Hour))
}

func TestNATTraversalSetting(t *testing.T) {
	h := sharedHarness(t)
	if svc := h.services(); len(svc.Networks) != 1 || svc.Networks[0].PortMap {
		t.Fatalf("NAT traversal is on by default: %+v", svc.Networks)
	}
	c, err := h.m.SetNATTraversal(ctx, "lan0", true)
	if err != nil || !c.NATTraversal {
		t.Fatalf("SetNATTraversal: %+v, %v", c, err)
	}
	h.check()
	if svc := h.services(); !svc.Networks[0].PortMap {
		t.Fatalf("the services were not told: %+v", svc.Networks)
	}
	if doc := h.config(); !connOf(&doc, "lan0").NATTraversal {
		t.Error("the document does not say it")
	}
	pm := h.m.PortMapper()
	addr, epoch, err := pm.External()
	if err != nil || addr != mustIP("198.51.100.2") || epoch.IsZero() {
		t.Fatalf("External = %v, %v, %v", addr, epoch, err)
	}
	g, err := pm.Map(ctx, portmap.Request{Protocol: portmap.PCP, Client: lanHost, Target: lanHost, Proto: ipproto.UDP, InternalPort: 4000, Lifetime: time.Hour})
	if err != nil || g.ExternalPort != 4000 || g.Lifetime != time.Hour {
		t.Fatalf("Map = %+v, %v", g, err)
	}
	if _, err := pm.Map(ctx, portmap.Request{Protocol: portmap.PCP, Client: lanHost, Target: lanHost, Proto: ipproto.UDP, InternalPort: 4000, Lifetime: time.Hour, Nonce: [12]byte{1}}); !errors.Is(err, portmap.ErrNotOwner) {
		t.Fatalf("another nonce: %v", err)
	}
	h.clock = h.clock.Add(time.Hour)
	h.restart()
	if _, again, _ := h.m.PortMapper().External(); !again.Equal(epoch) {
		t.Errorf("the epoch moved from %v to %v across a restart", epoch, again)
	}
	h.must(h.m.SetNATTraversal(ctx, "lan0", false))
	if svc := h.services(); svc.Networks[0].PortMap {
		t.Fatal("still on")
	}
	h.must(h.m.DisableSharing(ctx, "wan0"))
	if _, _, err := h.m.PortMapper().External(); !errors.Is(err, portmap.ErrNoPublic) {
		t.Errorf("External without a public connection: %v", err)
	}
}

// When the public address moves, the devices' mappings end and a new
// epoch begins, which the services announce: NAT-PMP and PCP clients map
// again on the new address.
func TestPublicAddressMoves(t *testing.T) {
	h := sharedHarness(t)
	h.must(h.m.SetNATTraversal(ctx, "lan0", true))
	h.m.Refresh(ctx) // notes the address the mappings are on
	h.lease(natpmp(lanHost, ipproto.UDP, 5000, time.Hour))
	user := h.add("wan0", "web", 80, "192.168.137.20")
	_, epoch, _ := h.m.PortMapper().External()
	announced := h.services().PortMapEpoch

	// A refresh that finds the same address changes nothing.
	h.clock = h.clock.Add(time.Minute)
	if err := h.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 2 {
		t.Fatalf("after a refresh: %+v", ms)
	}

	h.links.RemoveAddr("wan0", netip.MustParsePrefix("198.51.100.2/24"))
	h.links.AddAddr("wan0", netip.MustParsePrefix("203.0.113.7/24"))
	if err := h.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	h.check()
	ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{})
	if len(ms) != 1 || ms[0].ID != user.ID {
		t.Fatalf("after the address moved: %+v", ms)
	}
	addr, now, err := h.m.PortMapper().External()
	if err != nil || addr != mustIP("203.0.113.7") || !now.Equal(h.clock) || now.Equal(epoch) {
		t.Fatalf("External = %v, epoch %v (was %v), %v", addr, now, epoch, err)
	}
	if got := h.services().PortMapEpoch; got.Equal(announced) || !got.Equal(now) {
		t.Errorf("the services were given epoch %v, want %v", got, now)
	}
	h.restart()
	if _, again, _ := h.m.PortMapper().External(); !again.Equal(now) {
		t.Errorf("the new epoch %v did not survive a restart: %v", now, again)
	}
}

func TestPortMapPolicy(t *testing.T) {
	h := sharedHarness(t)
	if p := h.m.PortMapPolicy(ctx); len(p.Rules) != 1 || p.Quota != 64 {
		t.Fatalf("the default policy: %+v", p)
	}
	pol := PortMapPolicy{
		Rules: []PortMapRule{
			{Allow: false, Clients: netip.MustParsePrefix("192.168.137.10/32"), External: PortRange{1, 65535}, Internal: PortRange{1, 65535}},
			{Allow: true, Clients: netip.MustParsePrefix("192.168.137.0/24"), External: PortRange{2000, 3000}, Internal: PortRange{1, 65535}},
		},
		MinLifetime: 5 * time.Minute, MaxLifetime: time.Hour, Quota: 2, Rate: 5,
	}
	if _, err := h.m.SetPortMapPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	h.check()
	tests := []struct {
		name    string
		req     LeaseRequest
		port    uint16
		expires time.Duration
		err     error
	}{
		{"denied client", natpmp(lanHost, ipproto.UDP, 2500, time.Hour), 0, 0, ErrNotAllowed},
		{"allowed port", natpmp(lanHost2, ipproto.UDP, 2500, 3*time.Hour), 2500, time.Hour, nil},
		{"another port, allowed", natpmp(lanHost2, ipproto.UDP, 5000, time.Minute), 2000, 5 * time.Minute, nil},
		{"over the quota", natpmp(lanHost2, ipproto.UDP, 2600, time.Hour), 0, 0, ErrQuota},
		{"for another host", LeaseRequest{Origin: OriginPCP, Client: mustIP("192.168.137.12"), Target: lanHost2, Protocol: ipproto.TCP, InternalPort: 2100, Lifetime: time.Hour}, 0, 0, ErrNotAllowed},
		{"outside the private networks", natpmp(mustIP("10.200.0.5"), ipproto.TCP, 2100, time.Hour), 0, 0, ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.state()
			mp, err := h.m.LeaseMapping(ctx, tt.req)
			if !errors.Is(err, tt.err) || (err == nil && (mp.ExternalPort != tt.port || !mp.Expires.Equal(h.clock.Add(tt.expires)))) {
				t.Fatalf("LeaseMapping = port %d until %v, %v; want %d for %v, %v", mp.ExternalPort, mp.Expires, err, tt.port, tt.expires, tt.err)
			}
			if err != nil && h.state() != before {
				t.Error("a refused request changed the state")
			}
			h.check()
		})
	}
	pol.AllowThirdParty, pol.Quota = true, 10
	h.must(h.m.SetPortMapPolicy(ctx, pol))
	if mp := h.lease(LeaseRequest{Origin: OriginPCP, Client: mustIP("192.168.137.12"), Target: lanHost2, Protocol: ipproto.TCP, InternalPort: 2100, Lifetime: time.Hour}); mp.Client != mustIP("192.168.137.12") || mp.Target.IP != lanHost2 {
		t.Errorf("a third party's mapping: %+v", mp)
	}
	h.restart()
	if got := h.m.PortMapPolicy(ctx); got.Quota != 10 || !got.AllowThirdParty || len(got.Rules) != 2 {
		t.Errorf("after a restart: %+v", got)
	}
}

func TestPortMapPolicyRefused(t *testing.T) {
	h := sharedHarness(t)
	good := DefaultPortMapPolicy
	for _, tt := range []struct {
		mod   func(*PortMapPolicy)
		field string
	}{
		{func(p *PortMapPolicy) {
			p.Rules = []PortMapRule{{Allow: true, External: PortRange{0, 10}, Internal: PortRange{1, 2}}}
		}, "rules[0].external"},
		{func(p *PortMapPolicy) {
			p.Rules = []PortMapRule{{Allow: true, External: PortRange{1, 2}, Internal: PortRange{9, 2}}}
		}, "rules[0].internal"},
		{func(p *PortMapPolicy) {
			p.Rules = []PortMapRule{{Clients: netip.MustParsePrefix("fd00::/64"), External: PortRange{1, 2}, Internal: PortRange{1, 2}}}
		}, "rules[0].clients"},
		{func(p *PortMapPolicy) { p.MinLifetime = 0 }, "minLifetime"},
		{func(p *PortMapPolicy) { p.MinLifetime = 1500 * time.Millisecond }, "minLifetime"},
		{func(p *PortMapPolicy) { p.MaxLifetime = time.Second }, "maxLifetime"},
		{func(p *PortMapPolicy) { p.Quota = 0 }, "quota"},
		{func(p *PortMapPolicy) { p.Rate = 0 }, "rate"},
	} {
		p := good
		p.Rules = slices.Clone(good.Rules)
		tt.mod(&p)
		before := h.state()
		_, err := h.m.SetPortMapPolicy(ctx, p)
		var e *hresult.Error
		if !errors.As(err, &e) || e.Code != hresult.InvalidArg || e.Field != tt.field {
			t.Errorf("%+v: %v, want E_INVALIDARG on %s", p, err, tt.field)
		}
		if h.state() != before {
			t.Error("a refused policy changed the state")
		}
	}
}

// The policy is part of the desired state's document.
func TestPortMapPolicyInTheDocument(t *testing.T) {
	h := sharedHarness(t)
	if doc := h.config(); doc.PortMapPolicy != nil {
		t.Fatalf("the default policy is written out: %+v", doc.PortMapPolicy)
	}
	pol := DefaultPortMapPolicy
	pol.Quota = 5
	h.must(h.m.SetPortMapPolicy(ctx, pol))
	doc := h.config()
	if doc.PortMapPolicy == nil || doc.PortMapPolicy.Quota != 5 {
		t.Fatalf("the document's policy: %+v", doc.PortMapPolicy)
	}
	if res := h.apply(doc, false); len(res.Changes) != 0 {
		t.Errorf("applying the document as exported changed %v", res.Changes)
	}
	doc.PortMapPolicy = nil
	if res := h.apply(doc, false); !slices.Contains(res.Changes, "port mapping policy changed") {
		t.Errorf("changes %v", res.Changes)
	}
	h.check()
	if got := h.m.PortMapPolicy(ctx); got.Quota != DefaultPortMapPolicy.Quota {
		t.Errorf("the policy left out of the document is %+v, not the defaults", got)
	}
	doc = h.config()
	doc.PortMapPolicy = &PortMapPolicy{}
	if _, err := h.m.ApplyConfig(ctx, doc, doc.Revision, false); hresult.CodeOf(err) != hresult.InvalidArg {
		t.Errorf("a document with a bad policy: %v", err)
	}
}

func TestMappingPages(t *testing.T) {
	h := sharedHarness(t)
	var users []MappingID
	for i := range 7 {
		users = append(users, h.add("wan0", fmt.Sprint("m", i), 100+i, "192.168.137.20").ID)
	}
	dev := h.lease(natpmp(lanHost, ipproto.UDP, 5000, time.Hour))
	h.must(nil, h.m.RemovePortMapping(ctx, "wan0", users[3]))
	users = slices.Delete(users, 3, 4)
	user, pcp := OriginUser, OriginPCP
	ids := func(ms []Mapping) []MappingID {
		var out []MappingID
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		f    MappingFilter
		want []MappingID
		more bool
	}{
		{"all", MappingFilter{}, append(slices.Clone(users), dev.ID), false},
		{"first page", MappingFilter{Limit: 3}, users[:3], true},
		{"next page", MappingFilter{After: users[2], Limit: 3}, users[3:6], true},
		{"last page", MappingFilter{After: users[5], Limit: 3}, []MappingID{dev.ID}, false},
		{"after the last", MappingFilter{After: dev.ID}, nil, false},
		{"after the largest id", MappingFilter{After: MappingID(^uint64(0))}, nil, false},
		{"a person's", MappingFilter{Origin: &user, Limit: 6}, users, false},
		{"a device's", MappingFilter{Origin: &pcp}, nil, false},
		{"one device's", MappingFilter{Client: lanHost}, []MappingID{dev.ID}, false},
		{"another device's", MappingFilter{Client: lanHost2}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ms, more, err := h.m.EnumPortMappings(ctx, "wan0", tt.f)
			if err != nil || !slices.Equal(ids(ms), tt.want) || more != tt.more || ms == nil {
				t.Errorf("EnumPortMappings = %v, more %v, %v; want %v, more %v", ids(ms), more, err, tt.want, tt.more)
			}
		})
	}
	h.restart()
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); !slices.Equal(ids(ms), append(slices.Clone(users), dev.ID)) {
		t.Errorf("after a restart: %v", ids(ms))
	}
}

func TestBehindNAT(t *testing.T) {
	h := sharedHarness(t)
	if o, _ := h.m.Sharing(ctx); o.PublicAddress != mustIP("198.51.100.2") || o.BehindNAT {
		t.Fatalf("overview %+v", o)
	}
	for addr, behind := range map[string]bool{"10.0.0.2/24": true, "100.72.1.9/10": true, "192.168.1.20/24": true, "203.0.113.7/24": false} {
		l, _ := h.links.Get("wan0")
		for _, p := range l.Addrs {
			h.links.RemoveAddr("wan0", p)
		}
		h.links.AddAddr("wan0", netip.MustParsePrefix(addr))
		h.m.Refresh(ctx)
		if o, _ := h.m.Sharing(ctx); o.BehindNAT != behind || o.PublicAddress != netip.MustParsePrefix(addr).Addr() {
			t.Errorf("with %s: %+v", addr, o)
		}
	}
}

func TestMappingText(t *testing.T) {
	h := sharedHarness(t)
	web := h.add("wan0", "Web Server", 8080, "192.168.137.20")
	dev := h.lease(natpmp(lanHost, ipproto.UDP, 41641, time.Hour))
	for text, want := range map[string][]MappingID{
		"web": {web.ID}, "SERVER": {web.ID}, "9080": {web.ID}, "137.20": {web.ID},
		"udp": {dev.ID}, "41641": {dev.ID}, "192.168.137": {web.ID, dev.ID}, "nothing": nil,
	} {
		ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{Text: text})
		var got []MappingID
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("text %q: %v, want %v", text, got, want)
		}
	}
}

// An address that moved while netshare was stopped is seen at start: the
// devices' mappings made on the old one end, and a new epoch begins.
func TestPublicAddressMovedWhileStopped(t *testing.T) {
	h := sharedHarness(t)
	h.m.Refresh(ctx)
	h.lease(natpmp(lanHost, ipproto.UDP, 5000, time.Hour))
	_, epoch, _ := h.m.PortMapper().External()
	h.clock = h.clock.Add(time.Minute)
	h.links.RemoveAddr("wan0", netip.MustParsePrefix("198.51.100.2/24"))
	h.links.AddAddr("wan0", netip.MustParsePrefix("203.0.113.7/24"))
	h.restart()
	if err := h.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	h.check()
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 0 {
		t.Errorf("the mappings made on the old address: %+v", ms)
	}
	if _, now, _ := h.m.PortMapper().External(); now.Equal(epoch) {
		t.Error("no new epoch")
	}
	// A restart on the same address changes nothing.
	h.lease(natpmp(lanHost, ipproto.UDP, 5001, time.Hour))
	h.restart()
	h.m.Refresh(ctx)
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 1 {
		t.Errorf("after a restart on the same address: %+v", ms)
	}
}

// Another address beside the one the devices' mappings are on is not a
// move.
func TestPublicAddressAdded(t *testing.T) {
	h := sharedHarness(t)
	h.m.Refresh(ctx)
	h.lease(natpmp(lanHost, ipproto.UDP, 5000, time.Hour))
	h.links.AddAddr("wan0", netip.MustParsePrefix("198.51.100.1/24")) // sorts first
	if err := h.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 1 {
		t.Errorf("a second public address ended the devices' mappings: %+v", ms)
	}
	if a, _, _ := h.m.PortMapper().External(); a != mustIP("198.51.100.2") {
		t.Errorf("External = %v, want the address the mappings are on", a)
	}
}

// PCP's FILTER: a mapping's remote peer filters reach the firewall; a
// renewal adds to them (a /0 clears them), a NAT-PMP renewal keeps them,
// more than peers.Max are refused and change nothing, and they survive a
// restart.
func TestDeviceMappingPeers(t *testing.T) {
	h := sharedHarness(t)
	pcpReq := func(fs ...peers.Filter) LeaseRequest {
		return LeaseRequest{Origin: OriginPCP, Client: lanHost, Target: lanHost, Protocol: ipproto.UDP, InternalPort: 41641,
			Lifetime: time.Hour, Nonce: [12]byte{1}, Peers: fs}
	}
	filter := func(prefix string, port uint16) peers.Filter {
		return peers.Filter{Prefix: netip.MustParsePrefix(prefix), Port: port}
	}
	inFirewall := func() peers.Set {
		t.Helper()
		ms := h.fw.Config().Mappings
		if len(ms) != 1 {
			t.Fatalf("firewall mappings %v", ms)
		}
		return ms[0].Peers
	}
	want := func(fs ...peers.Filter) peers.Set {
		s, err := peers.Of(fs...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := filter("203.0.113.0/24", 0), filter("198.51.100.7/32", 3478)
	if mp := h.lease(pcpReq(a)); mp.Peers != want(a) || inFirewall() != want(a) {
		t.Fatalf("mapping peers %v, firewall %v", mp.Peers, inFirewall())
	}
	h.lease(pcpReq(b))
	if got := inFirewall(); got != want(a, b) {
		t.Fatalf("after a renewal with another filter: %v", got)
	}
	nat := natpmp(lanHost, ipproto.UDP, 41641, time.Hour)
	h.lease(nat)
	if got := inFirewall(); got != want(a, b) {
		t.Fatalf("after a NAT-PMP renewal: %v", got)
	}
	many := pcpReq(filter("10.1.0.0/16", 0), filter("10.2.0.0/16", 0), filter("10.3.0.0/16", 0))
	if _, err := h.m.LeaseMapping(ctx, many); !errors.Is(err, ErrTooManyPeers) {
		t.Fatalf("five filters: %v", err)
	}
	h.check()
	if got := inFirewall(); got != want(a, b) {
		t.Fatalf("a refused request changed the filters: %v", got)
	}
	h.restart()
	h.check()
	if got := inFirewall(); got != want(a, b) {
		t.Fatalf("after a restart: %v", got)
	}
	h.lease(pcpReq(filter("0.0.0.0/0", 0)))
	if got := inFirewall(); got.Len() != 0 {
		t.Fatalf("after a /0 filter: %v", got)
	}
}

// PCP's PEER: the mapping of an outbound flow comes from connection
// tracking, its lifetime is clamped by the policy and given to the flow;
// no flow, a flow not masqueraded to the public address, or a request
// for another host are refused, and nothing is stored.
func TestPeerMapping(t *testing.T) {
	h := sharedHarness(t)
	public := mustIP("198.51.100.2")
	remote := netip.MustParseAddrPort("203.0.113.5:3478")
	orig := conntrack.Tuple{Proto: ipproto.UDP, Src: netip.AddrPortFrom(lanHost, 41641), Dst: remote}
	h.flows.Add(conntrack.Flow{Orig: orig, Reply: conntrack.Tuple{Proto: ipproto.UDP, Src: remote, Dst: netip.AddrPortFrom(public, 61000)}, Timeout: 30 * time.Second})
	req := PeerRequest{Client: lanHost, Target: lanHost, Protocol: ipproto.UDP, InternalPort: 41641, Remote: remote, Lifetime: 10 * time.Minute}
	g, err := h.m.PeerMapping(ctx, req)
	if err != nil || g.External != netip.AddrPortFrom(public, 61000) || g.Lifetime != 10*time.Minute {
		t.Fatalf("PeerMapping: %+v, %v", g, err)
	}
	if f, _ := h.flows.Get(orig); f.Timeout != 10*time.Minute {
		t.Errorf("the flow's timeout is %v, want 10m", f.Timeout)
	}
	// Below the policy's minimum: clamped. Lifetime 0: the flow as it is.
	short := req
	short.Lifetime = time.Second
	if g, err := h.m.PeerMapping(ctx, short); err != nil || g.Lifetime != DefaultPortMapPolicy.MinLifetime {
		t.Errorf("a lifetime of 1s: %+v, %v", g, err)
	}
	report := req
	report.Lifetime = 0
	if g, err := h.m.PeerMapping(ctx, report); err != nil || g.Lifetime != DefaultPortMapPolicy.MinLifetime {
		t.Errorf("lifetime 0: %+v, %v", g, err)
	}
	noFlow := req
	noFlow.InternalPort = 41642
	if _, err := h.m.PeerMapping(ctx, noFlow); !errors.Is(err, ErrNoFlow) {
		t.Errorf("no flow: %v", err)
	}
	other := req
	other.Target = lanHost2
	if _, err := h.m.PeerMapping(ctx, other); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("for another host: %v", err)
	}
	// A flow between private hosts is not the NAT's.
	inside := conntrack.Tuple{Proto: ipproto.UDP, Src: netip.AddrPortFrom(lanHost, 5000), Dst: netip.AddrPortFrom(lanHost2, 5000)}
	h.flows.Add(conntrack.Flow{Orig: inside, Reply: conntrack.Tuple{Proto: ipproto.UDP, Src: inside.Dst, Dst: inside.Src}, Timeout: time.Minute})
	if _, err := h.m.PeerMapping(ctx, PeerRequest{Client: lanHost, Target: lanHost, Protocol: ipproto.UDP, InternalPort: 5000, Remote: inside.Dst, Lifetime: time.Hour}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("a flow that is not masqueraded: %v", err)
	}
	if ms, _, _ := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); len(ms) != 0 {
		t.Errorf("PEER stored mappings: %+v", ms)
	}
	h.check()
}
