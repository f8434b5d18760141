package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netshare/netshare/internal/daemon"
)

// TestQuick runs the bench with small N, so that it keeps working. It
// checks that every measurement is there, never what it measured.
func TestQuick(t *testing.T) {
	bin := benchBinary(t)
	dir, err := os.MkdirTemp("", "nsb-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir)
	o := Quick(bin, dir)
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, design := range []string{"netshare", "netshare-table", "rule-per-mapping"} {
		for _, n := range o.LatencyNs {
			for _, op := range []string{"add+enable", "disable", "remove"} {
				if x := r.find(design, op, n); x.Samples != o.Ops || x.P50us <= 0 || x.P99us < x.P50us {
					t.Errorf("latency %s %s N=%d: %+v", design, op, n, x)
				}
			}
		}
	}
	for _, design := range []string{"netshare", "rule-per-mapping"} {
		for _, n := range o.TrafficNs {
			for _, proto := range []string{"tcp", "udp"} {
				if x := r.rate(design, proto, n); x.Median <= 0 {
					t.Errorf("traffic %s %s N=%d: %+v", design, proto, n, x)
				}
			}
		}
	}
	if x := r.rate("routing", "tcp", 0); x.Median <= 0 {
		t.Errorf("routing: %+v", x)
	}
	if len(r.Restores) != len(o.RestoreNs) || r.Restores[0].PeakRSS <= 0 || r.Restores[0].MedianMs <= 0 {
		t.Errorf("restores: %+v", r.Restores)
	}
	if r.Bulk.N != o.BulkN || r.Bulk.PerSec <= 0 || r.Bulk.MinPerS > r.Bulk.PerSec || r.Bulk.MaxPerS < r.Bulk.PerSec {
		t.Errorf("bulk: %+v", r.Bulk)
	}
	for _, kind := range []string{"read-idle", "read-busy"} {
		for _, op := range []string{"mapping list (100)", "connection list"} {
			if x := r.read(kind, op); x.Samples == 0 || x.P50us <= 0 {
				t.Errorf("reads %s %s: %+v", kind, op, x)
			}
		}
	}
	if x := r.find("netshare", "add+enable", 100); len(x.RoundP50us) != o.Reps {
		t.Errorf("latency rounds: %+v, want %d", x, o.Reps)
	}
	var b strings.Builder
	r.Print(&b, false)
	if !strings.Contains(b.String(), "change (µs)") || !strings.Contains(b.String(), "daemon peak RSS") || !strings.Contains(b.String(), "during bulk adds") {
		t.Errorf("printed:\n%s", b.String())
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	back.Print(&md, true)
	if !strings.Contains(md.String(), "| add+enable | 100 |") {
		t.Errorf("markdown:\n%s", md.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the bench left %s behind", dir)
	}
}

// TestQuickLAN runs the LAN bench for one short round, so that it keeps
// working: each test gives a sample for both servers, DNS answers came
// from both, and the tables and the JSON are whole. It never checks what
// was measured.
func TestQuickLAN(t *testing.T) {
	for _, tool := range []string{"dnsperf", "perfdhcp", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install dnsperf kea-admin dnsmasq-base)", tool)
		}
	}
	bin := benchBinary(t)
	dir, err := os.MkdirTemp("", "nsbl-")
	if err != nil {
		t.Fatal(err)
	}
	before := namespaces(t)
	o := QuickLAN(bin, dir)
	r, err := RunLAN(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{"netshare", "dnsmasq"} {
		for _, test := range []string{"dns-private", "dns-cached", "dns-miss", "dns-latency", "dhcp-50", "dhcp-single"} {
			var found *LANSample
			for i, s := range r.Samples {
				if s.Server == server && s.Test == test {
					found = &r.Samples[i]
				}
			}
			switch {
			case found == nil:
				t.Errorf("no sample of %s against %s", test, server)
			case strings.HasPrefix(test, "dns-") && test != "dns-latency" && found.PerSec <= 0:
				t.Errorf("%s against %s answered nothing: %+v", test, server, *found)
			case test == "dns-latency" && (found.P50ms <= 0 || found.P99ms < found.P50ms):
				t.Errorf("%s against %s: %+v", test, server, *found)
			}
		}
	}
	var b strings.Builder
	r.Print(&b, true)
	if !strings.Contains(b.String(), "| DNS, private names (queries/s) |") || !strings.Contains(b.String(), "netshare/dnsmasq") {
		t.Errorf("printed:\n%s", b.String())
	}
	path := filepath.Join(t.TempDir(), "lan.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	if back, err := ReadLANJSON(path); err != nil || len(back.Samples) != len(r.Samples) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the bench left %s behind", dir)
	}
	checkNamespacesGone(t, before, "nsb-")
}

// TestQuickPortMap runs the port mapping bench with small N for one
// short round, so that it keeps working: every test gives a sample for
// both servers, the expiring leases were seen leaving both kernels, and
// the tables and the JSON are whole. It never checks what was measured.
func TestQuickPortMap(t *testing.T) {
	if _, err := exec.LookPath("miniupnpd"); err != nil {
		t.Fatal("miniupnpd is needed (apt-get install miniupnpd-nftables; it starts no service)")
	}
	bin := benchBinary(t)
	dir, err := os.MkdirTemp("", "nsbp-")
	if err != nil {
		t.Fatal(err)
	}
	before := namespaces(t)
	o := QuickPortMap(bin, dir)
	r, err := RunPortMap(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{"netshare", "miniupnpd"} {
		for _, n := range o.Ns {
			for _, test := range []string{"latency", "load", "conns"} {
				v := r.values(server, test, n, func(s PMPSample) float64 { return s.P50us + s.PerSec })
				if len(v) != o.Rounds || v[0] <= 0 {
					t.Errorf("%s against %s at N=%d: %v", test, server, n, v)
				}
			}
		}
		n := o.Ns[len(o.Ns)-1]
		if v := r.values(server, "fill", n, func(s PMPSample) float64 { return s.PerSec }); len(v) != 1 || v[0] <= 0 {
			t.Errorf("filling %s: %v", server, v)
		}
		for _, s := range r.Samples {
			if s.Server == server && s.Test == "expiry" && (s.Missing != 0 || s.LateMaxms == 0) {
				t.Errorf("expiry against %s: %+v", server, s)
			}
		}
	}
	var b strings.Builder
	r.Print(&b, true)
	if !strings.Contains(b.String(), "| map request, p50 (µs) | 100 |") || !strings.Contains(b.String(), "netshare/miniupnpd") {
		t.Errorf("printed:\n%s", b.String())
	}
	path := filepath.Join(t.TempDir(), "pm.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	if back, err := ReadPortMapJSON(path); err != nil || len(back.Samples) != len(r.Samples) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the bench left %s behind", dir)
	}
	checkNamespacesGone(t, before, "nsp-")
}

// benchBinary skips without root (failing under CI, which must run the
// bench), keeps the daemon out of the host's namespace, and builds the
// netshare binary the bench runs.
func benchBinary(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the bench needs root, and CI must run it")
		}
		t.Skip("the bench needs root (network namespaces)")
	}
	t.Setenv(daemon.GuardEnv, "1")
	bin := filepath.Join(t.TempDir(), "netshare")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/netshare").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// namespaces lists the network namespaces present now.
func namespaces(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names[f[0]] = true
		}
	}
	return names
}

// checkNamespacesGone fails when a namespace named with prefix exists
// now that was not there before the bench ran: one the bench made and
// left behind. Namespaces of other runs (another test package running at
// the same time, a run that was killed) are not this bench's to answer
// for.
func checkNamespacesGone(t *testing.T, before map[string]bool, prefix string) {
	t.Helper()
	var left []string
	for name := range namespaces(t) {
		if strings.HasPrefix(name, prefix) && !before[name] {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		t.Errorf("the bench left namespaces behind: %v", left)
	}
}
