package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netshare/netshare/hnetcfg"
)

// The port mapping bench ("netshare bench portmap") measures netshare's
// NAT-PMP server beside miniupnpd (Debian's miniupnpd-nftables), the
// daemon OpenWrt and most Linux gateways run for it. Each runs in a
// gateway namespace of its own with the same addresses and the same
// policy, and the bench's own NAT-PMP load generator drives both from a
// client namespace behind each. For each number of leases present (N),
// both are filled to N and then take turns in every round, the order
// alternating between rounds:
//
//   - latency: map requests one after the other, p50 and p99;
//   - load: 64 clients, each with one request outstanding, map a port and
//     renew it for a while: answers a second, and the server's CPU time;
//   - conns: new TCP connections a second from the upstream host through
//     a mapping a device made;
//   - expiry (at the largest N): leases with a short lifetime, and how
//     late each leaves the kernel, seen by "nft monitor" in the gateway.
//
//	upstream ns: eth0 11.1.0.2 - gw  (netshare)  wan0 11.1.0.1, lan0 10.137.0.1/16 - lan  eth0 10.137.0.10 ...
//	             eth1 11.1.1.2 - mgw (miniupnpd) wan0 11.1.1.1, lan0 10.137.0.1/16 - mlan eth0 10.137.0.10 ...
//
// miniupnpd refuses a reserved public address (the documentation ranges
// among them), so the public side uses 11.1.0.0/23; nothing leaves the
// namespaces.

// PortMapOptions say what the port mapping bench measures.
type PortMapOptions struct {
	Binary string // the netshare binary
	Dir    string // a directory of root's for the bench's state and logs
	Ns     []int  // leases present
	Rounds int
	// Ops are the map requests timed per round; Clients and LoadDuration
	// make the load; ConnsDuration is how long connections are opened;
	// Expiring leases of ExpiryLifetime seconds are watched.
	Ops            int
	Clients        int
	LoadDuration   time.Duration
	ConnsDuration  time.Duration
	Expiring       int
	ExpiryLifetime uint32
	Progress       io.Writer
	// LogDir, if set, receives the servers' logs at the end.
	LogDir string
}

// QuickPortMap checks that the bench works, not what it measures.
func QuickPortMap(binary, dir string) PortMapOptions {
	return PortMapOptions{Binary: binary, Dir: dir, Ns: []int{0, 100}, Rounds: 1, Ops: 20, Clients: 8,
		LoadDuration: time.Second, ConnsDuration: 500 * time.Millisecond, Expiring: 10, ExpiryLifetime: 2}
}

// FullPortMap is the bench of the issue.
func FullPortMap(binary, dir string) PortMapOptions {
	return PortMapOptions{Binary: binary, Dir: dir, Ns: []int{0, 1000, 10000}, Rounds: 3, Ops: 200, Clients: 64,
		LoadDuration: 5 * time.Second, ConnsDuration: 3 * time.Second, Expiring: 100, ExpiryLifetime: 3}
}

// PMPSample is one test against one server at one N in one round.
type PMPSample struct {
	Server string `json:"server"` // netshare or miniupnpd
	Test   string `json:"test"`   // fill, latency, load, conns, expiry
	N      int    `json:"n"`
	Round  int    `json:"round"`
	// latency
	P50us float64 `json:"p50_us,omitempty"`
	P99us float64 `json:"p99_us,omitempty"`
	// fill, load (answers), conns (connections): a second
	PerSec float64 `json:"per_s,omitempty"`
	// load: the server's CPU time per 10,000 answers, in milliseconds,
	// and the share of requests unanswered within a second or refused.
	CPUms10k float64 `json:"cpu_ms_per_10k,omitempty"`
	Lost     float64 `json:"lost,omitempty"`
	Refused  float64 `json:"refused,omitempty"`
	// expiry: how late the leases left the kernel (negative: early),
	// the median and the latest, in milliseconds, and how many were not
	// seen leaving at all.
	LateP50ms float64 `json:"late_p50_ms,omitempty"`
	LateMaxms float64 `json:"late_max_ms,omitempty"`
	Missing   int     `json:"missing,omitempty"`
}

// PortMapResults are everything one run measured.
type PortMapResults struct {
	When    string      `json:"when"`
	Machine string      `json:"machine"`
	Options string      `json:"options"`
	Samples []PMPSample `json:"samples"`
}

// The bench's ports and addresses.
const (
	pmFillPort   = 20000 // fill leases: from here up
	pmOpPort     = 40000 // timed map requests
	pmExpirePort = 45000 // expiring leases
	pmLoadPort   = 50000 // the load's clients
	pmServerPort = 8000  // the client's TCP server, mapped to the same public port
)

var (
	pmGateway = netip.MustParseAddr("10.137.0.1")
	pmHost    = netip.MustParseAddr("10.137.0.10") // the server behind the mapping
	pmFirst   = netip.MustParseAddr("10.137.1.1")  // the fill and load clients
	pmOpAddr  = netip.MustParseAddr("10.137.2.1")  // the timed client
	pmExpAddr = netip.MustParseAddr("10.137.2.2")  // the expiring leases' client
	// pmRule is both servers' one allow rule.
	pmRule = hnetcfg.PortMapRule{Action: "allow", Clients: "10.137.0.0/16", External: "1024-65535", Internal: "1-65535"}
)

// pmServer is one side of the comparison.
type pmServer struct {
	name     string
	gw, cli  string // namespaces
	up       string // the upstream namespace
	public   string // the gateway's public address
	pid      func() int
	deletion func(line string) []uint16 // ports a "nft -a monitor" line removes
}

// RunPortMap builds the bench's namespaces, measures, and removes them.
// When a measurement fails, it returns what was measured before with the
// error.
func RunPortMap(ctx context.Context, o PortMapOptions) (*PortMapResults, error) {
	for _, tool := range []string{"miniupnpd", "nft", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is needed (apt-get install miniupnpd-nftables nftables iproute2; miniupnpd-nftables starts no service)", tool)
		}
	}
	if len(o.Ns) == 0 || o.Clients < 1 || o.Clients > 250 || slices.Max(o.Ns) > 20000 {
		return nil, errors.New("options: give one N or more (at most 20,000) and 1 to 250 clients")
	}
	r := &PortMapResults{When: time.Now().UTC().Format(time.RFC3339), Machine: machine()}
	opts, _ := json.Marshal(o)
	r.Options = string(opts)
	l, tb, pfx, end, err := startSideBySide(o.Dir, "nsp-", "port mapping", o.Binary, o.LogDir)
	if err != nil {
		return nil, err
	}
	defer end()
	mgw, mlan := pfx+"-mgw", pfx+"-mlan"
	o.say("building the port mapping bench: upstream %s, netshare in %s, miniupnpd in %s", l.WAN, l.GW, mgw)
	addrs := []ifaddr{{l.WAN, "eth0", "11.1.0.2/24"}, {l.WAN, "eth1", "11.1.1.2/24"}, {l.GW, "wan0", "11.1.0.1/24"},
		{mgw, "wan0", "11.1.1.1/24"}, {mgw, "lan0", "10.137.0.1/16"}}
	for _, ns := range []string{l.LAN, mlan} {
		addrs = append(addrs, ifaddr{ns, "eth0", pmHost.String() + "/16"}, ifaddr{ns, "eth0", pmOpAddr.String() + "/16"}, ifaddr{ns, "eth0", pmExpAddr.String() + "/16"})
		for _, a := range clientAddrs(pmFirst, o.Clients) {
			addrs = append(addrs, ifaddr{ns, "eth0", a.String() + "/16"})
		}
	}
	if err := tb.build([]string{l.WAN, l.GW, l.LAN, mgw, mlan},
		[]veth{{"wan0", l.GW, "eth0", l.WAN}, {"lan0", l.GW, "eth0", l.LAN}, {"wan0", mgw, "eth1", l.WAN}, {"lan0", mgw, "eth0", mlan}},
		addrs); err != nil {
		return nil, err
	}
	for _, ns := range []string{l.LAN, mlan} {
		if err := in(ns, "ip", "route", "add", "default", "via", pmGateway.String()); err != nil {
			return nil, err
		}
		if _, err := startIn(ns, filepath.Join(o.Dir, "server-"+ns+".log"), o.Binary, "lab", "server", "--port", strconv.Itoa(pmServerPort)); err != nil {
			return nil, err
		}
	}

	o.say("starting netshare serve in %s", l.GW)
	if err := l.StartDaemon(ctx); err != nil {
		return nil, err
	}
	if err := setupNetshare(ctx, l.Socket); err != nil {
		return nil, fmt.Errorf("netshare: %w", err)
	}
	o.say("starting miniupnpd in %s", mgw)
	mpid, err := startMiniupnpd(mgw, o.Dir)
	if err != nil {
		return nil, fmt.Errorf("miniupnpd: %w", err)
	}
	servers := []pmServer{
		{name: "netshare", gw: l.GW, cli: l.LAN, up: l.WAN, public: "11.1.0.1", pid: func() int { return l.DaemonPID }, deletion: netshareDeletion},
		{name: "miniupnpd", gw: mgw, cli: mlan, up: l.WAN, public: "11.1.1.1", pid: func() int { return mpid }, deletion: miniupnpdDeletion()},
	}
	for _, s := range servers {
		if _, err := s.job(ctx, o, PMPJob{Mode: "address", Sources: []netip.Addr{pmHost}, Timeout: 250 * time.Millisecond}); err != nil {
			return nil, fmt.Errorf("%s does not answer NAT-PMP: %w", s.name, err)
		}
		// The connection test's mapping, made by the server's host.
		if _, err := s.job(ctx, o, PMPJob{Mode: "fill", Sources: []netip.Addr{pmHost}, N: 1, Port: pmServerPort, TCP: true, Lifetime: 86400}); err != nil {
			return nil, fmt.Errorf("%s: mapping the server's port: %w", s.name, err)
		}
	}

	have := 0
	ns := slices.Sorted(slices.Values(o.Ns))
	for step, n := range ns {
		for i := range servers {
			s := servers[(i+step)%len(servers)]
			if n > have {
				o.say("N=%d: filling %s with %d leases", n, s.name, n-have)
				smp, err := s.fill(ctx, o, have, n)
				if err != nil {
					return r, fmt.Errorf("filling %s to %d: %w", s.name, n, err)
				}
				r.Samples = append(r.Samples, smp)
			}
			got, err := s.leases()
			if err != nil {
				return r, fmt.Errorf("%s: %w", s.name, err)
			}
			// The fill's leases and the connection test's mapping.
			if got != n+1 {
				return r, fmt.Errorf("%s: the kernel holds %d mappings, want %d", s.name, got, n+1)
			}
		}
		have = n
		for round := 1; round <= o.Rounds; round++ {
			order := servers
			if round%2 == 0 {
				order = []pmServer{servers[1], servers[0]}
			}
			for _, s := range order {
				o.say("N=%d round %d: %s", n, round, s.name)
				smps, err := s.turn(ctx, o, n, n == ns[len(ns)-1])
				if err != nil {
					return r, fmt.Errorf("round %d at N=%d, %s: %w", round, n, s.name, err)
				}
				for i := range smps {
					smps[i].Round = round
				}
				r.Samples = append(r.Samples, smps...)
			}
		}
	}
	return r, nil
}

func (o *PortMapOptions) say(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// setupNetshare shares wan0 with lan0, lets lan0's devices map ports and
// gives netshare miniupnpd's policy: one allow rule, lifetimes from one
// second, and neither a quota nor a rate limit that the bench would meet.
func setupNetshare(ctx context.Context, socket string) error {
	m := hnetcfg.NewSharingManager(socket)
	for _, s := range []struct {
		conn string
		req  hnetcfg.SharingRequest
	}{{"wan0", hnetcfg.SharingRequest{Type: hnetcfg.ICSSHARINGTYPE_PUBLIC}}, {"lan0", hnetcfg.SharingRequest{Type: hnetcfg.ICSSHARINGTYPE_PRIVATE, Address: pmGateway.String() + "/16"}}} {
		c, err := m.Connection(ctx, s.conn)
		if err != nil {
			return err
		}
		if err := m.INetSharingConfigurationForINetConnection(c).EnableSharingRequest(ctx, s.req); err != nil {
			return err
		}
	}
	if _, err := m.SetPortMapPolicy(ctx, hnetcfg.PortMapPolicy{
		Rules:       []hnetcfg.PortMapRule{pmRule},
		MinLifetime: "1s", MaxLifetime: "24h", Quota: 65535, Rate: 10000}); err != nil {
		return err
	}
	c, err := m.Connection(ctx, "lan0")
	if err != nil {
		return err
	}
	return m.INetSharingConfigurationForINetConnection(c).EnableNATTraversal(ctx)
}

// miniupnpdRuleset is the table miniupnpd-nftables expects to find (its
// nft_init.sh would make it, but fails on Debian's nft): its chains in
// table inet filter, reached from base chains at the forward and NAT
// hooks.
const miniupnpdRuleset = `table inet filter {
	chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
	chain miniupnpd { }
	chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
	chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
	chain prerouting_miniupnpd { }
	chain postrouting_miniupnpd { }
}
`

// startMiniupnpd starts miniupnpd in ns as a gateway does: NAT-PMP on
// lan0, UPnP off, secure mode (a client maps only to itself), the same
// rule as netshare's policy, and no lease file. It runs as the daemon it
// is (not -d, whose debug log of every request would slow it), and is
// found by its pid file.
func startMiniupnpd(ns, dir string) (int, error) {
	if err := in(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return 0, err
	}
	rules := filepath.Join(dir, "miniupnpd.nft")
	if err := os.WriteFile(rules, []byte(miniupnpdRuleset), 0o600); err != nil {
		return 0, err
	}
	if err := in(ns, "nft", "-f", rules); err != nil {
		return 0, err
	}
	conf := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(conf, []byte(strings.Join([]string{
		"ext_ifname=wan0", "listening_ip=lan0", "http_port=0", "enable_natpmp=yes", "enable_upnp=no",
		"secure_mode=yes", "system_uptime=yes", "uuid=7a1a3a8e-3b1c-4c55-9c4e-6e0f3f1d0b01",
		strings.Join([]string{pmRule.Action, pmRule.External, pmRule.Clients, pmRule.Internal}, " "),
		"deny 0-65535 0.0.0.0/0 0-65535", ""}, "\n")), 0o600); err != nil {
		return 0, err
	}
	pidFile := filepath.Join(dir, "miniupnpd.pid")
	out, err := exec.Command("ip", "netns", "exec", ns, "miniupnpd", "-f", conf, "-P", pidFile).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
				return pid, nil
			}
		}
	}
	return 0, errors.New("no pid file within 5 s")
}

// job runs the load generator in the server's client namespace.
func (s pmServer) job(ctx context.Context, o PortMapOptions, j PMPJob) (*PMPReport, error) {
	j.Server = netip.AddrPortFrom(pmGateway, 5351)
	if j.Timeout == 0 {
		j.Timeout = time.Second
	}
	arg, _ := json.Marshal(j)
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", s.cli, o.Binary, "bench", "portmap", "pmp-client", "--job", string(arg)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s job: %w: %s", j.Mode, err, lastLines(string(ee.Stderr), 3))
		}
		return nil, err
	}
	var rep PMPReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("%s job: %w: %q", j.Mode, err, lastLines(string(out), 3))
	}
	return &rep, nil
}

// fill adds leases from have to n, UDP, from all the clients.
func (s pmServer) fill(ctx context.Context, o PortMapOptions, have, n int) (PMPSample, error) {
	rep, err := s.job(ctx, o, PMPJob{Mode: "fill", Sources: clientAddrs(pmFirst, o.Clients), N: n - have, Port: pmFillPort + uint16(have), Lifetime: 86400, Timeout: 20 * time.Second})
	if err != nil {
		return PMPSample{}, err
	}
	return PMPSample{Server: s.name, Test: "fill", N: n, PerSec: float64(n-have) / rep.Seconds}, nil
}

// turn is one server's turn in a round: latency, load, connections, and
// at the largest N the expiry.
func (s pmServer) turn(ctx context.Context, o PortMapOptions, n int, expiry bool) ([]PMPSample, error) {
	var out []PMPSample
	// Each request waits for its answer, however long it takes: a slow
	// answer is a latency, not a loss, and a request sent again would
	// only queue behind the first.
	rep, err := s.job(ctx, o, PMPJob{Mode: "latency", Sources: []netip.Addr{pmOpAddr}, N: o.Ops, Port: pmOpPort, Lifetime: 3600, Timeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	if len(rep.Latencies) == 0 {
		return nil, fmt.Errorf("latency: all %d requests lost", o.Ops)
	}
	slices.Sort(rep.Latencies)
	out = append(out, PMPSample{Server: s.name, Test: "latency", N: n, P50us: pct(rep.Latencies, 50), P99us: pct(rep.Latencies, 99),
		Lost: float64(rep.Lost) / float64(o.Ops)})

	before, err := cpuTicks(s.pid())
	if err != nil {
		return nil, err
	}
	rep, err = s.job(ctx, o, PMPJob{Mode: "load", Sources: clientAddrs(pmFirst, o.Clients), Port: pmLoadPort, Lifetime: 3600, Duration: o.LoadDuration})
	if err != nil {
		return nil, err
	}
	after, err := cpuTicks(s.pid())
	if err != nil {
		return nil, err
	}
	// The server may still be working through requests it was sent (at
	// 10,000 leases miniupnpd took more than a minute): the next test
	// waits for it to answer again.
	if _, err := s.job(ctx, o, PMPJob{Mode: "address", Sources: []netip.Addr{pmHost}, Duration: 5 * time.Minute}); err != nil {
		return nil, fmt.Errorf("after the load: %w", err)
	}
	all := float64(rep.OK + rep.Refused + rep.Lost)
	if rep.OK == 0 {
		return nil, fmt.Errorf("load: no request of %.0f answered", all)
	}
	out = append(out, PMPSample{Server: s.name, Test: "load", N: n, PerSec: float64(rep.OK) / o.LoadDuration.Seconds(),
		CPUms10k: float64(after-before) / ticksPerSecond * 1000 / float64(rep.OK) * 10000,
		Lost:     float64(rep.Lost) / all, Refused: float64(rep.Refused) / all})

	loadOut, err := exec.CommandContext(ctx, "ip", "netns", "exec", s.up, o.Binary, "bench", "load", "--proto", "tcp",
		"--addr", s.public+":"+strconv.Itoa(pmServerPort), "--clients", "4", "--duration", o.ConnsDuration.String()).Output()
	if err != nil {
		return nil, fmt.Errorf("connections through the mapping: %w", err)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(string(loadOut)), 64)
	if err != nil {
		return nil, fmt.Errorf("connections: %q", loadOut)
	}
	out = append(out, PMPSample{Server: s.name, Test: "conns", N: n, PerSec: count / o.ConnsDuration.Seconds()})

	if expiry {
		smp, err := s.expiry(ctx, o, n)
		if err != nil {
			return nil, fmt.Errorf("expiry: %w", err)
		}
		out = append(out, smp)
	}
	return out, nil
}

// expiry makes leases that end soon and watches the gateway's nftables
// for their removal.
func (s pmServer) expiry(ctx context.Context, o PortMapOptions, n int) (PMPSample, error) {
	what := "rules" // miniupnpd's rules
	if s.name == "netshare" {
		what = "elements" // of netshare's map
	}
	mon := exec.CommandContext(ctx, "ip", "netns", "exec", s.gw, "nft", "-a", "monitor", what)
	stdout, err := mon.StdoutPipe()
	if err != nil {
		return PMPSample{}, err
	}
	if err := mon.Start(); err != nil {
		return PMPSample{}, err
	}
	var mu sync.Mutex
	gone := map[uint16]time.Time{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		for sc.Scan() {
			t := time.Now()
			for _, p := range s.deletion(sc.Text()) {
				mu.Lock()
				if _, seen := gone[p]; !seen {
					gone[p] = t
				}
				mu.Unlock()
			}
		}
	}()
	stop := func() {
		mon.Process.Kill()
		<-done
		mon.Wait()
	}
	time.Sleep(200 * time.Millisecond) // the monitor subscribes
	rep, err := s.job(ctx, o, PMPJob{Mode: "expire", Sources: []netip.Addr{pmExpAddr}, N: o.Expiring, Port: pmExpirePort, Lifetime: o.ExpiryLifetime})
	if err != nil {
		stop()
		return PMPSample{}, err
	}
	// Wait for the last lease's end and up to 5 s more.
	var last time.Time
	for _, l := range rep.Leases {
		if end := time.Unix(0, l.Answered).Add(time.Duration(l.Lifetime) * time.Second); end.After(last) {
			last = end
		}
	}
	for deadline := last.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		all := true
		for _, l := range rep.Leases {
			if _, ok := gone[l.External]; !ok {
				all = false
			}
		}
		mu.Unlock()
		if all {
			break
		}
	}
	stop()
	smp := PMPSample{Server: s.name, Test: "expiry", N: n}
	var late []float64
	for _, l := range rep.Leases {
		t, ok := gone[l.External]
		if !ok {
			smp.Missing++
			continue
		}
		end := time.Unix(0, l.Answered).Add(time.Duration(l.Lifetime) * time.Second)
		late = append(late, float64(t.Sub(end).Microseconds())/1000)
	}
	if len(late) > 0 {
		slices.Sort(late)
		smp.LateP50ms, smp.LateMaxms = pct(late, 50), late[len(late)-1]
	}
	return smp, nil
}

// reElement finds the public ports of the elements a line of "nft
// monitor" names in netshare's mappings map ("wan0" . udp . 45000 : ...).
var reElement = regexp.MustCompile(`(?:udp|tcp) \. (\d+) :`)

func netshareDeletion(line string) []uint16 {
	if !strings.HasPrefix(line, "delete element inet netshare mappings ") {
		return nil
	}
	var ports []uint16
	for _, m := range reElement.FindAllStringSubmatch(line, -1) {
		if p, err := strconv.ParseUint(m[1], 10, 16); err == nil {
			ports = append(ports, uint16(p))
		}
	}
	return ports
}

var (
	reAddRule = regexp.MustCompile(`^add rule inet filter prerouting_miniupnpd .* dport (\d+) .*# handle (\d+)`)
	reDelRule = regexp.MustCompile(`^delete rule inet filter prerouting_miniupnpd handle (\d+)`)
)

// miniupnpdDeletion follows miniupnpd's DNAT rules: "nft -a monitor"
// names a rule's port when it is added (iif "wan0" @nh,72,8 0x11 th
// dport 45000 dnat ip to ... # handle 10) and only its handle when it is
// deleted.
func miniupnpdDeletion() func(string) []uint16 {
	ports := map[string]uint16{}
	return func(line string) []uint16 {
		if m := reAddRule.FindStringSubmatch(line); m != nil {
			if p, err := strconv.ParseUint(m[1], 10, 16); err == nil {
				ports[m[2]] = uint16(p)
			}
			return nil
		}
		if m := reDelRule.FindStringSubmatch(line); m != nil {
			if p, ok := ports[m[1]]; ok {
				delete(ports, m[1])
				return []uint16{p}
			}
		}
		return nil
	}
}

// leases counts the mappings the server's gateway holds in the kernel.
func (s pmServer) leases() (int, error) {
	args := []string{"netns", "exec", s.gw, "nft", "-j", "list", "map", "inet", "netshare", "mappings"}
	if s.name == "miniupnpd" {
		args = []string{"netns", "exec", s.gw, "nft", "-j", "list", "chain", "inet", "filter", "prerouting_miniupnpd"}
	}
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return 0, fmt.Errorf("listing the kernel's mappings: %w", err)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, err
	}
	n := 0
	for _, obj := range doc.Nftables {
		if _, ok := obj["rule"]; ok {
			n++
		}
		if m, ok := obj["map"]; ok {
			var v struct {
				Elem []json.RawMessage `json:"elem"`
			}
			json.Unmarshal(m, &v)
			n += len(v.Elem)
		}
	}
	return n, nil
}

// WriteJSON writes the results to path.
func (r *PortMapResults) WriteJSON(path string) error { return writeJSON(path, r) }

// ReadPortMapJSON reads results written by WriteJSON.
func ReadPortMapJSON(path string) (*PortMapResults, error) { return readJSON[PortMapResults](path) }

// pmMetrics are the rows of the tables, in order.
var pmMetrics = []struct {
	test, what string
	get        func(PMPSample) float64
}{
	{"latency", "map request, p50 (µs)", func(s PMPSample) float64 { return s.P50us }},
	{"latency", "map request, p99 (µs)", func(s PMPSample) float64 { return s.P99us }},
	{"load", "map and renew from many clients (answers/s)", func(s PMPSample) float64 { return s.PerSec }},
	{"load", "server CPU per 10,000 answers (ms)", func(s PMPSample) float64 { return s.CPUms10k }},
	{"load", "requests unanswered within 1 s (%)", func(s PMPSample) float64 { return s.Lost * 100 }},
	{"conns", "new TCP connections through a device's mapping (/s)", func(s PMPSample) float64 { return s.PerSec }},
	{"expiry", "lease leaves the kernel after its end, median (ms)", func(s PMPSample) float64 { return s.LateP50ms }},
	{"expiry", "lease leaves the kernel after its end, latest (ms)", func(s PMPSample) float64 { return s.LateMaxms }},
	{"fill", "leases made one at a time while filling to N (/s)", func(s PMPSample) float64 { return s.PerSec }},
}

// values returns a metric's values for one server, test and N, in round
// order.
func (r *PortMapResults) values(server, test string, n int, get func(PMPSample) float64) []float64 {
	var v []float64
	for _, s := range r.Samples {
		if s.Server == server && s.Test == test && s.N == n {
			v = append(v, get(s))
		}
	}
	return v
}

// Ns returns the numbers of leases measured, in order.
func (r *PortMapResults) Ns() []int {
	var ns []int
	for _, s := range r.Samples {
		if !slices.Contains(ns, s.N) {
			ns = append(ns, s.N)
		}
	}
	slices.Sort(ns)
	return ns
}

// Print writes the results as tables: each server's median and spread
// over the rounds, netshare's ratio to miniupnpd taken round by round,
// and each server's latency at N against its own at the smallest N.
func (r *PortMapResults) Print(w io.Writer, markdown bool) {
	row := func(cells ...string) {
		if markdown {
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		} else {
			fmt.Fprintln(w, strings.Join(cells, "\t"))
		}
	}
	cell := func(v []float64) string {
		if len(v) == 0 {
			return "-"
		}
		med, lo, hi := spread(v)
		if len(v) == 1 {
			return fmt.Sprintf("%.4g", med)
		}
		return fmt.Sprintf("%.4g [%.4g-%.4g]", med, lo, hi)
	}
	fmt.Fprintf(w, "netshare beside miniupnpd (NAT-PMP), %s, %s\n\n", r.Machine, r.When)
	row("test", "N", "netshare", "miniupnpd", "netshare/miniupnpd")
	if markdown {
		row("---", "---", "---", "---", "---")
	}
	ns := r.Ns()
	for _, m := range pmMetrics {
		for _, n := range ns {
			a, b := r.values("netshare", m.test, n, m.get), r.values("miniupnpd", m.test, n, m.get)
			if len(a) == 0 && len(b) == 0 {
				continue
			}
			row(m.what, strconv.Itoa(n), cell(a), cell(b), roundRatio(a, b))
		}
	}
	if len(ns) > 1 {
		fmt.Fprintf(w, "\nmap request p50 at N against the same server's at N=%d, round by round\n\n", ns[0])
		row("N", "netshare", "miniupnpd")
		if markdown {
			row("---", "---", "---")
		}
		p50 := pmMetrics[0].get
		for _, n := range ns[1:] {
			row(strconv.Itoa(n), roundRatio(r.values("netshare", "latency", n, p50), r.values("netshare", "latency", ns[0], p50)),
				roundRatio(r.values("miniupnpd", "latency", n, p50), r.values("miniupnpd", "latency", ns[0], p50)))
		}
	}
	for _, s := range r.Samples {
		if s.Missing > 0 {
			fmt.Fprintf(w, "\n%s, round %d: %d expiring leases were not seen leaving the kernel within 5 s of their end\n", s.Server, s.Round, s.Missing)
		}
	}
}
