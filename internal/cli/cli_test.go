package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/daemon"
	"github.com/netshare/netshare/internal/daemon/daemontest"
	"github.com/netshare/netshare/internal/version"
)

// run runs the CLI against socket and returns its exit code and output.
func run(t *testing.T, socket string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Env{
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "NETSHARE_SOCKET" {
				return socket
			}
			return ""
		},
	})
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and print nothing on stderr.
func ok(t *testing.T, socket string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, socket, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("netshare %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must fail with code and an error line that
// starts with prefix.
func fails(t *testing.T, socket string, exit int, prefix string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, socket, args...)
	if code != exit || out != "" || !strings.HasPrefix(errOut, prefix) {
		t.Fatalf("netshare %s: exit %d, want %d\nstdout: %q\nstderr: %q, want it to start with %q", strings.Join(args, " "), code, exit, out, errOut, prefix)
	}
	return errOut
}

// decode parses JSON output strictly: one value and nothing else.
func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("output is not the JSON expected: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", out)
	}
	return v
}

func TestCLI(t *testing.T) {
	d := daemontest.Start(t)
	s := d.Socket

	// connection list, plain and JSON.
	out := ok(t, s, "connection", "list")
	if !regexp.MustCompile(`(?m)^NAME\s+INTERFACE\s+STATUS\s+MEDIA\s+SHARING\s+FIREWALL\s+ID$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^wan0\s+wan0\s+connected\s+lan\s+-\s+off\s+[0-9a-f-]{36}$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^wlan0\s+wlan0\s+disconnected\s+lan\s+-\s+off`).MatchString(out) {
		t.Fatalf("connection list:\n%s", out)
	}
	conns := decode[[]hnetcfg.ConnectionProps](t, ok(t, s, "connection", "list", "--json"))
	if len(conns) != 3 || conns[0].Interface != "lan0" || conns[0].Status != "invalid-address" {
		t.Fatalf("connection list --json: %+v", conns)
	}
	wanID := conns[1].ID

	// show by interface, by id, JSON.
	out = ok(t, s, "connection", "show", "wan0")
	for _, want := range []string{"Name:            wan0", "ID:              " + wanID, "Device:          e1000e", "Status:          connected", "Characteristics: all-users, allow-rename"} {
		if !strings.Contains(out, want) {
			t.Errorf("connection show lacks %q:\n%s", want, out)
		}
	}
	if p := decode[hnetcfg.ConnectionProps](t, ok(t, s, "connection", "show", wanID, "--json")); p.Interface != "wan0" {
		t.Errorf("show by id: %+v", p)
	}

	// connect, disconnect, rename.
	if out := ok(t, s, "connection", "connect", "wlan0"); out != "wlan0: invalid-address\n" {
		t.Errorf("connect: %q", out)
	}
	if p := decode[hnetcfg.ConnectionProps](t, ok(t, s, "connection", "disconnect", "wlan0", "--json")); p.Status != "disconnected" {
		t.Errorf("disconnect --json: %+v", p)
	}
	if out := ok(t, s, "connection", "rename", "lan0", "Home network"); out != "lan0: renamed to \"Home network\"\n" {
		t.Errorf("rename: %q", out)
	}
	ok(t, s, "connection", "show", "Home network")
	fails(t, s, 1, "E_INVALIDARG: name: \"wan0\" is already used", "connection", "rename", "Home network", "wan0")
	fails(t, s, 1, "E_INVALIDARG: connection \"eth9\": no such connection", "connection", "show", "eth9")

	// sharing.
	if out := ok(t, s, "sharing", "enable", "wan0", "--public"); out != "wan0: shared as public\n" {
		t.Errorf("sharing enable: %q", out)
	}
	if p := decode[hnetcfg.ConnectionProps](t, ok(t, s, "sharing", "enable", "lan0", "--private", "--json")); p.Sharing.Type != "private" {
		t.Errorf("sharing enable --json: %+v", p)
	}
	out = ok(t, s, "sharing", "show")
	if !strings.Contains(out, "Public: wan0 [connected, firewall on]") || !strings.Contains(out, "Private: Home network (lan0) [connected, firewall off]") {
		t.Errorf("sharing show:\n%s", out)
	}
	o := decode[hnetcfg.SharingOverview](t, ok(t, s, "sharing", "show", "--json"))
	if !o.Installed || len(o.Public) != 1 || len(o.Private) != 1 {
		t.Errorf("sharing show --json: %+v", o)
	}
	fails(t, s, 2, "E_INVALIDARG: sharing enable: give exactly one of --public and --private", "sharing", "enable", "wan0")
	fails(t, s, 2, "E_INVALIDARG: sharing enable: give exactly one", "sharing", "enable", "wan0", "--public", "--private")

	// firewall.
	if out := ok(t, s, "firewall", "enable", "lan0"); out != "Home network: firewall on\n" {
		t.Errorf("firewall enable: %q", out)
	}
	if out := ok(t, s, "firewall", "disable", "lan0"); out != "Home network: firewall off\n" {
		t.Errorf("firewall disable: %q", out)
	}
	ok(t, s, "firewall", "disable", "lan0")

	// NAT traversal: off until switched on.
	if out := ok(t, s, "nat-traversal", "show", "lan0"); out != "Home network: NAT-PMP and PCP off\n" {
		t.Errorf("nat-traversal show: %q", out)
	}
	if out := ok(t, s, "nat-traversal", "set", "lan0", "on"); out != "Home network: NAT-PMP and PCP on\n" {
		t.Errorf("nat-traversal set on: %q", out)
	}
	if p := decode[hnetcfg.ConnectionProps](t, ok(t, s, "nat-traversal", "show", "lan0", "--json")); !p.NATTraversal {
		t.Errorf("nat-traversal show --json: %+v", p)
	}
	fails(t, s, 2, `E_INVALIDARG: netshare nat-traversal set: "maybe" is not allowed; use on or off`, "nat-traversal", "set", "lan0", "maybe")
	ok(t, s, "nat-traversal", "set", "lan0", "off")
	if out := ok(t, s, "nat-traversal", "policy", "show"); !strings.Contains(out, "  1  allow  clients any  external 1024-65535  internal 1-65535\n") ||
		!strings.Contains(out, "Lifetime: 2m0s to 24h0m0s\n") || !strings.Contains(out, "Quota: 64 mappings a host\n") {
		t.Errorf("nat-traversal policy show:\n%s", out)
	}
	p := decode[hnetcfg.PortMapPolicy](t, ok(t, s, "nat-traversal", "policy", "set", "--rule", "deny 192.168.137.66 1-65535 1-65535",
		"--rule", "allow 192.168.137.0/24 1024-65535 1-65535", "--quota", "8", "--max-lifetime", "2h", "--json"))
	if len(p.Rules) != 2 || p.Rules[0].Clients != "192.168.137.66/32" || p.Quota != 8 || p.MaxLifetime != "2h0m0s" || p.MinLifetime != "2m0s" || p.Rate != 20 {
		t.Errorf("nat-traversal policy set --json: %+v", p)
	}
	fails(t, s, 2, "E_INVALIDARG: netshare nat-traversal policy set: --rule \"allow any\"", "nat-traversal", "policy", "set", "--rule", "allow any")
	fails(t, s, 1, "E_INVALIDARG: rules[0].external:", "nat-traversal", "policy", "set", "--rule", "allow any 80-8 1")
	fails(t, s, 1, "E_INVALIDARG: quota:", "nat-traversal", "policy", "set", "--quota", "0")

	// mappings: add prints the id only.
	id := strings.TrimSpace(ok(t, s, "mapping", "add", "wan0", "--name", "web", "--protocol", "tcp", "--external-port", "80", "--internal-port", "8080", "--target-ip", "192.168.137.10"))
	if id != "1" {
		t.Fatalf("mapping add printed %q, want the id 1", id)
	}
	pm := decode[hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "add", "wan0", "--name", "nas", "--protocol", "udp", "--external-port", "5000", "--internal-port", "5000", "--target-name", "nas.home.arpa", "--enable", "--json"))
	if pm.ID != "2" || !pm.Enabled || pm.TargetName != "nas.home.arpa" {
		t.Fatalf("mapping add --enable --json: %+v", pm)
	}
	out = ok(t, s, "mapping", "list", "wan0")
	if !regexp.MustCompile(`(?m)^1\s+web\s+tcp\s+80\s+192\.168\.137\.10\s+8080\s+no\s+user$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2\s+nas\s+udp\s+5000\s+nas\.home\.arpa \(unresolved\)\s+5000\s+yes\s+user$`).MatchString(out) {
		t.Fatalf("mapping list:\n%s", out)
	}
	if ms := decode[[]hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "list", "wan0", "--enabled", "--json")); len(ms) != 1 || ms[0].ID != "2" {
		t.Fatalf("mapping list --enabled --json: %+v", ms)
	}
	if ms := decode[[]hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "list", "lan0", "--json")); len(ms) != 0 {
		t.Fatalf("empty mapping list --json: %+v", ms)
	}
	out = ok(t, s, "mapping", "enable", "wan0", "1")
	if !strings.Contains(out, "Enabled:           yes") || !strings.Contains(out, "Target IP address: 192.168.137.10") {
		t.Fatalf("mapping enable:\n%s", out)
	}
	if got := d.Firewall.Config().Mappings; len(got) != 1 || got[0].ExternalPort != 80 {
		t.Fatalf("firewall after enable: %v", got)
	}
	if p := decode[hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "disable", "wan0", "1", "--json")); p.Enabled {
		t.Fatalf("mapping disable --json: %+v", p)
	}
	if p := decode[hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "edit", "wan0", "1", "--external-port", "8080", "--target-name", "web.home.arpa", "--enable", "--json")); p.ID != "1" || p.ExternalPort != 8080 || p.TargetName != "web.home.arpa" || p.TargetIPAddress != "" || !p.Enabled {
		t.Fatalf("mapping edit: %+v", p)
	}
	if p := decode[hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "show", wanID, "1", "--json")); p.ExternalPort != 8080 {
		t.Fatalf("mapping show: %+v", p)
	}
	fails(t, s, 2, "E_INVALIDARG: mapping edit: give at least one field", "mapping", "edit", "wan0", "1")

	// Validation errors name the field and change nothing.
	before := ok(t, s, "mapping", "list", "wan0", "--json")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "x", "--protocol", "icmp", "--external-port", "1", "--internal-port", "1", "--target-ip", "10.0.0.1"}, "E_INVALIDARG: protocol:"},
		{[]string{"--name", "x", "--protocol", "tcp", "--external-port", "0", "--internal-port", "1", "--target-ip", "10.0.0.1"}, "E_INVALIDARG: externalPort:"},
		{[]string{"--name", "x", "--protocol", "tcp", "--external-port", "1", "--internal-port", "65536", "--target-ip", "10.0.0.1"}, "E_INVALIDARG: internalPort:"},
		{[]string{"--name", "x", "--protocol", "tcp", "--external-port", "1", "--internal-port", "1"}, "E_INVALIDARG: target:"},
		{[]string{"--name", "x", "--protocol", "tcp", "--external-port", "1", "--internal-port", "1", "--target-ip", "10.0.0.1", "--target-name", "h"}, "E_INVALIDARG: target:"},
		{[]string{"--name", "x", "--protocol", "tcp", "--external-port", "1", "--internal-port", "1", "--target-ip", "ff02::1"}, "E_INVALIDARG: targetIPAddress:"},
		{[]string{"--name", "x", "--protocol", "tcp", "--external-port", "1", "--internal-port", "1", "--target-name", "no_underscores"}, "E_INVALIDARG: targetName:"},
		{[]string{"--name", "", "--protocol", "tcp", "--external-port", "1", "--internal-port", "1", "--target-ip", "10.0.0.1"}, "E_INVALIDARG: name:"},
		{[]string{"--name", "dup", "--protocol", "udp", "--external-port", "5000", "--internal-port", "1", "--target-ip", "10.0.0.1"}, "E_INVALIDARG: externalPort: udp port 5000"},
	} {
		fails(t, s, 1, tt.want, append([]string{"mapping", "add", "wan0"}, tt.args...)...)
	}
	fails(t, s, 2, "E_INVALIDARG: invalid argument \"eighty\"", "mapping", "add", "wan0", "--external-port", "eighty")
	fails(t, s, 2, "E_INVALIDARG: unknown flag: --colour", "mapping", "add", "wan0", "--colour", "red")
	fails(t, s, 2, "E_INVALIDARG: netshare mapping show: accepts 2 arg(s), received 1", "mapping", "show", "wan0")
	fails(t, s, 1, "E_INVALIDARG: mapping 99 of connection \"wan0\": no such mapping", "mapping", "enable", "wan0", "99")
	fails(t, s, 1, "E_INVALIDARG: id: \"abc\" is not a mapping id", "mapping", "show", "wan0", "abc")
	if after := ok(t, s, "mapping", "list", "wan0", "--json"); after != before {
		t.Fatalf("refused commands changed the mappings:\n%s\nwant\n%s", after, before)
	}

	// sharing disable disables the mappings and keeps the firewall.
	if out := ok(t, s, "sharing", "disable", "wan0"); out != "wan0: not shared\n" {
		t.Errorf("sharing disable: %q", out)
	}
	if ms := decode[[]hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "list", "wan0", "--enabled", "--json")); len(ms) != 0 {
		t.Fatalf("enabled mappings after sharing disable: %+v", ms)
	}
	if p := decode[hnetcfg.ConnectionProps](t, ok(t, s, "connection", "show", "wan0", "--json")); !p.FirewallEnabled || p.Sharing.Enabled {
		t.Fatalf("wan0 after sharing disable: %+v", p)
	}

	// remove.
	if out := ok(t, s, "mapping", "remove", "wan0", "2"); out != "removed mapping 2 (nas)\n" {
		t.Errorf("mapping remove: %q", out)
	}
	decode[map[string]any](t, ok(t, s, "mapping", "remove", "wan0", "1", "--json"))
	fails(t, s, 1, "E_INVALIDARG: mapping 1 of connection \"wan0\": no such mapping", "mapping", "remove", "wan0", "1")

	// State survives a restart of the daemon.
	list := ok(t, s, "connection", "list", "--json")
	d.Restart()
	if again := ok(t, s, "connection", "list", "--json"); again != list {
		t.Fatalf("after restart:\n%s\nbefore:\n%s", again, list)
	}

	// Usage errors.
	fails(t, s, 2, "E_INVALIDARG: unknown command \"frobnicate\"", "frobnicate")
	fails(t, s, 2, "E_INVALIDARG: netshare mapping: a subcommand is required", "mapping")
}

func TestCLIDaemonDown(t *testing.T) {
	d := daemontest.Start(t)
	d.Stop()
	errOut := fails(t, d.Socket, 1, "E_FAIL: cannot reach the netshare daemon at "+d.Socket, "connection", "list")
	if !strings.Contains(errOut, "NETSHARE_SOCKET") {
		t.Errorf("the error does not say how to choose the socket: %s", errOut)
	}
	// --socket wins over the environment.
	d.Start()
	ok(t, "/nonexistent.sock", "--socket", d.Socket, "connection", "list")
}

// TestMain keeps the kernel backend out of the host's namespace.
func TestMain(m *testing.M) {
	os.Setenv(daemon.GuardEnv, "1")
	os.Exit(m.Run())
}

func TestServeFlags(t *testing.T) {
	fails(t, "", 1, "E_FAIL: refusing to run the kernel backend in the host's network namespace", "serve", "--state-dir", t.TempDir(), "--socket", t.TempDir()+"/s")
	fails(t, "", 1, "E_FAIL: --backend: \"nft\" is not a backend", "serve", "--backend", "nft", "--state-dir", t.TempDir(), "--socket", t.TempDir()+"/s")
	fails(t, "", 2, `E_INVALIDARG: invalid argument "loud" for "--log-level" flag: give debug, info, warn or error`, "serve", "--log-level", "loud")
}

func TestCLIPrivateServices(t *testing.T) {
	d := daemontest.Start(t)
	s := d.Socket
	out := ok(t, s, "dhcp", "show", "lan0")
	if !strings.Contains(out, "DHCP server:  not running") || !strings.Contains(out, "Pool:         192.168.137.100 - 192.168.137.254") {
		t.Fatalf("dhcp show before sharing:\n%s", out)
	}
	ok(t, s, "sharing", "enable", "lan0", "--private")
	set := decode[hnetcfg.DHCPSettings](t, ok(t, s, "dhcp", "set", "lan0", "--pool-start", "192.168.137.20", "--pool-end", "192.168.137.40", "--lease-time", "2h", "--domain", "lab.test", "--json"))
	if !set.Active || set.PoolStart != "192.168.137.20" || set.LeaseTime != "2h0m0s" || set.Domain != "lab.test" {
		t.Fatalf("dhcp set: %+v", set)
	}
	out = ok(t, s, "dhcp", "reserve", "lan0", "--mac", "52:54:00:12:34:56", "--ip", "192.168.137.9", "--name", "printer")
	if !regexp.MustCompile(`(?m)^\s+52:54:00:12:34:56\s+192\.168\.137\.9\s+printer$`).MatchString(out) {
		t.Fatalf("dhcp reserve:\n%s", out)
	}
	fails(t, s, 1, "E_INVALIDARG: poolEnd: the pool 192.168.137.20-192.168.137.10 is empty", "dhcp", "set", "lan0", "--pool-end", "192.168.137.10")
	fails(t, s, 1, "E_INVALIDARG: poolStart: 10.0.0.1 is outside the private network 192.168.137.0/24", "dhcp", "set", "lan0", "--pool-start", "10.0.0.1")
	fails(t, s, 1, "E_INVALIDARG: leaseTime:", "dhcp", "set", "lan0", "--lease-time", "0")
	fails(t, s, 1, "E_INVALIDARG: mac:", "dhcp", "reserve", "lan0", "--mac", "zz", "--ip", "192.168.137.9")
	fails(t, s, 2, "E_INVALIDARG: dhcp set: give at least one setting", "dhcp", "set", "lan0")
	ok(t, s, "dhcp", "unreserve", "lan0", "--mac", "52:54:00:12:34:56")
	fails(t, s, 1, "E_INVALIDARG: reservation of 52:54:00:12:34:56", "dhcp", "unreserve", "lan0", "--mac", "52:54:00:12:34:56")

	if out := ok(t, s, "lease", "list"); !strings.HasPrefix(out, "IP") {
		t.Fatalf("lease list:\n%s", out)
	}
	if ls := decode[[]hnetcfg.LeaseInfo](t, ok(t, s, "lease", "list", "--json")); len(ls) != 0 {
		t.Fatalf("lease list --json: %+v", ls)
	}

	out = ok(t, s, "dns", "host", "add", "nas", "192.168.137.5")
	if !regexp.MustCompile(`(?m)^nas\s+192\.168\.137\.5$`).MatchString(out) {
		t.Fatalf("dns host add:\n%s", out)
	}
	if hs := decode[[]hnetcfg.DNSHost](t, ok(t, s, "dns", "host", "list", "--json")); len(hs) != 1 || hs[0].Name != "nas" {
		t.Fatalf("dns host list: %+v", hs)
	}
	fails(t, s, 1, "E_INVALIDARG: ip:", "dns", "host", "add", "nas", "not-an-ip")
	ok(t, s, "dns", "host", "remove", "nas")
	fails(t, s, 1, "E_INVALIDARG: host \"nas\": no such static name", "dns", "host", "remove", "nas")
	dnsSet := decode[hnetcfg.DNSSettings](t, ok(t, s, "dns", "set", "--upstream", "198.51.100.53,198.51.100.54", "--json"))
	if len(dnsSet.Upstreams) != 2 || dnsSet.Upstreams[1] != "198.51.100.54:53" {
		t.Fatalf("dns set: %+v", dnsSet)
	}
	fails(t, s, 1, "E_INVALIDARG: upstream:", "dns", "set", "--upstream", "nowhere")
	fails(t, s, 2, "E_INVALIDARG: dns set: --upstream is required", "dns", "set")
	if out := ok(t, s, "dns", "show"); !strings.Contains(out, "Upstreams: 198.51.100.53:53, 198.51.100.54:53") {
		t.Fatalf("dns show:\n%s", out)
	}

	// A mapping by name shows it is unresolved.
	ok(t, s, "mapping", "add", "wan0", "--name", "cam", "--protocol", "tcp", "--external-port", "8000", "--internal-port", "80", "--target-name", "camera")
	if p := decode[hnetcfg.PortMappingProps](t, ok(t, s, "mapping", "show", "wan0", "1", "--json")); !p.Unresolved {
		t.Fatalf("mapping by name: %+v", p)
	}
	if out := ok(t, s, "mapping", "show", "wan0", "1"); !strings.Contains(out, "Resolved to:   nothing yet") {
		t.Fatalf("mapping show:\n%s", out)
	}
}

func TestUIURL(t *testing.T) {
	off := daemontest.Start(t)
	fails(t, off.Socket, 1, "E_NOTIMPL: the web UI is off: start the daemon with 'netshare serve --http", "ui", "url")

	on := daemontest.StartUI(t)
	out := ok(t, on.Socket, "ui", "url")
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/login#token=[A-Za-z0-9_-]{43}\n$`).MatchString(out) {
		t.Errorf("ui url printed %q", out)
	}
	info := decode[hnetcfg.WebUIInfo](t, ok(t, on.Socket, "ui", "url", "--json"))
	if !info.Enabled || info.LoginURL+"\n" != out || !strings.HasPrefix(info.LoginURL, info.URL+"login#") {
		t.Errorf("ui url --json = %+v", info)
	}
}

func TestServeRefusesAnUnsafeUIAddress(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", "0.0.0.0:0"}, "every address"},
		{[]string{"--http", "192.0.2.1:0"}, "not a loopback address"},
		{[]string{"--http", "nohost"}, "host:port"},
	} {
		args := append([]string{"serve", "--backend", "fake", "--state-dir", dir, "--socket", dir + "/s.sock"}, tc.args...)
		errOut := fails(t, dir+"/s.sock", 2, "", args...)
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("serve %v: %q; want it to say %q", tc.args, errOut, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("serve %v, refused, left %d files in the state directory", tc.args, len(entries))
		}
	}
}

func TestMappingOrigin(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		p    hnetcfg.PortMappingProps
		want string
	}{
		{hnetcfg.PortMappingProps{Origin: hnetcfg.OriginUser}, "user"},
		{hnetcfg.PortMappingProps{}, "user"},
		{hnetcfg.PortMappingProps{Origin: hnetcfg.OriginNATPMP, Client: "192.168.137.20", Expires: "2026-11-24T12:01:30Z"}, "natpmp by 192.168.137.20, 1m30s left"},
		{hnetcfg.PortMappingProps{Origin: hnetcfg.OriginPCP, Client: "192.168.137.20", Expires: "2026-11-24T11:00:00Z"}, "pcp by 192.168.137.20, 0s left"},
	} {
		if got := origin(tt.p, now); got != tt.want {
			t.Errorf("origin(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// TestVersion: 'netshare version' needs no daemon; a release build prints
// the release it was stamped with.
func TestVersion(t *testing.T) {
	saved := version.Release
	t.Cleanup(func() { version.Release = saved })
	version.Release = "1.2.0"
	if out := ok(t, "/nonexistent.sock", "version"); !strings.HasPrefix(out, "netshare 1.2.0\n") || !strings.Contains(out, "built with go") {
		t.Errorf("netshare version printed:\n%s", out)
	}
	in := decode[version.Info](t, ok(t, "/nonexistent.sock", "version", "--json"))
	if in.Version != "1.2.0" || !strings.HasPrefix(in.Go, "go") {
		t.Errorf("netshare version --json: %+v", in)
	}
	fails(t, "/nonexistent.sock", 2, "E_INVALIDARG", "version", "extra")
}
