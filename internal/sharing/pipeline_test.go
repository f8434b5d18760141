package sharing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/ipproto"
)

// Concurrent changes of mappings share commits and firewall deltas, and
// each caller gets its own answer.
func TestConcurrentMappingChangesShareCommits(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	rev := h.m.rev
	_, updates := h.fw.Calls()
	const clients, each = 16, 25
	ids := make(chan MappingID, clients*each)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				port := uint16(1000 + c*each + i)
				p, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: fmt.Sprint("m", port), Protocol: ipproto.TCP,
					ExternalPort: port, InternalPort: 80, Target: Target{IP: netip.MustParseAddr("192.168.137.10")}})
				if err != nil || p.ExternalPort != port {
					t.Errorf("client %d: %+v, %v", c, p, err)
					return
				}
				if e, err := h.m.EnablePortMapping(ctx, "wan0", p.ID); err != nil || !e.Enabled || e.ID != p.ID {
					t.Errorf("client %d: enable %s: %+v, %v", c, p.ID, e, err)
					return
				}
				ids <- p.ID
			}
			// One clash each: a port another client took.
			_, err := h.m.AddPortMapping(ctx, "wan0", MappingSpec{Name: "clash", Protocol: ipproto.TCP,
				ExternalPort: uint16(1000 + ((c+1)%clients)*each), InternalPort: 80, Target: Target{IP: netip.MustParseAddr("192.168.137.10")}})
			if hresult.CodeOf(err) != hresult.InvalidArg {
				t.Errorf("client %d: a port in use: %v, want E_INVALIDARG", c, err)
			}
		})
	}
	wg.Wait()
	close(ids)
	var got []MappingID
	for id := range ids {
		got = append(got, id)
	}
	slices.Sort(got)
	if len(got) != clients*each || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("%d distinct ids of %d mappings", len(slices.Compact(got)), clients*each)
	}
	h.check()
	if n := len(h.fw.Config().Mappings); n != clients*each {
		t.Fatalf("the firewall holds %d mappings, want %d", n, clients*each)
	}
	commits := int(h.m.rev - rev)
	_, u := h.fw.Calls()
	t.Logf("%d changes in %d commits and %d firewall deltas", 2*clients*each, commits, u-updates)
	if commits > 2*clients*each || u-updates > 2*clients*each {
		t.Fatalf("%d changes took %d commits and %d deltas", 2*clients*each, commits, u-updates)
	}
	h.restart()
	h.check()
}

// TestReplay applies long random sequences of operations, with failing
// kernels and restarts, and checks after each step that memory, the store
// and the firewall agree, and that a refused operation changed nothing.
func TestReplay(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { replay(t, seed, 400) })
	}
}

func replay(t *testing.T, seed uint64, steps int) {
	h := newHarness(t)
	h.clock = time.Unix(1_800_000_000, 0)
	r := rand.New(rand.NewPCG(seed, seed))
	conns := []string{"wan0", "lan0", "lan1", "wg0"}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	mappingOf := func(c string) MappingID {
		ms, _, _ := h.m.EnumPortMappings(ctx, c, MappingFilter{})
		if len(ms) == 0 || r.IntN(10) == 0 {
			return MappingID(r.IntN(50) + 1) // perhaps no such mapping
		}
		return ms[r.IntN(len(ms))].ID
	}
	targets := []string{"192.168.137.10", "192.168.137.11", "10.1.0.5", "nas", "224.0.0.1", ""}
	outcomes := map[string]int{}
	defer func() {
		t.Logf("outcomes: %v", outcomes)
		for _, o := range []string{"done", "refused", "kernel failure", "restart", "leased"} {
			if outcomes[o] < 3 {
				t.Errorf("%d steps ended as %q: the replay does not exercise it", outcomes[o], o)
			}
		}
	}()
	for step := range steps {
		before := h.state()
		c := pick(conns)
		var what string
		var err error
		failing := r.IntN(5) == 0
		if failing {
			if r.IntN(2) == 0 {
				h.fw.FailNext(fmt.Errorf("injected firewall failure at step %d", step))
			} else {
				h.links.FailNext(fmt.Errorf("injected link failure at step %d", step))
			}
		}
		switch r.IntN(20) {
		case 0, 1, 2:
			target := pick(targets)
			spec := MappingSpec{Name: fmt.Sprint("m", step), Protocol: []ipproto.Proto{ipproto.TCP, ipproto.UDP}[r.IntN(2)],
				ExternalPort: uint16(1 + r.IntN(20)), InternalPort: uint16(1 + r.IntN(3))}
			switch target {
			case "nas":
				spec.Target.Name = target
			case "":
			default:
				spec.Target.IP = netip.MustParseAddr(target)
			}
			what = fmt.Sprintf("add %s %+v", c, spec)
			_, err = h.m.AddPortMapping(ctx, c, spec)
		case 3, 4:
			id := mappingOf(c)
			what = fmt.Sprint("enable ", c, " ", id)
			_, err = h.m.EnablePortMapping(ctx, c, id)
		case 5:
			id := mappingOf(c)
			what = fmt.Sprint("disable ", c, " ", id)
			_, err = h.m.DisablePortMapping(ctx, c, id)
		case 6:
			id := mappingOf(c)
			port := uint16(1 + r.IntN(20))
			what = fmt.Sprintf("edit %s %s port %d", c, id, port)
			_, err = h.m.EditPortMapping(ctx, c, id, MappingEdit{ExternalPort: &port})
		case 7:
			id := mappingOf(c)
			what = fmt.Sprint("remove ", c, " ", id)
			err = h.m.RemovePortMapping(ctx, c, id)
		case 8:
			role := Role(pick([]string{"public", "private", "private", "bogus"}))
			var addr netip.Prefix
			if role == RolePrivate && r.IntN(2) == 0 {
				addr = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(50 + r.IntN(3)), 0, 1}), 24)
			}
			what = fmt.Sprintf("enable sharing %s %s %v", c, role, addr)
			_, err = h.m.EnableSharing(ctx, c, role, addr)
		case 9:
			what = "disable sharing " + c
			_, err = h.m.DisableSharing(ctx, c)
		case 10:
			on := r.IntN(2) == 0
			what = fmt.Sprintf("firewall %s %v", c, on)
			if on {
				_, err = h.m.EnableInternetFirewall(ctx, c, nil)
			} else {
				_, err = h.m.DisableInternetFirewall(ctx, c)
			}
		case 12, 13:
			// The whole state as a document, exported, edited and
			// applied (or applied stale).
			doc, _ := h.m.Config(ctx)
			rev := doc.Revision
			if len(doc.Connections) > 0 {
				cc := &doc.Connections[r.IntN(len(doc.Connections))]
				switch r.IntN(5) {
				case 0:
					cc.Role = Role(pick([]string{"", "public", "private"}))
				case 1:
					cc.Firewall = !cc.Firewall
				case 2:
					if len(cc.Mappings) > 0 {
						k := r.IntN(len(cc.Mappings))
						cc.Mappings[k].Enabled = !cc.Mappings[k].Enabled
						cc.Mappings[k].ExternalPort = uint16(1 + r.IntN(20))
					}
				case 3:
					doc.Connections = slices.Delete(doc.Connections, 0, 1)
				case 4:
					cc.Name = pick([]string{"", "a", "b", "wan0"})
				}
			}
			if r.IntN(8) == 0 {
				rev = "1" // stale, most likely
			}
			what = fmt.Sprintf("apply a document at %s", rev)
			_, err = h.m.ApplyConfig(ctx, doc, rev, r.IntN(6) == 0)
		case 14, 15, 18, 19:
			// A device leases (or renews) a mapping for itself: a host of
			// a private network, when there is one.
			host := netip.MustParseAddr(pick([]string{"192.168.137.10", "192.168.137.11"}))
			if ps, _ := h.m.EnumPrivateConnections(ctx); len(ps) > 0 && r.IntN(8) != 0 {
				a := ps[r.IntN(len(ps))].PrivateAddress.Addr().As4()
				a[3] = byte(10 + r.IntN(2))
				host = netip.AddrFrom4(a)
			}
			req := LeaseRequest{Origin: []Origin{OriginNATPMP, OriginPCP}[r.IntN(2)], Client: host, Target: host,
				Protocol: []ipproto.Proto{ipproto.TCP, ipproto.UDP}[r.IntN(2)], InternalPort: uint16(1 + r.IntN(20)),
				SuggestedPort: uint16(r.IntN(2) * (1020 + r.IntN(20))), PreferFailure: r.IntN(4) == 0,
				Lifetime: time.Duration(1+r.IntN(120)) * time.Minute, Nonce: [12]byte{byte(r.IntN(2))}}
			what = fmt.Sprintf("lease %+v", req)
			if _, err = h.m.LeaseMapping(ctx, req); err == nil {
				outcomes["leased"]++
			}
		case 16:
			host := netip.MustParseAddr(pick([]string{"192.168.137.10", "192.168.137.11"}))
			proto := []ipproto.Proto{ipproto.TCP, ipproto.UDP}[r.IntN(2)]
			if r.IntN(3) == 0 {
				what = fmt.Sprintf("release all of %s %v", host, proto)
				err = h.m.ReleaseAll(ctx, host, proto)
			} else {
				port := uint16(1 + r.IntN(20))
				what = fmt.Sprintf("release %s %v/%d", host, proto, port)
				err = h.m.ReleaseMapping(ctx, OriginPCP, host, proto, port, [12]byte{byte(r.IntN(2))})
			}
		case 17:
			h.clock = h.clock.Add(time.Duration(r.IntN(40)) * time.Minute)
			what = fmt.Sprintf("expire at %v", h.clock)
			_, err = h.m.ExpireMappings(ctx)
		case 11:
			what = "restart"
			h.fw.FailNext(nil)
			h.links.FailNext(nil)
			h.restart()
		}
		switch code := hresult.CodeOf(err); {
		case what == "restart":
			outcomes["restart"]++
		case err == nil:
			outcomes["done"]++
		case code == hresult.Fail:
			outcomes["kernel failure"]++
			// A kernel failure: what was stored is applied by the
			// next Refresh.
			for range 3 {
				if h.m.Refresh(ctx) == nil {
					break
				}
			}
		default:
			outcomes["refused"]++
			if got := h.state(); got != before {
				t.Fatalf("step %d (%s) was refused (%v) and changed the state:\n%s\nwant\n%s", step, what, err, got, before)
			}
		}
		h.fw.FailNext(nil)
		h.links.FailNext(nil)
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("after step %d: %s: %v", step, what, err)
				}
			}()
			h.check()
		}()
	}
}

// The caller that carries out a group going away does not fail the
// changes of the others in it.
func TestLeaderCancelDoesNotFailTheGroup(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	queued := func(n int) {
		for {
			h.m.opMu.Lock()
			k := len(h.m.ops)
			h.m.opMu.Unlock()
			if k == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	add := func(c context.Context, port uint16, errp *error) func() {
		return func() {
			_, *errp = h.m.AddPortMapping(c, "wan0", MappingSpec{Name: "m", Protocol: ipproto.TCP, ExternalPort: port, InternalPort: 1, Target: Target{IP: netip.MustParseAddr("192.168.137.10")}})
		}
	}
	// Another change is going on: the cancelled caller queues first and
	// leads; the other queues behind it, in its group.
	h.m.mu.Lock()
	var wg sync.WaitGroup
	var errLeader, errOther error
	wg.Go(add(cctx, 100, &errLeader))
	queued(1)
	wg.Go(add(ctx, 101, &errOther))
	queued(2)
	h.m.mu.Unlock()
	wg.Wait()
	if errOther != nil {
		t.Fatalf("the other caller's change failed with the leader's cancelled context: %v", errOther)
	}
	h.check()
}
