// Package lab builds netshare's sandbox: three network namespaces, wan, gw
// and lan, joined by veth pairs, with a test server on the wan side and
// netshare serving in gw, which shares its wan link with its lan link.
// Nothing outside those namespaces is touched; Down removes all of it.
//
//	wan host            gw (netshare)                 lan host
//	eth0 198.51.100.2 - wan0 198.51.100.1
//	                    lan0 192.168.137.1 (private) - eth0 192.168.137.10 (DHCP)
//
// The wan host runs a test server (TCP and UDP, port 8080) and a DNS
// server for example.test, which netshare's forwarder asks. The lan host
// gets its address from netshare's DHCP server (a reservation) and its
// name, lanhost, resolves through netshare's DNS.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/trust"
)

// The lab's addresses.
const (
	GatewayWAN = "198.51.100.1" // gw's wan0
	WANHost    = "198.51.100.2" // the wan host's eth0, where the test server runs
	GatewayLAN = "192.168.137.1"
	LANHost    = "192.168.137.10" // reserved for the lan host by DHCP
	// LANHostName is the lan host's name in DHCP and DNS.
	LANHostName = "lanhost"
	// ServerPort is where the wan test server answers, TCP and UDP.
	ServerPort = 8080
)

// DefaultDir is where a lab lives unless told otherwise: under /run,
// where only root writes. Root acts on what the lab's directory says
// (processes to stop, namespaces and a directory to remove), so a lab's
// directory, and every directory above it, must be root's and writable by
// no one else (sticky directories such as /tmp excepted).
const DefaultDir = "/run/netshare-lab"

// Lab is a running lab, as kept in DIR/lab.json.
type Lab struct {
	Dir       string `json:"dir"`
	ID        string `json:"id"`
	WAN       string `json:"wan"`
	GW        string `json:"gw"`
	LAN       string `json:"lan"`
	Socket    string `json:"socket"`
	Binary    string `json:"binary"`
	DaemonPID int    `json:"daemonPid"`
	ServerPID int    `json:"serverPid"`
	// UI is where the daemon's web UI answers, on the host's loopback
	// ("" when the lab runs without it).
	UI string `json:"ui,omitempty"`
}

// Options configure Up.
type Options struct {
	// Dir holds the lab's state directory, socket, logs and lab.json; it
	// must not hold a running lab.
	Dir string
	// Binary is the netshare executable to run in the namespaces.
	Binary string
	// Progress, if set, receives a line per step.
	Progress io.Writer
	// NoShare leaves sharing off (for tests that drive it themselves).
	NoShare bool
	// UI, if set, is a loopback address of the host (such as
	// 127.0.0.1:8137) where the daemon, which runs in gw, serves its web
	// UI: the lab opens the socket in the host's namespace and hands it
	// to the daemon. If the port is taken, another one is chosen.
	UI string
}

const stateFile = "lab.json"

// Up builds a lab. On failure it removes what it built.
func Up(ctx context.Context, o Options) (l *Lab, err error) {
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(o.Dir, stateFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a lab: run 'netshare lab down --dir %s' first, or choose another --dir", o.Dir, o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := secureDir(o.Dir); err != nil {
		return nil, err
	}
	var id [3]byte
	rand.Read(id[:])
	l = &Lab{Dir: o.Dir, ID: hex.EncodeToString(id[:]), Binary: o.Binary, Socket: filepath.Join(o.Dir, "netshare.sock")}
	l.WAN, l.GW, l.LAN = "nsl-"+l.ID+"-wan", "nsl-"+l.ID+"-gw", "nsl-"+l.ID+"-lan"
	defer func() {
		if err != nil {
			l.Down()
		}
	}()
	say("creating namespaces %s, %s and %s", l.WAN, l.GW, l.LAN)
	for _, ns := range []string{l.WAN, l.GW, l.LAN} {
		if err := run("ip", "netns", "add", ns); err != nil {
			return l, err
		}
		if err := l.Exec(ns, "ip", "link", "set", "lo", "up"); err != nil {
			return l, err
		}
	}
	if err := l.save(); err != nil {
		return l, err
	}
	say("joining them with veth pairs")
	steps := [][]string{
		{"ip", "link", "add", "wan0", "netns", l.GW, "type", "veth", "peer", "name", "eth0", "netns", l.WAN},
		{"ip", "link", "add", "lan0", "netns", l.GW, "type", "veth", "peer", "name", "eth0", "netns", l.LAN},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return l, err
		}
	}
	for _, s := range []struct {
		ns   string
		args []string
	}{
		{l.WAN, []string{"ip", "addr", "add", WANHost + "/24", "dev", "eth0"}},
		{l.WAN, []string{"ip", "link", "set", "eth0", "up"}},
		{l.GW, []string{"ip", "addr", "add", GatewayWAN + "/24", "dev", "wan0"}},
		{l.GW, []string{"ip", "link", "set", "wan0", "up"}},
		{l.GW, []string{"ip", "route", "add", "default", "via", WANHost}},
		{l.GW, []string{"ip", "link", "set", "lan0", "up"}},
		{l.LAN, []string{"ip", "link", "set", "eth0", "up"}},
	} {
		if err := l.Exec(s.ns, s.args...); err != nil {
			return l, err
		}
	}
	say("starting the test server on %s:%d (tcp and udp) in %s", WANHost, ServerPort, l.WAN)
	if l.ServerPID, err = l.Start(l.WAN, "server.log", "lab", "server", "--port", fmt.Sprint(ServerPort)); err != nil {
		return l, err
	}
	say("starting a DNS server for example.test on %s in %s", WANHost, l.WAN)
	if _, err = l.Start(l.WAN, "dns.log", "lab", "dns-server"); err != nil {
		return l, err
	}
	say("starting netshare serve in %s", l.GW)
	l.UI = o.UI
	if err := l.StartDaemon(ctx); err != nil {
		return l, err
	}
	if l.UI != "" {
		say("the web UI answers on http://%s/ ('netshare ui url' prints a login link)", l.UI)
	}
	if o.NoShare {
		return l, nil
	}
	say("sharing wan0 (public) with lan0 (private)")
	m := hnetcfg.NewSharingManager(l.Socket)
	for _, s := range []struct {
		conn string
		typ  hnetcfg.SharingConnectionType
	}{{"wan0", hnetcfg.ICSSHARINGTYPE_PUBLIC}, {"lan0", hnetcfg.ICSSHARINGTYPE_PRIVATE}} {
		c, err := m.Connection(ctx, s.conn)
		if err != nil {
			return l, err
		}
		if err := m.INetSharingConfigurationForINetConnection(c).EnableSharing(ctx, s.typ); err != nil {
			return l, err
		}
	}
	say("NAT-PMP and PCP: the lan host's devices may map ports for themselves")
	lanConn, err := m.Connection(ctx, "lan0")
	if err != nil {
		return l, err
	}
	if err := m.INetSharingConfigurationForINetConnection(lanConn).EnableNATTraversal(ctx); err != nil {
		return l, err
	}
	say("DNS: asking the wan host's server; DHCP: reserving %s for the lan host", LANHost)
	if _, err := m.SetDNS(ctx, hnetcfg.DNSEdit{Upstreams: []string{WANHost}}); err != nil {
		return l, err
	}
	mac, err := l.Output(l.LAN, "cat", "/sys/class/net/eth0/address")
	if err != nil {
		return l, err
	}
	lan, err := m.Connection(ctx, "lan0")
	if err != nil {
		return l, err
	}
	r := hnetcfg.Reservation{MAC: strings.TrimSpace(mac), IP: LANHost, Name: LANHostName}
	if _, err := m.INetSharingConfigurationForINetConnection(lan).Reserve(ctx, r); err != nil {
		return l, err
	}
	say("the lan host asks for its address by DHCP")
	if _, err := l.Start(l.LAN, "dhcp-client.log", "lab", "dhcp-client", "--interface", "eth0", "--hostname", LANHostName); err != nil {
		return l, err
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := l.Output(l.LAN, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if strings.Contains(out, " "+LANHost+"/24") {
			break
		}
		if time.Now().After(deadline) {
			logText, _ := os.ReadFile(filepath.Join(o.Dir, "dhcp-client.log"))
			return l, fmt.Errorf("the lan host got no address by DHCP within 15 s:\n%s", logText)
		}
	}
	return l, nil
}

// Load reads the lab kept in dir. It refuses a directory or a lab.json
// that someone other than root could have written, and a lab.json whose
// names are not those a lab gives itself.
func Load(dir string) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, stateFile)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab in %s (start one with 'netshare lab up')", dir)
	}
	if err := secureDir(dir); err != nil {
		return nil, err
	}
	f, err := trust.Open(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<16))
	if err != nil {
		return nil, err
	}
	var l Lab
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := l.check(dir); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &l, nil
}

// save writes lab.json: a new file renamed over the old, so that nothing
// already there (a link someone planted) is followed.
func (l *Lab) save() error {
	data, _ := json.MarshalIndent(l, "", "  ")
	tmp, err := os.CreateTemp(l.Dir, stateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(l.Dir, stateFile))
}

// idPattern is what Up names a lab: six hexadecimal digits.
var idPattern = regexp.MustCompile(`^[0-9a-f]{6}$`)

// check refuses a lab whose names and paths are not the ones Up gives a
// lab in dir.
func (l *Lab) check(dir string) error {
	if !idPattern.MatchString(l.ID) {
		return fmt.Errorf("lab id %q is not one a lab has (six hexadecimal digits)", l.ID)
	}
	for _, ns := range []struct{ got, want string }{{l.WAN, "wan"}, {l.GW, "gw"}, {l.LAN, "lan"}} {
		if want := "nsl-" + l.ID + "-" + ns.want; ns.got != want {
			return fmt.Errorf("namespace %q is not the lab's own (%s)", ns.got, want)
		}
	}
	if l.Dir != dir {
		return fmt.Errorf("the lab says it lives in %q, not %s", l.Dir, dir)
	}
	if want := filepath.Join(dir, "netshare.sock"); l.Socket != want {
		return fmt.Errorf("socket %q is not the lab's own (%s)", l.Socket, want)
	}
	if !filepath.IsAbs(l.Binary) {
		return fmt.Errorf("binary %q is not an absolute path", l.Binary)
	}
	f, err := os.Open(l.Binary)
	if err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	defer f.Close()
	if err := trust.File(f, false); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("binary %s is not executable", l.Binary)
	}
	return nil
}

// secureDir refuses a lab directory that anyone but root could have
// written (see trust.Dir).
func secureDir(dir string) error {
	if err := trust.Dir(dir); err != nil {
		return fmt.Errorf("%w: a lab's directory must be root's and writable by root only (use the default, %s)", err, DefaultDir)
	}
	return nil
}

// Down stops the lab's processes and removes its namespaces and its
// directory. It goes on after a failure and returns all of them. A
// process is stopped only if it runs in one of the lab's namespaces.
func (l *Lab) Down() error {
	var errs []error
	for _, p := range []struct {
		pid int
		ns  string
	}{{l.DaemonPID, l.GW}, {l.ServerPID, l.WAN}} {
		if p.pid <= 0 {
			continue
		}
		if !inNamespace(p.pid, p.ns) {
			if syscall.Kill(p.pid, 0) == nil {
				errs = append(errs, fmt.Errorf("process %d is not in the lab's namespace %s: left alone", p.pid, p.ns))
			}
			continue
		}
		if err := stop(p.pid); err != nil {
			errs = append(errs, err)
		}
	}
	// Processes a test started in the namespaces go with them.
	for _, ns := range []string{l.LAN, l.GW, l.WAN} {
		if ns == "" {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				var pid int
				fmt.Sscan(f, &pid)
				stop(pid)
			}
		}
		if err := run("ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// inNamespace reports whether process pid runs in the named network
// namespace.
func inNamespace(pid int, ns string) bool {
	var want, got syscall.Stat_t
	if syscall.Stat(filepath.Join("/run/netns", ns), &want) != nil {
		return false
	}
	if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got) != nil {
		return false
	}
	return want.Dev == got.Dev && want.Ino == got.Ino
}

// Status describes the lab and how to use it.
func (l *Lab) Status() string {
	alive := func(pid int) string {
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			return fmt.Sprintf("running (pid %d)", pid)
		}
		return "not running"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s in %s\n", l.ID, l.Dir)
	fmt.Fprintf(&b, "  namespaces: wan %s, gw %s, lan %s\n", l.WAN, l.GW, l.LAN)
	fmt.Fprintf(&b, "  netshare serve in %s: %s; log %s\n", l.GW, alive(l.DaemonPID), filepath.Join(l.Dir, "daemon.log"))
	fmt.Fprintf(&b, "  test server %s:%d in %s: %s\n", WANHost, ServerPort, l.WAN, alive(l.ServerPID))
	if l.UI != "" {
		fmt.Fprintf(&b, "  web UI: http://%s/ (on this machine's loopback)\n", l.UI)
	}
	fmt.Fprintf(&b, "\nPoint the CLI at the lab's daemon:\n  export NETSHARE_SOCKET=%s\n", l.Socket)
	if l.UI != "" {
		fmt.Fprintf(&b, "Open the web UI, logged in: netshare ui url, and open the link it prints\n")
	}
	fmt.Fprintf(&b, "Run a command on a host of the lab:\n  netshare lab exec lan -- <command>   # the lan host, %s (%s)\n  netshare lab exec wan -- <command>   # the wan host, %s (%s)\n  netshare lab exec gw -- <command>    # the gateway (%s)\n", LANHost, l.LAN, WANHost, l.WAN, l.GW)
	if l.Dir != DefaultDir {
		fmt.Fprintf(&b, "  (add --dir %s after 'exec', 'status' and 'down')\n", l.Dir)
	}
	return b.String()
}

// Exec runs a command in a namespace of the lab.
func (l *Lab) Exec(ns string, args ...string) error {
	return run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Output runs a command in a namespace and returns its standard output.
func (l *Lab) Output(ns string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), ns, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Start starts netshare with args in a namespace, in the background and in
// a session of its own, logging to a file in the lab's directory.
func (l *Lab) Start(ns, logName string, args ...string) (int, error) {
	return l.start(ns, logName, nil, args...)
}

// start is Start with files the process inherits as descriptors 3, 4...
func (l *Lab) start(ns, logName string, files []*os.File, args ...string) (int, error) {
	logf, err := os.OpenFile(filepath.Join(l.Dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, l.Binary}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "NETSHARE_SOCKET="+l.Socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = files
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s in %s: %w", strings.Join(args, " "), ns, err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it if it ends while we run
	return pid, nil
}

// DaemonArgs returns the arguments of the lab's daemon, for restarting it.
func (l *Lab) DaemonArgs() []string {
	return []string{"serve", "--state-dir", filepath.Join(l.Dir, "state"), "--socket", l.Socket}
}

// RestartDaemon stops the daemon and starts it again with the same state.
func (l *Lab) RestartDaemon(ctx context.Context) error {
	if err := l.StopDaemon(); err != nil {
		return err
	}
	return l.StartDaemon(ctx)
}

// StopDaemon stops the daemon (SIGTERM).
func (l *Lab) StopDaemon() error { return stop(l.DaemonPID) }

// StateDir returns the daemon's state directory.
func (l *Lab) StateDir() string { return filepath.Join(l.Dir, "state") }

// StartDaemon starts the daemon and waits until it answers.
func (l *Lab) StartDaemon(ctx context.Context) error {
	args := l.DaemonArgs()
	var files []*os.File
	if l.UI != "" {
		f, err := l.listenUI()
		if err != nil {
			return err
		}
		defer f.Close()
		files = append(files, f)
		args = append(args, "--http-fd", "3")
	}
	pid, err := l.start(l.GW, "daemon.log", files, args...)
	if err != nil {
		return err
	}
	l.DaemonPID = pid
	if err := l.save(); err != nil {
		return err
	}
	return waitSocket(ctx, l.Socket, filepath.Join(l.Dir, "daemon.log"))
}

// listenUI opens the web UI's socket on l.UI in this process's network
// namespace (the host's), for the daemon in gw to inherit. A taken port
// is traded for a free one, and l.UI records the address.
func (l *Lab) listenUI() (*os.File, error) {
	host, _, err := net.SplitHostPort(l.UI)
	if a, perr := netip.ParseAddr(host); err != nil || perr != nil || !a.IsLoopback() {
		return nil, fmt.Errorf("the lab's web UI address %q: give a loopback address and port, such as 127.0.0.1:8137", l.UI)
	}
	ln, err := net.Listen("tcp", l.UI)
	if err != nil {
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return nil, fmt.Errorf("opening the web UI's socket on %s: %w", l.UI, err)
		}
	}
	defer ln.Close()
	l.UI = ln.Addr().String()
	return ln.(*net.TCPListener).File()
}

// stop sends SIGTERM to pid and waits up to 10 s for it to end, then
// kills it.
func stop(pid int) error {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return nil
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for range 200 {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("process %d did not stop on SIGTERM and was killed", pid)
}

// waitSocket waits until the daemon answers on socket.
func waitSocket(ctx context.Context, socket, logPath string) error {
	m := hnetcfg.NewSharingManager(socket)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := m.SharingInstalled(ctx); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	logText, _ := os.ReadFile(logPath)
	return fmt.Errorf("netshare serve did not answer on %s within 15 s; its log:\n%s", socket, logText)
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
