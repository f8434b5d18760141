package webui_test

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/daemon/daemontest"
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
	d := daemontest.StartUI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	seedLease(t, ctx, d)
	info, err := hnetcfg.NewSharingManager(d.Socket).WebUI(ctx)
	if err != nil || !info.Enabled {
		t.Fatalf("GET /v1/ui = %+v, %v; want the UI enabled", info, err)
	}
	shots := os.Getenv("NETSHARE_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "netshare-ui-screenshots")
	}
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "--test-concurrency=1", "ui.test.mjs")
	cmd.Dir = e2e
	cmd.Env = append(os.Environ(),
		"NETSHARE_URL="+info.URL,
		"NETSHARE_LOGIN_URL="+info.LoginURL,
		"NETSHARE_BIN="+bin,
		"NETSHARE_SOCKET="+d.Socket,
		"NETSHARE_SCREENSHOTS="+shots,
		"CHROMIUM="+chromium,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test ui.test.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the browser tests failed: %v", err)
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
	d.Stop()
	st, err := store.Open(d.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	var b store.Batch
	b.PutLease(store.Lease{Connection: lan.ID(), MAC: "02:00:00:00:00:42", IP: netip.MustParseAddr("192.168.137.42"), Hostname: "laptop", Expiry: time.Now().Add(time.Hour).Unix()})
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
