// Package bench measures netshare against the design its peers use, in
// namespaces of its own: the time from an API call to the kernel holding a
// port mapping change, the new-connection and UDP request rates through a
// mapping, the time to restore N mappings at start and the daemon's
// memory, and bulk adds through the API. The comparator keeps one nftables
// DNAT rule per mapping (firewalld, miniupnpd, fw4, CNI portmap, Docker);
// plain routing without NAT bounds what the machine can do.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/lab"
	"github.com/netshare/netshare/internal/store"
)

// Options say what to measure.
type Options struct {
	Binary    string // the netshare binary
	Dir       string // the lab's directory
	LatencyNs []int  // mappings present for change latency
	TrafficNs []int  // mappings present for the traffic rates
	RestoreNs []int  // mappings restored at start
	Ops       int    // changes measured per N and kind
	Reps      int    // repetitions of traffic runs and restores
	Duration  time.Duration
	Clients   int // parallel traffic clients
	BulkN     int // mappings added by the bulk test
	BulkConns int // concurrent API clients of the bulk test
	// Only, if set, are the designs measured (netshare, netshare-table,
	// rule-per-mapping, routing, bulk).
	Only     []string
	Progress io.Writer
}

// Quick returns options small enough for CI: they check that the bench
// works, not what it measures.
func Quick(binary, dir string) Options {
	return Options{Binary: binary, Dir: dir, LatencyNs: []int{0, 100}, TrafficNs: []int{1, 100}, RestoreNs: []int{100},
		Ops: 10, Reps: 2, Duration: 300 * time.Millisecond, Clients: 2, BulkN: 64, BulkConns: 4}
}

// Full returns the options of the issue: N up to 50,000.
func Full(binary, dir string) Options {
	return Options{Binary: binary, Dir: dir, LatencyNs: []int{0, 1000, 10000, 50000}, TrafficNs: []int{1, 1000, 10000, 50000},
		RestoreNs: []int{10000, 50000}, Ops: 300, Reps: 3, Duration: 2 * time.Second, Clients: 4, BulkN: 10000, BulkConns: 16}
}

// Latency is the spread of one kind of change (or read) at one N.
type Latency struct {
	Design  string  `json:"design"`
	N       int     `json:"n"`
	Op      string  `json:"op"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	Samples int     `json:"samples"`
	// RoundP50us are the medians of each round, for ratios taken round
	// by round.
	RoundP50us []float64 `json:"round_p50_us,omitempty"`
}

// Rate is the spread of a traffic rate over the repetitions.
type Rate struct {
	Design string  `json:"design"`
	N      int     `json:"n"`
	Proto  string  `json:"proto"`
	Median float64 `json:"median_per_s"`
	Min    float64 `json:"min_per_s"`
	Max    float64 `json:"max_per_s"`
}

// Restore is the time from start to the kernel holding N mappings.
type Restore struct {
	N        int     `json:"n"`
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	MaxMs    float64 `json:"max_ms"`
	PeakRSS  float64 `json:"peak_rss_mb"`
}

// Bulk is the rate of adds of many mappings through the API, from
// several clients at once, over the rounds.
type Bulk struct {
	N       int     `json:"n"`
	Clients int     `json:"clients"`
	PerSec  float64 `json:"per_s"`
	MinPerS float64 `json:"min_per_s"`
	MaxPerS float64 `json:"max_per_s"`
}

// Results are everything measured in one run.
type Results struct {
	When     string    `json:"when"`
	Machine  string    `json:"machine"`
	Options  string    `json:"options"`
	Latency  []Latency `json:"latency"`
	Traffic  []Rate    `json:"traffic"`
	Restores []Restore `json:"restore"`
	Bulk     Bulk      `json:"bulk"`
	// Reads are reads through the socket, while the bulk adds run
	// ("busy") and before ("idle").
	Reads []Latency `json:"reads"`
}

const (
	fillPort   = 10000 // the filling mappings use ports from here
	opPort     = 2000  // the measured changes use ports from here
	testPort   = 8000  // the traffic goes through this mapping
	serverPort = 80    // to this port of the lan host
)

func (o *Options) say(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Run builds a lab, measures in rounds, and removes the lab.
//
// In each round every design at every N takes a turn, in an order that
// rotates from round to round, so that the drift of a shared machine
// falls on all of them alike: netshare through its API (restarted with N
// mappings, which times the restore), netshare's table driven without
// the API, one rule per mapping, plain routing, and the bulk adds with
// readers beside them.
func Run(ctx context.Context, o Options) (*Results, error) {
	r := &Results{When: time.Now().UTC().Format(time.RFC3339), Machine: machine(),
		Options: fmt.Sprintf("ops=%d reps=%d duration=%v clients=%d bulk=%d from %d clients", o.Ops, o.Reps, o.Duration, o.Clients, o.BulkN, o.BulkConns)}
	o.say("building the lab")
	l, err := lab.Up(ctx, lab.Options{Dir: o.Dir, Binary: o.Binary})
	if err != nil {
		return nil, err
	}
	defer l.Down()
	if _, err := l.Start(l.LAN, "bench-server.log", "lab", "server", "--port", strconv.Itoa(serverPort)); err != nil {
		return nil, err
	}
	m := hnetcfg.NewSharingManager(l.Socket)
	var turns []turn
	for _, n := range union(o.LatencyNs, o.TrafficNs, o.RestoreNs) {
		turns = append(turns, turn{"netshare", n})
	}
	for _, n := range o.LatencyNs {
		turns = append(turns, turn{"netshare-table", n})
	}
	for _, n := range union(o.LatencyNs, o.TrafficNs) {
		turns = append(turns, turn{"rule-per-mapping", n})
	}
	turns = append(turns, turn{"routing", 0}, turn{"bulk", 0})
	if len(o.Only) > 0 {
		for _, d := range o.Only {
			if !slices.ContainsFunc(turns, func(t turn) bool { return t.design == d }) {
				return nil, fmt.Errorf("--only: %q is not a design; use netshare, netshare-table, rule-per-mapping, routing or bulk", d)
			}
		}
		turns = slices.DeleteFunc(turns, func(t turn) bool { return !slices.Contains(o.Only, t.design) })
	}
	reps := max(o.Reps, 1)
	perRound := max(o.Ops/reps, 1)
	acc := &samples{lat: map[string][]float64{}, rounds: map[string][]float64{}, rates: map[string][]float64{}, restores: map[int][]float64{}, rss: map[int]float64{}}
	for round := range reps {
		// Rotate by a step prime to the number of turns, so that each
		// turn follows a different one in each round.
		for i := range turns {
			t := turns[(i+round*5)%len(turns)]
			o.say("round %d/%d: %s", round+1, reps, t)
			if err := t.run(ctx, &o, l, m, perRound, acc); err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, t, err)
			}
		}
	}
	acc.results(&o, r)
	return r, nil
}

// turn is one design at one N, for one turn of a round.
type turn struct {
	design string
	n      int
}

func (t turn) String() string {
	if t.design == "routing" || t.design == "bulk" {
		return t.design
	}
	return fmt.Sprintf("%s with %d mappings", t.design, t.n)
}

// samples accumulate the measurements of the rounds.
type samples struct {
	lat      map[string][]float64 // design|op|n -> every latency
	rounds   map[string][]float64 // design|op|n -> the median of each round
	rates    map[string][]float64 // design|proto|n -> each round's rate
	restores map[int][]float64    // n -> restore times (ms)
	rss      map[int]float64      // n -> the highest peak RSS seen (MB)
	bulk     []float64            // adds per second, each round
	bulkN    int
}

func latKey(design, op string, n int) string { return fmt.Sprintf("%s|%s|%d", design, op, n) }

// addLatencies records one round's latencies.
func (s *samples) addLatencies(raw map[string][]float64) {
	for k, v := range raw {
		s.lat[k] = append(s.lat[k], v...)
		sorted := slices.Clone(v)
		slices.Sort(sorted)
		s.rounds[k] = append(s.rounds[k], pct(sorted, 50))
	}
}

// run takes the turn.
func (t turn) run(ctx context.Context, o *Options, l *lab.Lab, m *hnetcfg.SharingManager, ops int, s *samples) error {
	var c *changes
	addr := lab.GatewayWAN
	var done func() error
	switch t.design {
	case "netshare":
		if err := dropComparator(l); err != nil {
			return err
		}
		d, err := restart(ctx, l, t.n)
		if err != nil {
			return err
		}
		if err := checkElements(l, t.n); err != nil {
			return err
		}
		if slices.Contains(o.RestoreNs, t.n) {
			s.restores[t.n] = append(s.restores[t.n], float64(d.Microseconds())/1000)
			s.rss[t.n] = max(s.rss[t.n], peakRSS(l.DaemonPID))
		}
		if slices.Contains(o.LatencyNs, t.n) {
			if c, err = apiChanges(ctx, m); err != nil {
				return err
			}
		}
	case "netshare-table":
		var err error
		if c, done, err = tableTurn(l, t.n); err != nil {
			return err
		}
	case "rule-per-mapping":
		var err error
		if c, done, err = rulesTurn(l, t.n); err != nil {
			return err
		}
		if !slices.Contains(o.LatencyNs, t.n) {
			c = nil
		}
	case "routing":
		var err error
		if done, err = routingTurn(l); err != nil {
			return err
		}
		addr = lab.LANHost
	case "bulk":
		return bulkTurn(ctx, o, l, m, s)
	}
	if done != nil {
		defer done()
	}
	if c != nil {
		raw, err := timeChanges(t.design, t.n, ops, *c)
		if err != nil {
			return err
		}
		s.addLatencies(raw)
	}
	if t.design == "routing" || t.design != "netshare-table" && slices.Contains(o.TrafficNs, t.n) {
		// Traffic is measured in the steady state: the kernel frees the
		// elements or rules of the table the turn replaced in the
		// background, after an RCU grace period.
		time.Sleep(settle)
		for _, proto := range []string{"tcp", "udp"} {
			v, err := trafficOnce(o, l, t.design, t.n, proto, addr)
			if err != nil {
				return err
			}
			k := fmt.Sprintf("%s|%s|%d", t.design, proto, t.n)
			s.rates[k] = append(s.rates[k], v)
		}
	}
	return nil
}

// results turns the samples into the results.
func (s *samples) results(o *Options, r *Results) {
	for _, k := range slices.Sorted(maps.Keys(s.lat)) {
		var design, op string
		var n int
		parts := strings.Split(k, "|")
		design, op = parts[0], parts[1]
		n, _ = strconv.Atoi(parts[2])
		x := lat(design, n, op, s.lat[k])
		x.RoundP50us = s.rounds[k]
		if strings.HasPrefix(design, "read-") {
			r.Reads = append(r.Reads, x)
		} else {
			r.Latency = append(r.Latency, x)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.rates)) {
		parts := strings.Split(k, "|")
		n, _ := strconv.Atoi(parts[2])
		r.Traffic = append(r.Traffic, rateOf(parts[0], n, parts[1], s.rates[k]))
	}
	for _, n := range slices.Sorted(maps.Keys(s.restores)) {
		med, lo, hi := spread(s.restores[n])
		r.Restores = append(r.Restores, Restore{N: n, MedianMs: med, MinMs: lo, MaxMs: hi, PeakRSS: s.rss[n]})
	}
	if len(s.bulk) > 0 {
		med, lo, hi := spread(s.bulk)
		r.Bulk = Bulk{N: s.bulkN, Clients: o.BulkConns, PerSec: med, MinPerS: lo, MaxPerS: hi}
	}
}

// apiChanges are netshare's changes through its API; the API answers once
// the netlink batch is acknowledged.
func apiChanges(ctx context.Context, m *hnetcfg.SharingManager) (*changes, error) {
	wan, err := m.Connection(ctx, "wan0")
	if err != nil {
		return nil, err
	}
	cfg := m.INetSharingConfigurationForINetConnection(wan)
	var pm *hnetcfg.PortMapping
	return &changes{
		add: func(i int) error {
			var err error
			pm, err = cfg.AddPortMapping(ctx, "op", hnetcfg.NAT_PROTOCOL_TCP, opPort+i%1000, serverPort, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS)
			if err == nil {
				err = pm.Enable(ctx)
			}
			return err
		},
		disable: func() error { return pm.Disable(ctx) },
		enable:  func() error { return pm.Enable(ctx) },
		remove:  func() error { return pm.Delete(ctx) },
	}, nil
}

// routingTurn makes the wan host route to the private network through the
// gateway, with netshare gone: plain forwarding, no NAT.
func routingTurn(l *lab.Lab) (func() error, error) {
	if err := l.StopDaemon(); err != nil {
		return nil, err
	}
	if err := dropTable(l); err != nil {
		return nil, err
	}
	if _, err := l.Output(l.WAN, "ip", "route", "replace", "192.168.137.0/24", "via", lab.GatewayWAN); err != nil {
		return nil, err
	}
	return func() error {
		_, err := l.Output(l.WAN, "ip", "route", "del", "192.168.137.0/24")
		return err
	}, nil
}

// dropTable removes netshare's table from the gateway, if it is there.
func dropTable(l *lab.Lab) error {
	_, err := l.Output(l.GW, "sh", "-c", "nft list table inet "+fw.TableName+" >/dev/null 2>&1 || exit 0; nft delete table inet "+fw.TableName)
	return err
}

// dropComparator removes the comparator's table, if it is there.
func dropComparator(l *lab.Lab) error {
	_, err := l.Output(l.GW, "sh", "-c", "nft list table ip "+rpmTableName+" >/dev/null 2>&1 || exit 0; nft delete table ip "+rpmTableName)
	return err
}

func union(lists ...[]int) []int {
	var out []int
	for _, l := range lists {
		for _, n := range l {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// fill replaces the stored mappings with n enabled ones on wan0 (the
// traffic mapping, tcp and udp, counts for one), with the daemon stopped.
func fill(l *lab.Lab, n int) error {
	ctx := context.Background()
	st, err := store.Open(l.StateDir())
	if err != nil {
		return err
	}
	defer st.Close()
	state, err := store.LoadState(ctx, st.Desired, st.Runtime)
	if err != nil {
		return err
	}
	var wan string
	for _, c := range state.Connections {
		if c.Interface == "wan0" {
			wan = c.ID
		}
	}
	if wan == "" {
		return fmt.Errorf("no wan0 connection in the store")
	}
	var b store.Batch
	for _, mp := range state.Mappings {
		b.DeleteMapping(mp.ID, store.OriginUser)
	}
	id := state.LastMappingID
	target := netip.MustParseAddr(lab.LANHost)
	put := func(name string, proto ipproto.Proto, ext int) {
		id++
		b.PutMapping(store.Mapping{ID: id, Connection: wan, Name: name, Protocol: proto,
			ExternalPort: uint16(ext), InternalPort: serverPort, TargetIP: target, Enabled: true})
	}
	if n > 0 {
		put("test-tcp", ipproto.TCP, testPort)
		put("test-udp", ipproto.UDP, testPort)
	}
	for i := range max(n-1, 0) {
		put(fmt.Sprintf("fill-%d", i), ipproto.TCP, fillPort+i)
	}
	b.SetLastMappingID(id)
	recs, err := b.Records()
	if err != nil {
		return err
	}
	_, err = st.Desired.Commit(ctx, state.Rev, recs)
	return err
}

// restart restarts the daemon with n mappings and returns how long it took
// to answer (it answers once the kernel holds them all).
func restart(ctx context.Context, l *lab.Lab, n int) (time.Duration, error) {
	if err := l.StopDaemon(); err != nil {
		return 0, err
	}
	if err := fill(l, n); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := l.StartDaemon(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// changes are the steps of one measured round: add-and-enable, disable,
// enable again (not measured) and remove of an enabled mapping.
type changes struct {
	add                     func(i int) error
	disable, enable, remove func() error
}

// timeChanges runs ops rounds of c and returns the latencies of each
// kind (µs), by latKey.
func timeChanges(design string, n, ops int, c changes) (map[string][]float64, error) {
	var add, disable, remove []float64
	for i := range ops {
		t0 := time.Now()
		err := c.add(i)
		t1 := time.Now()
		if err == nil {
			err = c.disable()
		}
		t2 := time.Now()
		if err == nil {
			err = c.enable()
		}
		t3 := time.Now()
		if err == nil {
			err = c.remove()
		}
		t4 := time.Now()
		if err != nil {
			return nil, fmt.Errorf("%s with %d mappings: %w", design, n, err)
		}
		add = append(add, us(t1.Sub(t0)))
		disable = append(disable, us(t2.Sub(t1)))
		remove = append(remove, us(t4.Sub(t3)))
	}
	return map[string][]float64{latKey(design, "add+enable", n): add, latKey(design, "disable", n): disable, latKey(design, "remove", n): remove}, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func lat(design string, n int, op string, samples []float64) Latency {
	s := slices.Clone(samples)
	slices.Sort(s)
	return Latency{Design: design, N: n, Op: op, P50us: pct(s, 50), P99us: pct(s, 99), Samples: len(s)}
}

func pct(sorted []float64, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func spread(v []float64) (med, lo, hi float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2], s[0], s[len(s)-1]
}

func rateOf(design string, n int, proto string, rates []float64) Rate {
	med, lo, hi := spread(rates)
	return Rate{Design: design, N: n, Proto: proto, Median: med, Min: lo, Max: hi}
}

// trafficOnce runs the load once and returns its rate per second.
func trafficOnce(o *Options, l *lab.Lab, design string, n int, proto, addr string) (float64, error) {
	port := testPort
	if design == "routing" {
		port = serverPort
	}
	flushConntrack(l)
	outText, err := l.Output(l.WAN, o.Binary, "bench", "load", "--proto", proto, "--addr", fmt.Sprintf("%s:%d", addr, port),
		"--clients", strconv.Itoa(o.Clients), "--duration", o.Duration.String())
	if err != nil {
		return 0, fmt.Errorf("%s %s load with %d mappings: %w", design, proto, n, err)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(outText), 64)
	if err != nil {
		return 0, fmt.Errorf("load said %q", outText)
	}
	return count / o.Duration.Seconds(), nil
}

func flushConntrack(l *lab.Lab) {
	l.Output(l.GW, "sh", "-c", "command -v conntrack >/dev/null && conntrack -F 2>/dev/null; true")
}

// peakRSS returns the peak resident memory of a process, in MB.
func peakRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func machine() string {
	var parts []string
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				parts = append(parts, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":")))
				break
			}
		}
	}
	parts = append(parts, fmt.Sprintf("%d cores", runtime.NumCPU()))
	return strings.Join(parts, ", ")
}

// ReadJSON reads results that WriteJSON wrote.
func ReadJSON(path string) (*Results, error) { return readJSON[Results](path) }

// WriteJSON writes the results to path.
func (r *Results) WriteJSON(path string) error { return writeJSON(path, r) }

// readJSON reads a results file.
func readJSON[T any](path string) (*T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r T
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// writeJSON writes results to path, indented.
func writeJSON(path string, r any) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// settle is how long a turn waits after its setup before traffic.
const settle = time.Second

// rpmTableName is the comparator's table (family ip).
const rpmTableName = "rpm"
