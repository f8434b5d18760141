// Package daemon wires netshare's parts together and runs them: the store,
// the kernel backends (or their fakes), the sharing model and the API on a
// unix socket. It is the only package that imports all of them.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/api"
	"github.com/netshare/netshare/internal/connlimit"
	"github.com/netshare/netshare/internal/conntrack"
	"github.com/netshare/netshare/internal/dhcp"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/portmap"
	"github.com/netshare/netshare/internal/services"
	"github.com/netshare/netshare/internal/sharing"
	"github.com/netshare/netshare/internal/store"
	"github.com/netshare/netshare/internal/version"
	"github.com/netshare/netshare/internal/webui"
)

// Defaults.
const (
	DefaultStateDir = "/var/lib/netshare"
	// SocketMode lets root and the socket's group reach the daemon.
	SocketMode = 0o660
)

// Backend names.
const (
	BackendKernel = "kernel"
	BackendFake   = "fake"
)

// Config is what Run needs. StateDir and Socket are required.
type Config struct {
	StateDir string
	Socket   string
	// Backend is BackendKernel (netlink and nftables in the network
	// namespace the daemon runs in) or
	// BackendFake (in-memory interfaces and firewall, for trying netshare
	// without touching the system).
	Backend string
	// Links and Firewall, if set, are used instead of the Backend's.
	Links    link.Backend
	Firewall fw.Backend
	Logger   *slog.Logger
	// HTTP, if its Addr or Listener is set, serves the web UI there; the
	// daemon fills in PublicAddrs. The token is in the state directory.
	HTTP webui.ListenConfig
	// Ready, if set, is called once the socket accepts requests.
	Ready func()
	// DNSCacheSize is the memory the DNS cache may take, in bytes;
	// dns.DefaultCacheSize if zero.
	DNSCacheSize int
}

// FakeLinks returns the interfaces of the fake backend: an upstream that is
// connected, a LAN port with no address yet, and a Wi-Fi card that is down.
func FakeLinks() *link.Fake {
	return link.NewFake(
		link.Link{Name: "wan0", Kind: "device", Driver: "e1000e", Up: true, Carrier: true,
			Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}},
		link.Link{Name: "lan0", Kind: "device", Driver: "igb", Up: true, Carrier: true},
		link.Link{Name: "wlan0", Kind: "device", Driver: "iwlwifi", Wireless: true},
	)
}

// Run runs the daemon until ctx is done, then stops it cleanly: the API
// finishes the requests in flight, the socket is removed and the store is
// closed.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir == "" || cfg.Socket == "" {
		return errors.New("daemon: a state directory and a socket path are required")
	}
	uiOn := cfg.HTTP.Addr != "" || cfg.HTTP.Listener != nil
	if uiOn {
		// Refuse a bad address before anything starts.
		if err := cfg.HTTP.Check(); err != nil {
			return err
		}
	}
	links, firewall := cfg.Links, cfg.Firewall
	switch cfg.Backend {
	case BackendFake:
		if links == nil {
			links = FakeLinks()
		}
		if firewall == nil {
			firewall = fw.NewFake()
		}
	case BackendKernel, "":
		if err := guardHostNetNS(); err != nil {
			return err
		}
		var closeKernel func()
		var err error
		links, firewall, closeKernel, err = kernelBackends(links, firewall, log)
		if err != nil {
			return err
		}
		defer closeKernel()
	default:
		return fmt.Errorf("--backend: %q is not a backend; use kernel or fake", cfg.Backend)
	}

	st, err := store.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	defer st.Close()
	if m := st.Migrated; m != nil {
		log.Info("state file migrated to this release's schema; the old file is kept", "from", m.From, "to", m.To, "copy", m.Backup)
	}
	// Restoring a large state makes garbage in bursts (the decoded store,
	// the netlink batch of every element): collect more often while it
	// runs, to keep the peak of resident memory down.
	gc := debug.SetGCPercent(25)
	opts := sharing.Options{Desired: st.Desired, Runtime: st.Runtime, Links: links, Firewall: firewall, Logger: log.With("component", "sharing"), GatewayNames: gatewayNames()}
	if cfg.Backend != BackendFake {
		opts.ResolvConf = "/etc/resolv.conf"
		// PCP's PEER reads the NAT's flows; without ctnetlink, PEER
		// requests are answered NO_RESOURCES and the rest works.
		if ct, err := conntrack.Dial(0); err != nil {
			log.Warn("connection tracking is not available: PCP PEER requests will be refused", "err", err)
		} else {
			defer ct.Close()
			opts.Flows = ct
		}
	}
	m, err := sharing.New(ctx, opts)
	if err != nil {
		return err
	}
	if cfg.Backend != BackendFake {
		runner := services.NewRunner(m, m, dhcp.NewProber, log.With("component", "services"))
		if cfg.DNSCacheSize > 0 {
			runner.SetCacheSize(cfg.DNSCacheSize)
		}
		runner.SetPortMap(&portmap.Handler{Leaser: m.PortMapper()})
		defer runner.Close()
		m.SetServices(ctx, runner)
	}
	debug.SetGCPercent(gc)
	apiHandler := api.New(m, log.With("component", "api"))
	var ui *webui.Server
	var uiSrv *http.Server
	var uiLn net.Listener
	var uiURL string
	if uiOn {
		token, err := webui.LoadOrCreateToken(cfg.StateDir)
		if err != nil {
			return err
		}
		uiCfg := cfg.HTTP
		uiCfg.PublicAddrs = m.PublicAddrs
		if rf, ok := links.(routeFinder); ok {
			uiCfg.FromPublic = fromPublic(m, rf)
		}
		uiLn, err = webui.Listen(uiCfg)
		if err != nil {
			return err
		}
		defer uiLn.Close()
		ui = webui.New(webui.Config{API: apiHandler, Token: token, State: m, Log: log.With("component", "webui"), LoopbackHosts: !cfg.HTTP.AllowRemote})
		uiSrv = webui.NewHTTPServer(ui)
		var login string
		uiURL, login = webui.LoginURL(uiLn.Addr(), token)
		apiHandler.SetWebUI(hnetcfg.WebUIInfo{Enabled: true, URL: uiURL, LoginURL: login})
	}
	ln, err := listen(cfg.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Socket)
	ln = connlimit.New(ln, api.MaxConns, api.MaxConns)
	srv := api.NewHTTPServer(apiHandler)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	// The restore's garbage goes back to the system while the API already
	// answers: a forced collection over a large state takes tens of ms.
	go debug.FreeOSMemory()
	if uiSrv != nil {
		go func() {
			if err := uiSrv.Serve(uiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("web UI: %w", err)
			}
		}()
		log.Info("serving the web UI; 'netshare ui url' prints a login link", "url", uiURL)
	}
	kick := make(chan struct{}, 1)
	if w, ok := links.(linkWatcher); ok {
		err := w.Watch(ctx, func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		})
		if err != nil {
			log.Warn("following link changes by polling only", "err", err)
		}
	}
	c, _ := firewall.(checker)
	sdn := newNotifier(log)
	go watch(ctx, m, c, kick, log, sdn.alive)
	go expire(ctx, m, log)
	log.Info("serving", "version", version.String(), "socket", cfg.Socket, "stateFile", st.Path(), "backend", cfg.Backend)
	sdn.ready()
	if cfg.Ready != nil {
		cfg.Ready()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("stopping")
	sdn.stopping()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if uiSrv != nil {
		ui.Close()
		if err := uiSrv.Shutdown(shutdownCtx); err != nil {
			log.Warn("stopping the web UI", "err", err)
		}
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("stopping the API", "err", err)
	}
	return nil
}

// GuardEnv, when set, makes the kernel backend refuse to start outside a
// named network namespace (one of /run/netns, as 'ip netns add' makes).
// Tests set it, so that a mistake can never change the machine's own
// firewall or links.
const GuardEnv = "NETSHARE_NO_HOST_NETNS"

func guardHostNetNS() error {
	if os.Getenv(GuardEnv) == "" {
		return nil
	}
	self, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("%s is set and the network namespace is unknown: %w", GuardEnv, err)
	}
	named, _ := filepath.Glob("/run/netns/*")
	for _, n := range named {
		if fi, err := os.Stat(n); err == nil && os.SameFile(self, fi) {
			return nil
		}
	}
	return fmt.Errorf("refusing to run the kernel backend in the host's network namespace (%s is set); run it in a namespace with 'ip netns exec'", GuardEnv)
}

// gatewayNames returns this host's own names (its host name, up to the
// first dot), which no DHCP client may take.
func gatewayNames() []string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return nil
	}
	first, _, _ := strings.Cut(strings.ToLower(h), ".")
	return []string{first}
}

// routeFinder is a link backend that tells which interface the namespace
// routes an address through.
type routeFinder interface {
	RouteInterface(dst netip.Addr) (string, error)
}

// fromPublic returns the web UI's test of where a connection came from:
// in on the public connection's interface (the zone of a link-local peer,
// or the route back to the peer). When the route cannot be found, the
// connection is refused.
func fromPublic(m *sharing.Manager, rf routeFinder) func(remote netip.AddrPort) bool {
	return func(remote netip.AddrPort) bool {
		pub := m.PublicInterface()
		if pub == "" {
			return false
		}
		a := remote.Addr()
		if z := a.Zone(); z != "" {
			return z == pub
		}
		if a.IsLoopback() {
			return false
		}
		iface, err := rf.RouteInterface(a)
		return err != nil || iface == pub
	}
}

// checker is a firewall backend that can tell when another program changed
// its table, and put it back.
type checker interface {
	Check(ctx context.Context) (restored bool, err error)
}

// watchInterval is how often the links and the table are looked at.
const watchInterval = time.Second

// linkWatcher is a link backend that reports changes as they happen.
type linkWatcher interface {
	Watch(ctx context.Context, notify func()) error
}

// watch follows the links (the public connection's addresses feed the
// hairpin map), at once when kicked and every second anyway, and, with a
// checker, puts the firewall table back within a second when another
// program deletes or changes it. After each round it calls alive.
func watch(ctx context.Context, m *sharing.Manager, c checker, kick <-chan struct{}, log *slog.Logger, alive func()) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
			if err := m.Refresh(ctx); err != nil {
				log.Error("following the links", "err", err)
			}
			continue
		case <-m.Changed():
			m.FollowNames(ctx)
			continue
		}
		if err := m.Refresh(ctx); err != nil {
			log.Error("following the links", "err", err)
		}
		if c != nil {
			if restored, err := c.Check(ctx); err != nil {
				log.Error("checking the firewall table", "err", err)
			} else if restored {
				log.Warn("the firewall table was restored")
			}
		}
		// A round went through the model and the kernel: the daemon is
		// not stuck.
		alive()
	}
}

// expire ends devices' mappings as their leases run out: at the next
// expiry, and again whenever one that ends sooner appears. A failure is
// tried again a second later.
func expire(ctx context.Context, m *sharing.Manager, log *slog.Logger) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.ExpiryChanged():
		}
		next, err := m.ExpireMappings(ctx)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		if err != nil {
			log.Error("ending devices' mappings", "err", err)
			wait = min(wait, time.Second)
		}
		t.Reset(wait)
	}
}

// listen opens the unix socket with mode SocketMode, replacing a stale
// socket file but never one a live daemon answers on.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket path %s exists and is not a socket: refusing to replace it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another netshare daemon is listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
		}
	}
	// Listen on a temporary name, set the mode, then move the socket into
	// place, so that it is never reachable with a looser mode.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, SocketMode); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("moving the socket into place at %s: %w", path, err)
	}
	return ln, nil
}
