package webui_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/daemon/daemontest"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
	"github.com/netshare/netshare/internal/store"
)

// RequireBrowserEnv, when set (CI sets it), makes TestBrowser fail rather
// than skip when Chromium or Node.js is missing.
const RequireBrowserEnv = "NETSHARE_REQUIRE_BROWSER"

// TestBrowser runs testdata/e2e/ui.test.mjs: the web UI in headless
// Chromium against a daemon with fake backends, checked through the CLI.
// The screenshots go to $NETSHARE_SCREENSHOTS, or to
// $TMPDIR/netshare-ui-screenshots.
func TestBrowser(t *testing.T) {
	b := browserTools(t)
	d := daemontest.StartUI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	seedLease(t, ctx, d)
	b.run(t, ctx, d, "ui.test.mjs")
}

// TestBrowserDevices runs testdata/e2e/devices.test.mjs: the mappings
// devices made for themselves (NAT-PMP, PCP), as the Services screen
// shows them. The fake backend runs no NAT-PMP server, and a device's
// mapping lives only while sharing is on, so the test shares wan0 with
// lan0, lets lan0's devices map ports and writes two devices' mappings to
// the store while the daemon is stopped.
func TestBrowserDevices(t *testing.T) {
	b := browserTools(t)
	d := daemontest.StartUI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := hnetcfg.NewSharingManager(d.Socket)
	var wanID string
	for _, s := range []struct {
		conn string
		req  hnetcfg.SharingRequest
	}{{"wan0", hnetcfg.SharingRequest{Type: hnetcfg.ICSSHARINGTYPE_PUBLIC}}, {"lan0", hnetcfg.SharingRequest{Type: hnetcfg.ICSSHARINGTYPE_PRIVATE}}} {
		c, err := m.Connection(ctx, s.conn)
		if err != nil {
			t.Fatal(err)
		}
		cfg := m.INetSharingConfigurationForINetConnection(c)
		if err := cfg.EnableSharingRequest(ctx, s.req); err != nil {
			t.Fatal(err)
		}
		if s.conn == "wan0" {
			wanID = c.ID()
		} else if err := cfg.EnableNATTraversal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	laptop := netip.MustParseAddr("192.168.137.42")
	filter, err := peers.Of(peers.Filter{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Port: 3478})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var b2 store.Batch
	for _, mp := range []store.Mapping{
		{ID: 1, Origin: store.OriginNATPMP, Protocol: ipproto.UDP, ExternalPort: 41641, InternalPort: 41641,
			Expiry: now.Add(30 * time.Minute).UnixMilli()},
		{ID: 2, Origin: store.OriginPCP, Protocol: ipproto.TCP, ExternalPort: 6881, InternalPort: 6881,
			Expiry: now.Add(2 * time.Hour).UnixMilli(), Nonce: [12]byte{1, 2, 3}, Peers: filter},
	} {
		mp.Connection, mp.Client, mp.TargetIP, mp.Enabled = wanID, laptop, laptop, true
		mp.Name = fmt.Sprintf("%v %s %v/%d", mp.Origin, laptop, mp.Protocol, mp.InternalPort)
		b2.PutMapping(mp)
	}
	b2.SetLastDeviceMappingID(2)
	seedRuntime(t, ctx, d, &b2)
	b.run(t, ctx, d, "devices.test.mjs")
}

// browser is what the browser tests run with.
type browser struct {
	chromium, node, e2e, bin string
}

// browserTools finds Chromium and Node.js (skipping without them, unless
// CI requires them), installs playwright-core and builds netshare.
func browserTools(t *testing.T) browser {
	t.Helper()
	if testing.Short() {
		t.Skip("the browser tests take a while; not with -short")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	missing := func(what string) {
		msg := what + " is missing: apt-get install chromium nodejs npm (what .ci/run does)"
		if os.Getenv(RequireBrowserEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("Chromium (" + chromium + ")")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("Node.js")
	}
	e2e, err := filepath.Abs(filepath.Join("testdata", "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	installModules(t, e2e)
	bin := filepath.Join(t.TempDir(), "netshare")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/netshare/netshare/cmd/netshare").CombinedOutput(); err != nil {
		t.Fatalf("building netshare: %v\n%s", err, out)
	}
	return browser{chromium: chromium, node: node, e2e: e2e, bin: bin}
}

// run runs one file of browser tests against d's web UI.
func (b browser) run(t *testing.T, ctx context.Context, d *daemontest.Daemon, file string) {
	t.Helper()
	info, err := hnetcfg.NewSharingManager(d.Socket).WebUI(ctx)
	if err != nil || !info.Enabled {
		t.Fatalf("GET /v1/ui = %+v, %v; want the UI enabled", info, err)
	}
	shots := os.Getenv("NETSHARE_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "netshare-ui-screenshots")
	}
	cmd := exec.CommandContext(ctx, b.node, "--test", "--test-reporter=spec", "--test-concurrency=1", file)
	cmd.Dir = b.e2e
	cmd.Env = append(os.Environ(),
		"NETSHARE_URL="+info.URL,
		"NETSHARE_LOGIN_URL="+info.LoginURL,
		"NETSHARE_BIN="+b.bin,
		"NETSHARE_SOCKET="+d.Socket,
		"NETSHARE_SCREENSHOTS="+shots,
		"CHROMIUM="+b.chromium,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", file, out)
	if err != nil {
		t.Fatalf("the browser tests of %s failed: %v", file, err)
	}
	t.Logf("screenshots in %s", shots)
}

// seedLease gives lan0 a DHCP lease (the fake backend runs no DHCP
// server), for the Clients screen: it stops the daemon, writes the lease
// to its store and starts it again.
func seedLease(t *testing.T, ctx context.Context, d *daemontest.Daemon) {
	t.Helper()
	lan, err := hnetcfg.NewSharingManager(d.Socket).Connection(ctx, "lan0")
	if err != nil {
		t.Fatal(err)
	}
	var b store.Batch
	b.PutLease(store.Lease{Connection: lan.ID(), MAC: "02:00:00:00:00:42", IP: netip.MustParseAddr("192.168.137.42"), Hostname: "laptop", Expiry: time.Now().Add(time.Hour).Unix()})
	seedRuntime(t, ctx, d, &b)
}

// seedRuntime writes b to the daemon's runtime store (what the services
// and the devices made, which no API call makes): it stops the daemon,
// commits b and starts the daemon again.
func seedRuntime(t *testing.T, ctx context.Context, d *daemontest.Daemon, b *store.Batch) {
	t.Helper()
	d.Stop()
	st, err := store.Open(d.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := b.Records()
	if err == nil {
		_, err = st.Runtime.Commit(ctx, store.Any, recs)
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
}

// installModules installs playwright-core, pinned by package-lock.json,
// unless it is there already.
func installModules(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to install playwright-core: apt-get install npm")
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
