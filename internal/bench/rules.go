package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/fw/nftfw"
	"github.com/netshare/netshare/internal/lab"
)

// nftIn opens an nftables connection in the lab's gateway.
func nftIn(l *lab.Lab) (*nftables.Conn, func(), error) {
	ns, err := netns.GetFromName(l.GW)
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting())
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return c, func() { c.CloseLasting(); ns.Close() }, nil
}

// checkElements checks that the kernel's mappings map holds what n
// mappings compile to.
func checkElements(l *lab.Lab, n int) error {
	c, done, err := nftIn(l)
	if err != nil {
		return err
	}
	defer done()
	set, err := c.GetSetByName(&nftables.Table{Family: nftables.TableFamilyINet, Name: fw.TableName}, fw.MapMappings)
	if err != nil {
		return err
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		return err
	}
	want := 0
	if n > 0 {
		want = n + 1 // the traffic mapping is tcp and udp
	}
	if len(elems) != want {
		return fmt.Errorf("the kernel holds %d mapping elements, want %d", len(elems), want)
	}
	return nil
}

// The comparator: one DNAT rule per mapping in a chain of its own table,
// as firewalld, miniupnpd and fw4 do, changed over netlink with a lasting
// socket and the rule handles kept (the fastest way for that design).
var (
	rpmTable = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "rpm"}
	rpmChain = &nftables.Chain{Name: "prerouting", Table: rpmTable, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}
)

func dnatRule(proto byte, port uint16) *nftables.Rule {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, "wan0")
	target := []byte{192, 168, 137, 10}
	return &nftables.Rule{Table: rpmTable, Chain: rpmChain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.Immediate{Register: 1, Data: target},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, serverPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}}
}

// buildRules makes the comparator's chain hold n mappings, the traffic
// mapping last (the newest rule, where the peers append it).
func buildRules(c *nftables.Conn, n int) error {
	c.AddTable(rpmTable)
	c.DelTable(rpmTable)
	c.AddTable(rpmTable)
	c.AddChain(rpmChain)
	for i := range max(n-1, 0) {
		c.AddRule(dnatRule(unix.IPPROTO_TCP, uint16(fillPort+i)))
		if i%2000 == 1999 {
			if err := c.Flush(); err != nil {
				return err
			}
		}
	}
	if n > 0 {
		c.AddRule(dnatRule(unix.IPPROTO_TCP, testPort))
		c.AddRule(dnatRule(unix.IPPROTO_UDP, testPort))
	}
	return c.Flush()
}

func ruleRuns(ctx context.Context, o *Options, l *lab.Lab, r *Results) error {
	if err := l.StopDaemon(); err != nil {
		return err
	}
	c, done, err := nftIn(l)
	if err != nil {
		return err
	}
	defer done()
	// netshare's table goes, so that only the comparator translates.
	c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: fw.TableName})
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: fw.TableName})
	if err := c.Flush(); err != nil {
		return err
	}
	defer func() {
		c.AddTable(rpmTable)
		c.DelTable(rpmTable)
		c.Flush()
	}()
	for _, n := range union(o.LatencyNs, o.TrafficNs) {
		if slices.Contains(o.LatencyNs, n) {
			o.say("netshare's table alone (no API, no store), with %d mappings", n)
			lat, err := kernelLatency(o, l, n)
			if err != nil {
				return err
			}
			r.Latency = append(r.Latency, lat...)
		}
		o.say("one rule per mapping, with %d mappings", n)
		if err := buildRules(c, n); err != nil {
			return fmt.Errorf("building %d rules: %w", n, err)
		}
		if slices.Contains(o.LatencyNs, n) {
			var rule *nftables.Rule
			var port uint16
			addRule := func() error {
				rule = c.AddRule(dnatRule(unix.IPPROTO_TCP, port))
				return c.Flush()
			}
			delRule := func() error {
				if err := c.DelRule(rule); err != nil {
					return err
				}
				return c.Flush()
			}
			lat, err := timeChanges("rule-per-mapping", n, o.Ops, changes{
				add:     func(i int) error { port = uint16(opPort + i%1000); return addRule() },
				disable: delRule,
				enable:  addRule,
				remove:  delRule,
			})
			if err != nil {
				return err
			}
			r.Latency = append(r.Latency, lat...)
		}
		if slices.Contains(o.TrafficNs, n) {
			rates, err := traffic(o, l, "rule-per-mapping", n, lab.GatewayWAN)
			if err != nil {
				return err
			}
			r.Traffic = append(r.Traffic, rates...)
		}
	}
	return nil
}

// kernelLatency times the kernel part of netshare's changes: element
// changes in its table holding n mappings, through its nftables backend,
// the same way the comparator's rules are timed.
func kernelLatency(o *Options, l *lab.Lab, n int) ([]Latency, error) {
	ns, err := netns.GetFromName(l.GW)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	be, err := nftfw.New(ns, nil)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	target := netip.MustParseAddr(lab.LANHost)
	mk := func(port int) fw.Mapping {
		return fw.Mapping{Key: fw.Key{Interface: "wan0", Protocol: fw.TCP, ExternalPort: uint16(port)}, Target: target, InternalPort: serverPort}
	}
	cfg := &fw.Config{Public: "wan0", PublicAddrs: []netip.Addr{netip.MustParseAddr(lab.GatewayWAN)}, Private: []string{"lan0"}, Firewalled: []string{"wan0"}}
	for i := range n {
		cfg.Mappings = append(cfg.Mappings, mk(fillPort+i))
	}
	if err := be.Replace(context.Background(), cfg); err != nil {
		return nil, err
	}
	defer be.Remove(context.Background())
	ctx := context.Background()
	var m []fw.Mapping
	return timeChanges("netshare-table", n, o.Ops, changes{
		add: func(i int) error {
			m = []fw.Mapping{mk(opPort + i%1000)}
			return be.UpdateMappings(ctx, nil, m)
		},
		disable: func() error { return be.UpdateMappings(ctx, m, nil) },
		enable:  func() error { return be.UpdateMappings(ctx, nil, m) },
		remove:  func() error { return be.UpdateMappings(ctx, m, nil) },
	})
}

// routingRuns measures plain routing to the lan host, without NAT.
func routingRuns(o *Options, l *lab.Lab, r *Results) error {
	o.say("plain routing, no NAT")
	if _, err := l.Output(l.WAN, "ip", "route", "replace", "192.168.137.0/24", "via", lab.GatewayWAN); err != nil {
		return err
	}
	defer l.Output(l.WAN, "ip", "route", "del", "192.168.137.0/24")
	rates, err := traffic(o, l, "routing", 0, lab.LANHost)
	if err != nil {
		return err
	}
	r.Traffic = append(r.Traffic, rates...)
	return nil
}

// bulkRun adds BulkN mappings through the API, one call each, from
// BulkConns clients at once.
func bulkRun(ctx context.Context, o *Options, l *lab.Lab, m *hnetcfg.SharingManager, r *Results) error {
	o.say("bulk: %d mappings through the API from %d clients", o.BulkN, o.BulkConns)
	if _, err := restart(ctx, l, 0); err != nil {
		return err
	}
	wan, err := m.Connection(ctx, "wan0")
	if err != nil {
		return err
	}
	errc := make(chan error, o.BulkConns)
	start := time.Now()
	per := o.BulkN / o.BulkConns
	for w := range o.BulkConns {
		go func() {
			cfg := hnetcfg.NewSharingManager(l.Socket).INetSharingConfigurationForINetConnection(wan)
			for i := range per {
				if _, err := cfg.AddPortMapping(ctx, "bulk", hnetcfg.NAT_PROTOCOL_TCP, 20000+w*per+i, serverPort, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range o.BulkConns {
		if err := <-errc; err != nil {
			return err
		}
	}
	d := time.Since(start)
	r.Bulk = Bulk{N: per * o.BulkConns, Clients: o.BulkConns, Seconds: d.Seconds(), PerSec: float64(per*o.BulkConns) / d.Seconds()}
	return nil
}

// table is one table of results.
type table struct {
	header []string
	rows   [][]string
}

// tables lays the results out with the ratios the targets ask for.
func (r *Results) tables() []table {
	lat := table{header: []string{"change (µs)", "N", "netshare API p50", "p99", "table alone p50", "p99", "rule per mapping p50", "p99", "rule / API", "rule / table", "API vs N=0", "table vs N=0"}}
	for _, x := range r.Latency {
		if x.Design != "netshare" {
			continue
		}
		k := r.find("netshare-table", x.Op, x.N)
		y := r.find("rule-per-mapping", x.Op, x.N)
		b := r.find("netshare", x.Op, r.minN())
		kb := r.find("netshare-table", x.Op, r.minN())
		lat.rows = append(lat.rows, []string{x.Op, fmt.Sprint(x.N), f0(x.P50us), f0(x.P99us), f0(k.P50us), f0(k.P99us), f0(y.P50us), f0(y.P99us),
			ratio(y.P50us, x.P50us), ratio(y.P50us, k.P50us), ratio(x.P50us, b.P50us), ratio(k.P50us, kb.P50us)})
	}
	tr := table{header: []string{"traffic (per s)", "N", "netshare median", "[min-max]", "rule per mapping median", "[min-max]", "routing median", "netshare / rule", "netshare / routing", "netshare vs N=1"}}
	for _, x := range r.Traffic {
		if x.Design != "netshare" {
			continue
		}
		y := r.rate("rule-per-mapping", x.Proto, x.N)
		z := r.rate("routing", x.Proto, 0)
		b := r.rate("netshare", x.Proto, r.minTrafficN())
		tr.rows = append(tr.rows, []string{x.Proto, fmt.Sprint(x.N), f0(x.Median), fmt.Sprintf("[%.0f-%.0f]", x.Min, x.Max), f0(y.Median), fmt.Sprintf("[%.0f-%.0f]", y.Min, y.Max), f0(z.Median),
			ratio(x.Median, y.Median), ratio(x.Median, z.Median), ratio(x.Median, b.Median)})
	}
	rs := table{header: []string{"restore", "N", "median (ms)", "[min-max]", "daemon peak RSS (MB)"}}
	for _, x := range r.Restores {
		rs.rows = append(rs.rows, []string{"restore", fmt.Sprint(x.N), f0(x.MedianMs), fmt.Sprintf("[%.0f-%.0f]", x.MinMs, x.MaxMs), fmt.Sprintf("%.1f", x.PeakRSS)})
	}
	bk := table{header: []string{"bulk", "N", "clients", "seconds", "per s"},
		rows: [][]string{{"API adds", fmt.Sprint(r.Bulk.N), fmt.Sprint(r.Bulk.Clients), fmt.Sprintf("%.2f", r.Bulk.Seconds), f0(r.Bulk.PerSec)}}}
	return []table{lat, tr, rs, bk}
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// Print writes the results as aligned text tables, or as Markdown tables
// (for BENCHMARKS.md).
func (r *Results) Print(w io.Writer, markdown bool) {
	fmt.Fprintf(w, "netshare bench, %s\nmachine: %s\n%s\n", r.When, r.Machine, r.Options)
	for _, t := range r.tables() {
		fmt.Fprintln(w)
		if markdown {
			fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(t.header, " | "), strings.Repeat("---|", len(t.header)))
			for _, row := range t.rows {
				fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
			}
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(t.header, "\t")+"\t")
		for _, row := range t.rows {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
}

func (r *Results) find(design, op string, n int) Latency {
	for _, x := range r.Latency {
		if x.Design == design && x.Op == op && x.N == n {
			return x
		}
	}
	return Latency{}
}

func (r *Results) rate(design, proto string, n int) Rate {
	for _, x := range r.Traffic {
		if x.Design == design && x.Proto == proto && x.N == n {
			return x
		}
	}
	return Rate{}
}

func (r *Results) minN() int {
	m := -1
	for _, x := range r.Latency {
		if m < 0 || x.N < m {
			m = x.N
		}
	}
	return m
}

func (r *Results) minTrafficN() int {
	m := -1
	for _, x := range r.Traffic {
		if x.Design == "netshare" && (m < 0 || x.N < m) {
			m = x.N
		}
	}
	return m
}
