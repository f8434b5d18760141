package lab_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

// TestTailscalePortmapper has Tailscale's portmapper, the code tailscaled
// runs to map its WireGuard port, map UDP 41641 on the lan host
// (testdata/tsmapper, a module of its own built here). Its probe must find
// PCP and NAT-PMP (NAT-PMP unless it is turned off in the client) and no
// UPnP; it maps by NAT-PMP, as it prefers, or by PCP when its NAT-PMP is
// turned off; the mapping is the device's, to the
// gateway's real public address, and passes the wan host's datagrams.
func TestTailscalePortmapper(t *testing.T) {
	l, m := up(t)
	tsmapper := filepath.Join(t.TempDir(), "tsmapper")
	build := exec.Command("go", "build", "-o", tsmapper, ".")
	build.Dir = "testdata/tsmapper"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tsmapper (tailscale.com/net/portmapper): %v\n%s", err, out)
	}
	wan := config(t, m, "wan0")
	mappings := func() []*hnetcfg.PortMapping {
		t.Helper()
		ms, err := wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	for _, tt := range []struct {
		name    string
		flags   []string
		typ     string
		origin  hnetcfg.MappingOrigin
		release bool
		pmp     bool // NAT-PMP is on in the client: its probe reports it
	}{
		// Tailscale releases a NAT-PMP mapping as it stops.
		{"natpmp", nil, "pmp", hnetcfg.OriginNATPMP, true, true},
		// Its PCP release carries a fresh nonce (net/portmapper/pcp.go),
		// and the nonce owns a mapping (RFC 6887 §11.1): the release is
		// refused, as miniupnpd refuses it, and the mapping ends at its
		// lifetime.
		{"pcp", []string{"-pcp-only"}, "pcp", hnetcfg.OriginPCP, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, pm := range mappings() {
				must(t, wan.RemovePortMapping(ctx, pm))
			}
			r, logs, stop := runTSMapper(t, l, tsmapper, tt.flags...)
			if !r.Probe.PCP || r.Probe.PMP != tt.pmp || r.Probe.UPnP {
				t.Errorf("Tailscale's probe found %+v, want PCP, NAT-PMP %v, no UPnP", r.Probe, tt.pmp)
			}
			if r.Type != tt.typ {
				t.Errorf("Tailscale mapped by %q, want %q", r.Type, tt.typ)
			}
			ext, err := netip.ParseAddrPort(r.External)
			if err != nil || ext.Addr().String() != lab.GatewayWAN {
				t.Fatalf("Tailscale's external address is %q, want %s and a port", r.External, lab.GatewayWAN)
			}
			ms := mappings()
			if len(ms) != 1 {
				t.Fatalf("%d mappings, want Tailscale's one", len(ms))
			}
			if p := ms[0].Props(); p.Origin != tt.origin || p.Client != lab.LANHost || p.Protocol != hnetcfg.NAT_PROTOCOL_UDP ||
				p.InternalPort != 41641 || p.ExternalPort != int(ext.Port()) {
				t.Errorf("Tailscale's mapping reads %+v, want %s from %s, UDP %d to 41641", p, tt.origin, lab.LANHost, ext.Port())
			}
			if answer, err := probe(l, l.WAN, "udp", r.External); err != nil || !strings.HasPrefix(answer, "tsmapper "+lab.WANHost+":") {
				t.Errorf("the wan host's datagram to %s: %q, %v; want tsmapper's answer, seeing %s", r.External, answer, err, lab.WANHost)
			}
			if err := stop(); err != nil {
				t.Errorf("tsmapper: %v\n%s", err, logs())
			}
			if !tt.release {
				time.Sleep(time.Second) // the refused release
				if ms := mappings(); len(ms) != 1 {
					t.Errorf("%d mappings after a release with another nonce, want Tailscale's still there", len(ms))
				}
				return
			}
			for deadline := time.Now().Add(5 * time.Second); len(mappings()) != 0; time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("Tailscale's mapping stayed after it released it:\n%s", logs())
				}
			}
			if rs := ruleset(t, l); strings.Contains(rs, fmt.Sprintf("udp . %d :", ext.Port())) {
				t.Errorf("the kernel still maps %s after the release:\n%s", r.External, rs)
			}
		})
	}
}

// tsResult is what tsmapper prints once it has a mapping.
type tsResult struct {
	Probe    struct{ PCP, PMP, UPnP bool }
	External string
	Type     string
}

// runTSMapper starts tsmapper on the lan host and waits for its mapping.
// stop closes its input (it releases the mapping and ends) and waits.
func runTSMapper(t *testing.T, l *lab.Lab, tsmapper string, flags ...string) (r tsResult, logs func() string, stop func() error) {
	t.Helper()
	args := append([]string{"netns", "exec", l.LAN, tsmapper, "-gw", lab.GatewayLAN, "-self", lab.LANHost, "-port", "41641"}, flags...)
	cmd := exec.Command("ip", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		stdin.Close()
		select {
		case err := <-exited:
			return err
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			return fmt.Errorf("tsmapper did not stop within 10 s")
		}
	}
	t.Cleanup(func() { stop() })
	logs = func() string { return stderr.String() }
	select {
	case line, ok := <-lines:
		if !ok {
			stop()
			t.Fatalf("tsmapper made no mapping:\n%s", logs())
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("tsmapper printed %q: %v", line, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("tsmapper made no mapping within 20 s:\n%s", logs())
	}
	return r, logs, stop
}
