package sharing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
)

// Concurrent changes of mappings share commits and firewall deltas, and
// each caller gets its own answer.
func TestConcurrentMappingChangesShareCommits(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", public))
	rev := h.m.rev
	_, updates := h.fw.Calls()
	const clients, each = 16, 25
	ids := make(chan string, clients*each)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				port := 1000 + c*each + i
				p, err := h.m.AddPortMapping(ctx, "wan0", hnetcfg.PortMappingSpec{Name: fmt.Sprint("m", port), Protocol: "tcp",
					ExternalPort: port, InternalPort: 80, TargetIPAddress: "192.168.137.10"})
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
			_, err := h.m.AddPortMapping(ctx, "wan0", hnetcfg.PortMappingSpec{Name: "clash", Protocol: "tcp",
				ExternalPort: 1000 + ((c+1)%clients)*each, InternalPort: 80, TargetIPAddress: "192.168.137.10"})
			if hresult.CodeOf(err) != hresult.InvalidArg {
				t.Errorf("client %d: a port in use: %v, want E_INVALIDARG", c, err)
			}
		})
	}
	wg.Wait()
	close(ids)
	var got []int
	for id := range ids {
		n, _ := strconv.Atoi(id)
		got = append(got, n)
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
	r := rand.New(rand.NewPCG(seed, seed))
	conns := []string{"wan0", "lan0", "lan1", "wg0"}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	mappingOf := func(c string) string {
		ms, _ := h.m.EnumPortMappings(ctx, c, hnetcfg.ICSSC_DEFAULT)
		if len(ms) == 0 || r.IntN(10) == 0 {
			return fmt.Sprint(r.IntN(50) + 1) // perhaps no such mapping
		}
		return ms[r.IntN(len(ms))].ID
	}
	targets := []string{"192.168.137.10", "192.168.137.11", "10.1.0.5", "nas", "224.0.0.1", ""}
	outcomes := map[string]int{}
	defer func() {
		t.Logf("outcomes: %v", outcomes)
		for _, o := range []string{"done", "refused", "kernel failure", "restart"} {
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
		switch r.IntN(14) {
		case 0, 1, 2:
			target := pick(targets)
			spec := hnetcfg.PortMappingSpec{Name: fmt.Sprint("m", step), Protocol: hnetcfg.Protocol(pick([]string{"tcp", "udp"})),
				ExternalPort: 1 + r.IntN(20), InternalPort: 1 + r.IntN(3)}
			if target == "nas" {
				spec.TargetName = target
			} else {
				spec.TargetIPAddress = target
			}
			what = fmt.Sprintf("add %s %+v", c, spec)
			_, err = h.m.AddPortMapping(ctx, c, spec)
		case 3, 4:
			id := mappingOf(c)
			what = "enable " + c + " " + id
			_, err = h.m.EnablePortMapping(ctx, c, id)
		case 5:
			id := mappingOf(c)
			what = "disable " + c + " " + id
			_, err = h.m.DisablePortMapping(ctx, c, id)
		case 6:
			id := mappingOf(c)
			port := 1 + r.IntN(20)
			what = fmt.Sprintf("edit %s %s port %d", c, id, port)
			_, err = h.m.EditPortMapping(ctx, c, id, hnetcfg.PortMappingEdit{ExternalPort: &port})
		case 7:
			id := mappingOf(c)
			what = "remove " + c + " " + id
			err = h.m.RemovePortMapping(ctx, c, id)
		case 8:
			req := hnetcfg.SharingRequest{Type: hnetcfg.SharingConnectionType(pick([]string{"public", "private", "private", "bogus"}))}
			if req.Type == "private" && r.IntN(2) == 0 {
				req.Address = fmt.Sprintf("10.%d.0.1/24", 50+r.IntN(3))
			}
			what = fmt.Sprintf("enable sharing %s %+v", c, req)
			_, err = h.m.EnableSharing(ctx, c, req)
		case 9:
			what = "disable sharing " + c
			_, err = h.m.DisableSharing(ctx, c)
		case 10:
			on := r.IntN(2) == 0
			what = fmt.Sprintf("firewall %s %v", c, on)
			if on {
				_, err = h.m.EnableInternetFirewall(ctx, c, hnetcfg.FirewallRequest{})
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
					cc.Sharing = hnetcfg.SharingConnectionType(pick([]string{"", "public", "private"}))
				case 1:
					cc.Firewall = !cc.Firewall
				case 2:
					if len(cc.Mappings) > 0 {
						k := r.IntN(len(cc.Mappings))
						cc.Mappings[k].Enabled = !cc.Mappings[k].Enabled
						cc.Mappings[k].ExternalPort = 1 + r.IntN(20)
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
	h.must(h.m.EnableSharing(ctx, "wan0", public))
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
	add := func(c context.Context, port int, errp *error) func() {
		return func() {
			_, *errp = h.m.AddPortMapping(c, "wan0", hnetcfg.PortMappingSpec{Name: "m", Protocol: "tcp", ExternalPort: port, InternalPort: 1, TargetIPAddress: "192.168.137.10"})
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
