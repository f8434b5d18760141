package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netshare/netshare/hnetcfg"
)

// The LAN bench ("netshare bench lan") measures netshare's DHCP server and
// DNS forwarder beside dnsmasq, the program NetworkManager's shared mode
// and OpenWrt hand the private network to. Each server runs in a gateway
// namespace of its own with the same addresses, names and upstream, and
// the same clients nobody here wrote load it from a client namespace:
// dnsperf for DNS, perfdhcp (Kea's) for DHCP. The two take turns in every
// round, and the order alternates between rounds, so that drift on a
// shared machine does not pass for a difference between them.
//
//	upstream ns: DNS for example.test (netshare lab dns-server)
//	  eth0 198.51.100.2 - gw (netshare)  wan0 198.51.100.1, lan0 10.137.0.1/16 - lan  eth0 10.137.0.10
//	  eth1 198.51.101.2 - dgw (dnsmasq)  wan0 198.51.101.1, lan0 10.137.0.1/16 - dlan eth0 10.137.0.10

// LANOptions say what the LAN bench measures.
type LANOptions struct {
	Binary string // the netshare binary
	Dir    string // a directory of root's for the bench's state and logs
	Rounds int
	// DNSDuration is how long each dnsperf run lasts; DHCPDuration each
	// perfdhcp run.
	DNSDuration, DHCPDuration time.Duration
	// DHCPRates are the new clients a second perfdhcp brings.
	DHCPRates []int
	Progress  io.Writer
	// LogDir, if set, receives the servers' logs at the end.
	LogDir string
	// Only, if set, is the one service measured: "dns" or "dhcp".
	Only string
}

// QuickLAN checks that the LAN bench works, not what it measures.
func QuickLAN(binary, dir string) LANOptions {
	return LANOptions{Binary: binary, Dir: dir, Rounds: 1, DNSDuration: time.Second, DHCPDuration: time.Second, DHCPRates: []int{50}}
}

// FullLAN is the LAN bench of the issue.
func FullLAN(binary, dir string) LANOptions {
	return LANOptions{Binary: binary, Dir: dir, Rounds: 3, DNSDuration: 10 * time.Second, DHCPDuration: 10 * time.Second, DHCPRates: []int{100, 500}}
}

// LANSample is one run of one test against one server.
type LANSample struct {
	Server string  `json:"server"` // netshare or dnsmasq
	Test   string  `json:"test"`   // dns-private, dns-cached, dns-miss, dhcp-N, ...
	Round  int     `json:"round"`
	PerSec float64 `json:"per_s"` // queries or completed exchanges a second
	// CPUus is the server's CPU time per query or exchange, in
	// microseconds (user and system, from /proc).
	CPUus float64 `json:"cpu_us"`
	// Latency in milliseconds, where the test gives it: percentiles of
	// each query (dns-latency), or the mean of the exchanges (DHCP, from
	// perfdhcp), and the maximum.
	P50ms float64 `json:"p50_ms,omitempty"`
	P99ms float64 `json:"p99_ms,omitempty"`
	AvgMs float64 `json:"avg_ms,omitempty"`
	MaxMs float64 `json:"max_ms,omitempty"`
	// Lost is the share of queries or DISCOVERs never answered.
	Lost float64 `json:"lost"`
	// Failed is the share of DNS answers that were SERVFAIL or REFUSED:
	// answered, not served. PerSec counts them; they are shown beside it.
	Failed float64 `json:"failed,omitempty"`
}

// LANResults are everything one LAN bench run measured.
type LANResults struct {
	When    string      `json:"when"`
	Machine string      `json:"machine"`
	Options string      `json:"options"`
	Samples []LANSample `json:"samples"`
}

// server is one side of the comparison.
type server struct {
	name    string
	gw, cli string // namespaces
	pid     func() int
}

// RunLAN builds the bench's namespaces, measures, and removes them.
func RunLAN(ctx context.Context, o LANOptions) (*LANResults, error) {
	for _, tool := range []string{"dnsperf", "perfdhcp", "dnsmasq", "dig", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is needed (apt-get install dnsperf kea-admin dnsmasq-base bind9-dnsutils iproute2; none of them starts a service)", tool)
		}
	}
	switch o.Only {
	case "", "dns", "dhcp":
	default:
		return nil, fmt.Errorf("only: %q is not a service the LAN bench measures (dns or dhcp)", o.Only)
	}
	r := &LANResults{When: time.Now().UTC().Format(time.RFC3339), Machine: machine()}
	opts, _ := json.Marshal(o)
	r.Options = string(opts)
	l, tb, pfx, end, err := startSideBySide(o.Dir, "nsb-", "LAN", o.Binary, o.LogDir)
	if err != nil {
		return nil, err
	}
	defer end()
	dgw, dlan := pfx+"-dgw", pfx+"-dlan"
	o.say("building the LAN bench: upstream %s, netshare in %s, dnsmasq in %s", l.WAN, l.GW, dgw)
	if err := tb.build([]string{l.WAN, l.GW, l.LAN, dgw, dlan},
		[]veth{{"wan0", l.GW, "eth0", l.WAN}, {"lan0", l.GW, "eth0", l.LAN}, {"wan0", dgw, "eth1", l.WAN}, {"lan0", dgw, "eth0", dlan}},
		[]ifaddr{{l.WAN, "eth0", "198.51.100.2/24"}, {l.WAN, "eth1", "198.51.101.2/24"}, {l.GW, "wan0", "198.51.100.1/24"},
			{dgw, "wan0", "198.51.101.1/24"}, {dgw, "lan0", "10.137.0.1/16"}, {l.LAN, "eth0", "10.137.0.10/16"}, {dlan, "eth0", "10.137.0.10/16"}}); err != nil {
		return nil, err
	}
	if _, err := l.Start(l.WAN, "upstream.log", "lab", "dns-server"); err != nil {
		return nil, err
	}

	// netshare: the daemon in gw, sharing wan0 with lan0 on a /16, the
	// client's name as a static name.
	o.say("starting netshare serve in %s", l.GW)
	if err := l.StartDaemon(ctx); err != nil {
		return nil, err
	}
	m := hnetcfg.NewSharingManager(l.Socket)
	for _, s := range []struct {
		conn string
		req  hnetcfg.SharingRequest
	}{{"wan0", hnetcfg.SharingRequest{Type: hnetcfg.ICSSHARINGTYPE_PUBLIC}}, {"lan0", hnetcfg.SharingRequest{Type: hnetcfg.ICSSHARINGTYPE_PRIVATE, Address: "10.137.0.1/16"}}} {
		c, err := m.Connection(ctx, s.conn)
		if err != nil {
			return nil, err
		}
		if err := m.INetSharingConfigurationForINetConnection(c).EnableSharingRequest(ctx, s.req); err != nil {
			return nil, err
		}
	}
	if _, err := m.SetDNS(ctx, hnetcfg.DNSEdit{Upstreams: []string{"198.51.100.2"}}); err != nil {
		return nil, err
	}
	if _, err := m.AddDNSHost(ctx, hnetcfg.DNSHost{Name: "lanhost", IP: "10.137.0.10"}); err != nil {
		return nil, err
	}

	// dnsmasq: the same service, as NetworkManager runs it, with ping
	// before offering (its default) as netshare probes with ARP.
	o.say("starting dnsmasq in %s", dgw)
	dnsmasqPID, err := startIn(dgw, filepath.Join(o.Dir, "dnsmasq.log"), "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--interface=lan0", "--bind-interfaces", "--listen-address=10.137.0.1",
		"--server=198.51.101.2", "--domain=home.arpa", "--local=/home.arpa/", "--host-record=lanhost.home.arpa,lanhost,10.137.0.10",
		"--cache-size=10000", "--dhcp-range=10.137.0.100,10.137.255.254,1h", "--dhcp-lease-max=100000", "--dhcp-authoritative",
		"--dhcp-leasefile="+filepath.Join(o.Dir, "dnsmasq.leases"), "--pid-file", "--user=root", "--log-facility=-")
	if err != nil {
		return nil, err
	}
	servers := []server{
		{name: "netshare", gw: l.GW, cli: l.LAN, pid: func() int { return l.DaemonPID }},
		{name: "dnsmasq", gw: dgw, cli: dlan, pid: func() int { return dnsmasqPID }},
	}
	for _, s := range servers {
		if err := waitDNS(ctx, s.cli); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}

	files, err := queryFiles(o.Dir)
	if err != nil {
		return nil, err
	}
	for round := 1; round <= o.Rounds; round++ {
		order := servers
		if round%2 == 0 {
			order = []server{servers[1], servers[0]}
		}
		dnsTests := []string{"dns-private", "dns-cached", "dns-miss", "dns-latency"}
		dhcpRates := o.DHCPRates
		switch o.Only {
		case "dns":
			dhcpRates = nil
		case "dhcp":
			dnsTests = nil
		}
		for _, test := range dnsTests {
			for _, s := range order {
				o.say("round %d: %s against %s", round, test, s.name)
				f := files[test]
				if test == "dns-miss" {
					if f, err = missFile(o.Dir, fmt.Sprintf("r%d%s", round, s.name[:1])); err != nil {
						return nil, err
					}
				}
				smp, err := runDNSPerf(ctx, s, test, f, o.DNSDuration)
				if err != nil {
					return nil, fmt.Errorf("%s against %s: %w", test, s.name, err)
				}
				smp.Round = round
				r.Samples = append(r.Samples, smp)
			}
		}
		for _, rate := range dhcpRates {
			for _, s := range order {
				o.say("round %d: %d new DHCP clients a second against %s", round, rate, s.name)
				smp, err := runPerfDHCP(ctx, s, rate, o.DHCPDuration, round)
				if err != nil {
					return nil, fmt.Errorf("DHCP at %d/s against %s: %w", rate, s.name, err)
				}
				smp.Round = round
				r.Samples = append(r.Samples, smp)
			}
		}
		for _, s := range order {
			if o.Only == "dns" {
				break
			}
			o.say("round %d: one new DHCP client at a time against %s", round, s.name)
			smp, err := runPerfDHCP(ctx, s, 0, o.DHCPDuration, round)
			if err != nil {
				return nil, fmt.Errorf("single DHCP clients against %s: %w", s.name, err)
			}
			smp.Round = round
			r.Samples = append(r.Samples, smp)
		}
	}
	return r, nil
}

func (o *LANOptions) say(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// startIn starts a program in a namespace, its output to a log file.
func startIn(ns, logPath string, args ...string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go cmd.Wait()
	return cmd.Process.Pid, nil
}

func killWait(pid int) {
	p, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	p.Kill()
}

// waitDNS waits until the server answers the client's name and an
// upstream name.
func waitDNS(ctx context.Context, cli string) error {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		a, _ := exec.CommandContext(ctx, "ip", "netns", "exec", cli, "dig", "+short", "+time=1", "+tries=1", "@10.137.0.1", "lanhost").Output()
		b, _ := exec.CommandContext(ctx, "ip", "netns", "exec", cli, "dig", "+short", "+time=1", "+tries=1", "@10.137.0.1", "example.test").Output()
		if strings.TrimSpace(string(a)) == "10.137.0.10" && strings.TrimSpace(string(b)) == "198.51.100.2" {
			return nil
		}
	}
	return errors.New("the DNS server did not answer lanhost and example.test within 15 s")
}

// queryFiles writes the dnsperf query files of the tests that reuse
// their names.
func queryFiles(dir string) (map[string]string, error) {
	files := map[string]string{}
	for test, lines := range map[string][]string{
		"dns-private": {"lanhost A", "lanhost.home.arpa A"},
		"dns-cached":  {"example.test A", "www.example.test A"},
		"dns-latency": {"lanhost.home.arpa A", "example.test A"},
	} {
		p := filepath.Join(dir, test+".queries")
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		files[test] = p
	}
	return files, nil
}

// missFile writes names nobody asked before, so that each is forwarded.
func missFile(dir, tag string) (string, error) {
	p := filepath.Join(dir, "dns-miss-"+tag+".queries")
	var b strings.Builder
	for i := range 400000 {
		fmt.Fprintf(&b, "m%s-%d.example.test A\n", tag, i)
	}
	return p, os.WriteFile(p, []byte(b.String()), 0o600)
}

// cpuTicks returns a process's user and system time, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, data)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, nil
}

const ticksPerSecond = 100 // USER_HZ on Linux

var (
	reCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	reLost      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	reQPS       = regexp.MustCompile(`Queries per second:\s+([\d.]+)`)
	reVerbose   = regexp.MustCompile(`^> \S+ \S+ \S+ ([\d.]+)$`)
	reFailed    = regexp.MustCompile(`(SERVFAIL|REFUSED) (\d+) \(`)
)

// runDNSPerf runs dnsperf from the server's client namespace. The
// throughput tests keep 200 queries outstanding; dns-latency asks 1,000
// a second and reports each query's latency.
func runDNSPerf(ctx context.Context, s server, test, file string, d time.Duration) (LANSample, error) {
	smp := LANSample{Server: s.name, Test: test}
	args := []string{"netns", "exec", s.cli, "dnsperf", "-s", "10.137.0.1", "-d", file, "-l", strconv.Itoa(int(d.Seconds())), "-c", "4", "-q", "200", "-t", "2"}
	if test == "dns-latency" {
		args = append(args, "-Q", "1000", "-v")
	}
	if test == "dns-cached" { // warm the cache
		exec.CommandContext(ctx, "ip", "netns", "exec", s.cli, "dnsperf", "-s", "10.137.0.1", "-d", file, "-n", "1").Run()
	}
	before, err := cpuTicks(s.pid())
	if err != nil {
		return smp, err
	}
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	after, _ := cpuTicks(s.pid())
	if err != nil {
		return smp, fmt.Errorf("dnsperf: %w: %s", err, lastLines(string(out), 5))
	}
	text := string(out)
	completed := atof(reCompleted, text)
	lost := atof(reLost, text)
	smp.PerSec = atof(reQPS, text)
	if completed+lost > 0 {
		smp.Lost = lost / (completed + lost)
	}
	if completed > 0 {
		smp.CPUus = float64(after-before) / ticksPerSecond / completed * 1e6
		failed := 0.0
		for _, m := range reFailed.FindAllStringSubmatch(text, -1) {
			v, _ := strconv.ParseFloat(m[2], 64)
			failed += v
		}
		smp.Failed = failed / completed
	}
	if test == "dns-latency" {
		var lat []float64
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			if m := reVerbose.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				lat = append(lat, v*1000)
			}
		}
		if len(lat) == 0 {
			return smp, fmt.Errorf("dnsperf -v gave no latencies: %s", lastLines(text, 5))
		}
		slices.Sort(lat)
		smp.P50ms, smp.P99ms, smp.MaxMs = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return smp, nil
}

var (
	reSent   = regexp.MustCompile(`sent packets: (\d+)`)
	reRecv   = regexp.MustCompile(`received packets: (\d+)`)
	reAvgDly = regexp.MustCompile(`avg delay: ([\d.]+) ms`)
	reMaxDly = regexp.MustCompile(`max delay: ([\d.]+) ms`)
)

// runPerfDHCP brings rate new clients a second for d with perfdhcp, from
// the server's client namespace, and counts the completed exchanges
// (DISCOVER, OFFER, REQUEST, ACK). Rate 0 brings one client at a time
// (ten a second), for the latency of a lone new client.
func runPerfDHCP(ctx context.Context, s server, rate int, d time.Duration, round int) (LANSample, error) {
	test := fmt.Sprintf("dhcp-%d", rate)
	r := rate
	if rate == 0 {
		test, r = "dhcp-single", 10
	}
	smp := LANSample{Server: s.name, Test: test}
	// A base address of its own for each run: every client is new.
	base := fmt.Sprintf("mac=02:%02x:%02x:00:00:00", round, rate%256)
	before, err := cpuTicks(s.pid())
	if err != nil {
		return smp, err
	}
	// -B: the clients ask for broadcast answers, which a client without
	// an address hears whatever the server's habit (dnsmasq answers a
	// client that does not ask for broadcast to its hardware address).
	// -d 4: a client waits 4 s for an answer before it counts as lost, as
	// real clients do before they try again (dnsmasq pings each address
	// before offering it, which takes about a second).
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", s.cli, "perfdhcp", "-4", "-B", "-l", "eth0", "-r", strconv.Itoa(r),
		"-R", "1000000", "-b", base, "-p", strconv.Itoa(int(d.Seconds())), "-d", "4", "-W", "4000000").CombinedOutput()
	after, _ := cpuTicks(s.pid())
	text := string(out)
	// perfdhcp exits 3 when packets were dropped: a result, not a failure.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		return smp, fmt.Errorf("perfdhcp: %w: %s", err, lastLines(text, 8))
	}
	sent := reSent.FindAllStringSubmatch(text, -1)
	recv := reRecv.FindAllStringSubmatch(text, -1)
	avg := reAvgDly.FindAllStringSubmatch(text, -1)
	mx := reMaxDly.FindAllStringSubmatch(text, -1)
	if len(sent) < 2 || len(recv) < 2 {
		return smp, fmt.Errorf("perfdhcp: no statistics: %s", lastLines(text, 8))
	}
	discovers, _ := strconv.ParseFloat(sent[0][1], 64)
	acks, _ := strconv.ParseFloat(recv[1][1], 64)
	// Completed exchanges over the run (perfdhcp's own rate counts its
	// wait for the last answers too).
	smp.PerSec = acks / d.Seconds()
	if discovers > 0 {
		smp.Lost = 1 - acks/discovers
	}
	if acks > 0 {
		smp.CPUus = float64(after-before) / ticksPerSecond / acks * 1e6
	}
	// perfdhcp gives each exchange's mean and maximum delay: the whole
	// exchange is the sum of DISCOVER-OFFER and REQUEST-ACK.
	if len(avg) >= 2 && len(mx) >= 2 {
		a1, _ := strconv.ParseFloat(avg[0][1], 64)
		a2, _ := strconv.ParseFloat(avg[1][1], 64)
		m1, _ := strconv.ParseFloat(mx[0][1], 64)
		m2, _ := strconv.ParseFloat(mx[1][1], 64)
		smp.AvgMs, smp.MaxMs = a1+a2, m1+m2
	}
	return smp, nil
}

func atof(re *regexp.Regexp, s string) float64 {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteJSON writes the results to path.
func (r *LANResults) WriteJSON(path string) error { return writeJSON(path, r) }

// ReadLANJSON reads results written by WriteJSON.
func ReadLANJSON(path string) (*LANResults, error) { return readJSON[LANResults](path) }

// lanTests is the order the tables show the tests in.
var lanTests = []struct{ test, what string }{
	{"dns-private", "DNS, private names (queries/s)"},
	{"dns-cached", "DNS, cached upstream names (queries/s)"},
	{"dns-miss", "DNS, cache misses, forwarded (queries/s)"},
	{"dns-latency", "DNS at 1,000 queries/s (latency)"},
	{"dhcp-single", "DHCP, one new client at a time (exchange time)"},
}

// Print writes the results as tables: for each test, each server's median
// and spread over the rounds, and netshare's ratio to dnsmasq.
func (r *LANResults) Print(w io.Writer, markdown bool) {
	tests := slices.Clone(lanTests)
	seen := map[string]bool{}
	for _, s := range r.Samples {
		if strings.HasPrefix(s.Test, "dhcp-") && s.Test != "dhcp-single" && !seen[s.Test] {
			seen[s.Test] = true
			tests = append(tests, struct{ test, what string }{s.Test, "DHCP, " + strings.TrimPrefix(s.Test, "dhcp-") + " new clients/s (completed exchanges/s)"})
		}
	}
	row := func(cells ...string) {
		if markdown {
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		} else {
			fmt.Fprintln(w, strings.Join(cells, "\t"))
		}
	}
	fmt.Fprintf(w, "netshare beside dnsmasq, %s, %s\n\n", r.Machine, r.When)
	row("test", "netshare", "dnsmasq", "netshare/dnsmasq", "CPU/op netshare", "CPU/op dnsmasq", "CPU ratio", "lost n/d", "SERVFAIL n/d")
	if markdown {
		row("---", "---", "---", "---", "---", "---", "---", "---", "---")
	}
	for _, t := range tests {
		get := func(server string, f func(LANSample) float64) []float64 {
			var v []float64
			for _, s := range r.Samples {
				if s.Server == server && s.Test == t.test {
					v = append(v, f(s))
				}
			}
			return v
		}
		rate := func(s LANSample) float64 { return s.PerSec }
		cpu := func(s LANSample) float64 { return s.CPUus }
		lost := func(s LANSample) float64 { return s.Lost }
		failed := func(s LANSample) float64 { return s.Failed }
		n, d := get("netshare", rate), get("dnsmasq", rate)
		if len(n) == 0 || len(d) == 0 {
			continue
		}
		cell := func(v []float64, unit string) string {
			med, lo, hi := spread(v)
			return fmt.Sprintf("%.4g%s [%.4g-%.4g]", med, unit, lo, hi)
		}
		ratio := func(a, b []float64) string {
			ma, _, _ := spread(a)
			mb, _, _ := spread(b)
			if mb == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2fx", ma/mb)
		}
		// two gives a latency row: two figures' medians for each server.
		two := func(format string, a, b func(LANSample) float64) {
			p := func(server string) string {
				ma, _, _ := spread(get(server, a))
				mb, _, _ := spread(get(server, b))
				return fmt.Sprintf(format, ma, mb)
			}
			row(t.what, p("netshare"), p("dnsmasq"), "", "", "", "", "", "")
		}
		switch t.test {
		case "dns-latency":
			two("p50 %.3g ms, p99 %.3g ms", func(s LANSample) float64 { return s.P50ms }, func(s LANSample) float64 { return s.P99ms })
		case "dhcp-single":
			two("mean %.3g ms, max %.3g ms", func(s LANSample) float64 { return s.AvgMs }, func(s LANSample) float64 { return s.MaxMs })
		default:
			share := func(f func(LANSample) float64) string {
				a, _, _ := spread(get("netshare", f))
				b, _, _ := spread(get("dnsmasq", f))
				return fmt.Sprintf("%.1f%% / %.1f%%", a*100, b*100)
			}
			fails := ""
			if strings.HasPrefix(t.test, "dns-") {
				fails = share(failed)
			}
			row(t.what, cell(n, "/s"), cell(d, "/s"), ratio(n, d), cell(get("netshare", cpu), "µs"), cell(get("dnsmasq", cpu), "µs"),
				ratio(get("netshare", cpu), get("dnsmasq", cpu)), share(lost), fails)
		}
	}
}
