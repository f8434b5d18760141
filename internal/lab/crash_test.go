package lab_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/lab"
)

// TestCrashKeepsAcknowledgedChanges kills the daemon (SIGKILL) while
// several clients add and enable mappings, starts it again, and checks
// that every change it acknowledged is still there, and that the kernel's
// map holds exactly the enabled mappings that were stored.
func TestCrashKeepsAcknowledgedChanges(t *testing.T) {
	l, m := up(t)
	wan := config(t, m, "wan0")
	const clients = 8
	type acked struct {
		port    int
		enabled bool
	}
	var mu sync.Mutex
	done := map[string]*acked{} // mapping id -> what was acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				port := 20000 + c*1000 + i
				p, err := wan.AddPortMapping(ctx, fmt.Sprintf("c%d-%d", c, i), hnetcfg.NAT_PROTOCOL_TCP, port, 80, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS)
				if err != nil {
					return // the daemon is gone
				}
				mu.Lock()
				done[p.ID()] = &acked{port: port}
				mu.Unlock()
				if i%3 == 2 {
					continue // some stay disabled
				}
				if err := p.Enable(ctx); err != nil {
					return
				}
				mu.Lock()
				done[p.ID()].enabled = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := syscall.Kill(l.DaemonPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	for range 100 {
		if syscall.Kill(l.DaemonPID, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(done) < 20 {
		t.Fatalf("only %d mappings were acknowledged before the kill: the test did not load the daemon", len(done))
	}
	if err := l.StartDaemon(ctx); err != nil {
		t.Fatal(err)
	}
	wan = config(t, m, "wan0")
	list, err := wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]hnetcfg.PortMappingProps{}
	wantKernel := map[int]bool{}
	for _, p := range list {
		stored[p.ID()] = p.Props()
		if p.Props().Enabled {
			wantKernel[p.Props().ExternalPort] = true
		}
	}
	for id, a := range done {
		p, ok := stored[id]
		switch {
		case !ok:
			t.Errorf("mapping %s (port %d) was acknowledged and is gone after the crash", id, a.port)
		case p.ExternalPort != a.port:
			t.Errorf("mapping %s: port %d, acknowledged %d", id, p.ExternalPort, a.port)
		case a.enabled && !p.Enabled:
			t.Errorf("mapping %s: enabling it was acknowledged and it is disabled after the crash", id)
		}
	}
	gotKernel := kernelPorts(t, l)
	for port := range wantKernel {
		if !gotKernel[port] {
			t.Errorf("port %d: enabled in the stored state, not in the kernel's map", port)
		}
	}
	for port := range gotKernel {
		if !wantKernel[port] {
			t.Errorf("port %d: in the kernel's map, not enabled in the stored state", port)
		}
	}
	t.Logf("%d changes acknowledged before SIGKILL; %d mappings stored after, %d in the kernel", len(done), len(stored), len(gotKernel))
}

// kernelPorts returns the external ports of the mappings map in the
// gateway's kernel.
func kernelPorts(t *testing.T, l *lab.Lab) map[int]bool {
	t.Helper()
	out, err := l.Output(l.GW, "nft", "-j", "list", "map", "inet", fw.TableName, fw.MapMappings)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Nftables []struct {
			Map *struct {
				Elem [][]json.RawMessage `json:"elem"`
			} `json:"map"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	ports := map[int]bool{}
	for _, o := range doc.Nftables {
		if o.Map == nil {
			continue
		}
		for _, e := range o.Map.Elem {
			// [{"concat": ["wan0", "tcp", 20001]}, {"concat": [addr, port]}]
			var key struct {
				Concat []json.RawMessage `json:"concat"`
			}
			if len(e) != 2 || json.Unmarshal(e[0], &key) != nil || len(key.Concat) != 3 {
				t.Fatalf("an element of the mappings map: %s", e)
			}
			var port int
			if err := json.Unmarshal(key.Concat[2], &port); err != nil {
				t.Fatalf("the port of %s: %v", e, err)
			}
			ports[port] = true
		}
	}
	return ports
}
