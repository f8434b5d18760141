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

// readMappings is the size of the mapping list the readers read.
const readMappings = 100

// bulkTurn adds BulkN mappings through the API, one call each, from
// BulkConns clients at once, into a daemon holding none but the
// readMappings of lan0, and times them. Then one client reads (the
// mapping list of lan0 and the connection list, in turn): alone, and
// while the clients add BulkN more.
func bulkTurn(ctx context.Context, o *Options, l *lab.Lab, m *hnetcfg.SharingManager, s *samples) error {
	if err := dropComparator(l); err != nil {
		return err
	}
	if _, err := restart(ctx, l, 0); err != nil {
		return err
	}
	lan, err := m.Connection(ctx, "lan0")
	if err != nil {
		return err
	}
	lanCfg := m.INetSharingConfigurationForINetConnection(lan)
	for i := range readMappings {
		if _, err := lanCfg.AddPortMapping(ctx, "read", hnetcfg.NAT_PROTOCOL_TCP, 30000+i, serverPort, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS); err != nil {
			return err
		}
	}
	wan, err := m.Connection(ctx, "wan0")
	if err != nil {
		return err
	}
	read := func(stop <-chan struct{}, most int) (map[string][]float64, error) {
		rm := hnetcfg.NewSharingManager(l.Socket)
		list := rm.INetSharingConfigurationForINetConnection(lan)
		out := map[string][]float64{}
		kind := "read-idle"
		if stop != nil {
			kind = "read-busy"
		}
		for range most {
			select {
			case <-stop:
				return out, nil
			default:
			}
			t0 := time.Now()
			ms, err := list.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
			if err == nil && len(ms) != readMappings {
				err = fmt.Errorf("lan0 lists %d mappings, want %d", len(ms), readMappings)
			}
			t1 := time.Now()
			if err == nil {
				_, err = rm.EnumEveryConnection(ctx)
			}
			t2 := time.Now()
			if err != nil {
				return nil, err
			}
			out[latKey(kind, "mapping list (100)", 0)] = append(out[latKey(kind, "mapping list (100)", 0)], us(t1.Sub(t0)))
			out[latKey(kind, "connection list", 0)] = append(out[latKey(kind, "connection list", 0)], us(t2.Sub(t1)))
		}
		return out, nil
	}
	// The adds alone, timed.
	per := o.BulkN / o.BulkConns
	adds := func(base int) (time.Duration, error) {
		errc := make(chan error, o.BulkConns)
		start := time.Now()
		for w := range o.BulkConns {
			go func() {
				cfg := hnetcfg.NewSharingManager(l.Socket).INetSharingConfigurationForINetConnection(wan)
				for i := range per {
					if _, err := cfg.AddPortMapping(ctx, "bulk", hnetcfg.NAT_PROTOCOL_TCP, base+w*per+i, serverPort, 0, lab.LANHost, hnetcfg.ICSTT_IPADDRESS); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		var werr error
		for range o.BulkConns {
			if err := <-errc; err != nil && werr == nil {
				werr = err
			}
		}
		return time.Since(start), werr
	}
	d, err := adds(1)
	if err != nil {
		return err
	}
	// Then the reads: alone, and beside as many adds again.
	idle, err := read(nil, 300)
	if err != nil {
		return err
	}
	s.addLatencies(idle)
	stop := make(chan struct{})
	busy := make(chan map[string][]float64, 1)
	rerr := make(chan error, 1)
	go func() {
		r, err := read(stop, 1<<30)
		busy <- r
		rerr <- err
	}()
	_, werr := adds(1 + o.BulkN)
	close(stop)
	r, err := <-busy, <-rerr
	if werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	s.addLatencies(r)
	s.bulkN = per * o.BulkConns
	s.bulk = append(s.bulk, float64(s.bulkN)/d.Seconds())
	return nil
}

// table is one table of results.
type table struct {
	header []string
	rows   [][]string
}

// tables lays the results out with the ratios the targets ask for. A
// ratio "vs N=0" is the median of the ratios taken round by round, with
// their range.
func (r *Results) tables() []table {
	lat := table{header: []string{"change (µs)", "N", "netshare API p50", "p99", "table alone p50", "p99", "rule per mapping p50", "p99", "rule / API", "rule / table", "API vs N=0 [range]", "table vs N=0"}}
	for _, x := range r.Latency {
		if x.Design != "netshare" {
			continue
		}
		k := r.find("netshare-table", x.Op, x.N)
		y := r.find("rule-per-mapping", x.Op, x.N)
		b := r.find("netshare", x.Op, r.minN())
		kb := r.find("netshare-table", x.Op, r.minN())
		lat.rows = append(lat.rows, []string{x.Op, fmt.Sprint(x.N), f0(x.P50us), f0(x.P99us), f0(k.P50us), f0(k.P99us), f0(y.P50us), f0(y.P99us),
			ratio(y.P50us, x.P50us), ratio(y.P50us, k.P50us), roundRatio(x.RoundP50us, b.RoundP50us), roundRatio(k.RoundP50us, kb.RoundP50us)})
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
	bk := table{header: []string{"bulk", "N", "clients", "per s median", "[min-max]"},
		rows: [][]string{{"API adds", fmt.Sprint(r.Bulk.N), fmt.Sprint(r.Bulk.Clients), f0(r.Bulk.PerSec), fmt.Sprintf("[%.0f-%.0f]", r.Bulk.MinPerS, r.Bulk.MaxPerS)}}}
	rd := table{header: []string{"read (µs)", "idle p50", "p99", "during bulk adds p50", "p99", "samples"}}
	for _, op := range []string{"mapping list (100)", "connection list"} {
		i, b := r.read("read-idle", op), r.read("read-busy", op)
		rd.rows = append(rd.rows, []string{op, f0(i.P50us), f0(i.P99us), f0(b.P50us), f0(b.P99us), fmt.Sprint(b.Samples)})
	}
	return []table{lat, tr, rs, bk, rd}
}

// roundRatio returns the median of a[i]/b[i] and their range.
func roundRatio(a, b []float64) string {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	if len(rs) == 0 {
		return "-"
	}
	med, lo, hi := spread(rs)
	return fmt.Sprintf("%.2fx [%.2f-%.2f]", med, lo, hi)
}

func (r *Results) read(design, op string) Latency {
	for _, x := range r.Reads {
		if x.Design == design && x.Op == op {
			return x
		}
	}
	return Latency{}
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
