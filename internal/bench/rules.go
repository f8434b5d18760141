package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

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
