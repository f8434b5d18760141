package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/bench"
)

func (a *app) benchCmd() *cobra.Command {
	var quick, markdown bool
	var jsonPath, dir string
	var only []string
	c := &cobra.Command{
		Use:   "bench [--quick] [--only DESIGN,...] [--json-file FILE] [--dir DIR]",
		Short: "measure netshare against one nftables rule per mapping, in a lab of its own (root)",
		Long: `bench builds a lab (network namespaces, removed at the end) and measures the
time from an API call to the kernel holding a mapping change, connection and
request rates through a mapping, the restore of N mappings at start with the
daemon's memory, and bulk adds, beside the rule-per-mapping design of the
peers and plain routing. It prints tables and writes the results as JSON.
--quick uses small N, for checking that it works. --only measures some of
the designs: netshare, netshare-table, rule-per-mapping, routing, bulk.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return hresultFail(err)
			}
			o := bench.Full(bin, dir)
			if quick {
				o = bench.Quick(bin, dir)
			}
			o.Progress = a.env.Stderr
			o.Only = only
			r, err := bench.Run(c.Context(), o)
			if err != nil {
				return hresultFail(err)
			}
			if err := r.WriteJSON(jsonPath); err != nil {
				return hresultFail(err)
			}
			if a.json {
				return a.printJSON(r)
			}
			r.Print(a.env.Stdout, markdown)
			fmt.Fprintf(a.env.Stdout, "\nresults written to %s\n", jsonPath)
			return nil
		},
	}
	c.Flags().BoolVar(&quick, "quick", false, "small N and short runs")
	c.Flags().StringSliceVar(&only, "only", nil, "measure these designs only (netshare, netshare-table, rule-per-mapping, routing, bulk)")
	c.Flags().BoolVar(&markdown, "markdown", false, "print Markdown tables")
	var from string
	report := &cobra.Command{
		Use:   "report --from FILE [--markdown]",
		Short: "print the tables of a results file",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			r, err := bench.ReadJSON(from)
			if err != nil {
				return hresultFail(err)
			}
			r.Print(a.env.Stdout, markdown)
			return nil
		},
	}
	report.Flags().StringVar(&from, "from", "bench-results.json", "the results file")
	report.Flags().BoolVar(&markdown, "markdown", false, "print Markdown tables")
	c.AddCommand(report)
	c.Flags().StringVar(&jsonPath, "json-file", "bench-results.json", "where to write the results")
	c.Flags().StringVar(&dir, "dir", "/run/netshare-bench", "the bench lab's directory")
	var proto, addr string
	var clients int
	var duration time.Duration
	load := &cobra.Command{
		Use:    "load --proto tcp|udp --addr HOST:PORT",
		Short:  "generate traffic and print how many exchanges succeeded",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			n, err := bench.Load(proto, addr, clients, duration)
			if err != nil {
				return hresultFail(err)
			}
			fmt.Fprintln(a.env.Stdout, n)
			return nil
		},
	}
	load.Flags().StringVar(&proto, "proto", "tcp", "tcp or udp")
	load.Flags().StringVar(&addr, "addr", "", "where to")
	load.Flags().IntVar(&clients, "clients", 4, "parallel clients")
	load.Flags().DurationVar(&duration, "duration", 2*time.Second, "how long")
	c.AddCommand(load)
	var lanQuick, lanMarkdown bool
	var lanJSON, lanDir, lanFrom, lanLogs, lanOnly string
	lan := &cobra.Command{
		Use:   "lan [--quick] [--json-file FILE] [--dir DIR]",
		Short: "measure netshare's DHCP and DNS beside dnsmasq, with dnsperf and perfdhcp, in namespaces of its own (root)",
		Long: `bench lan runs netshare and Debian's dnsmasq side by side, each in a gateway
namespace of its own with the same addresses, names and upstream, and loads
them in turns with the same clients: dnsperf (private names, cached names,
cache misses, latency at 1,000 queries/s) and Kea's perfdhcp (new clients at
each rate, and one at a time). It prints each server's median and spread
over the rounds and netshare's ratio to dnsmasq, and writes the samples as
JSON. Needs dnsperf, kea-admin (perfdhcp), dnsmasq-base and bind9-dnsutils;
none of them starts a service. --report prints a results file again.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			var r *bench.LANResults
			if lanFrom != "" {
				var err error
				if r, err = bench.ReadLANJSON(lanFrom); err != nil {
					return hresultFail(err)
				}
			} else {
				bin, err := os.Executable()
				if err != nil {
					return hresultFail(err)
				}
				o := bench.FullLAN(bin, lanDir)
				if lanQuick {
					o = bench.QuickLAN(bin, lanDir)
				}
				o.Progress = a.env.Stderr
				o.LogDir = lanLogs
				o.Only = lanOnly
				if r, err = bench.RunLAN(c.Context(), o); err != nil {
					return hresultFail(err)
				}
				if err := r.WriteJSON(lanJSON); err != nil {
					return hresultFail(err)
				}
			}
			if a.json {
				return a.printJSON(r)
			}
			r.Print(a.env.Stdout, lanMarkdown)
			if lanFrom == "" {
				fmt.Fprintf(a.env.Stdout, "\nresults written to %s\n", lanJSON)
			}
			return nil
		},
	}
	lan.Flags().BoolVar(&lanQuick, "quick", false, "one short round")
	lan.Flags().BoolVar(&lanMarkdown, "markdown", false, "print Markdown tables")
	lan.Flags().StringVar(&lanJSON, "json-file", "bench-lan-results.json", "where to write the results")
	lan.Flags().StringVar(&lanDir, "dir", "/run/netshare-bench-lan", "the bench's directory")
	lan.Flags().StringVar(&lanFrom, "report", "", "print the tables of this results file instead of measuring")
	lan.Flags().StringVar(&lanLogs, "logs", "", "copy the servers' logs to `DIR` at the end")
	lan.Flags().StringVar(&lanOnly, "only", "", "measure one service only: dns or dhcp")
	c.AddCommand(lan)
	c.AddCommand(a.benchPortMapCmd())
	return c
}

func (a *app) benchPortMapCmd() *cobra.Command {
	var quick, markdown bool
	var jsonPath, dir, from, logs string
	var ns []int
	var rounds int
	c := &cobra.Command{
		Use:   "portmap [--quick] [--ns N,...] [--rounds R] [--json-file FILE] [--dir DIR]",
		Short: "measure netshare's NAT-PMP beside miniupnpd, in namespaces of its own (root)",
		Long: `bench portmap runs netshare and Debian's miniupnpd-nftables side by side, each
in a gateway namespace of its own with the same addresses and policy, and
drives both with the same NAT-PMP load generator from a client namespace.
With N leases present (0, 1,000 and 10,000), the two take turns in every
round: map request latency (p50, p99), map-and-renew answers a second from
64 clients with the server's CPU time, new TCP connections a second through
a mapping a device made, and at the largest N how late expired leases leave
the kernel (seen by nft monitor). It prints each server's median and spread
over the rounds with netshare's ratio to miniupnpd, and writes the samples
as JSON. Needs miniupnpd-nftables (it starts no service) and nftables.
--report prints a results file again.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			var r *bench.PortMapResults
			if from != "" {
				var err error
				if r, err = bench.ReadPortMapJSON(from); err != nil {
					return hresultFail(err)
				}
			} else {
				bin, err := os.Executable()
				if err != nil {
					return hresultFail(err)
				}
				o := bench.FullPortMap(bin, dir)
				if quick {
					o = bench.QuickPortMap(bin, dir)
				}
				o.Progress = a.env.Stderr
				o.LogDir = logs
				if len(ns) > 0 {
					o.Ns = ns
				}
				if rounds > 0 {
					o.Rounds = rounds
				}
				if r, err = bench.RunPortMap(c.Context(), o); err != nil {
					// What was measured before the failure is kept.
					if r != nil && len(r.Samples) > 0 && r.WriteJSON(jsonPath) == nil {
						fmt.Fprintf(a.env.Stderr, "the %d samples measured before the failure are in %s\n", len(r.Samples), jsonPath)
					}
					return hresultFail(err)
				}
				if err := r.WriteJSON(jsonPath); err != nil {
					return hresultFail(err)
				}
			}
			if a.json {
				return a.printJSON(r)
			}
			r.Print(a.env.Stdout, markdown)
			if from == "" {
				fmt.Fprintf(a.env.Stdout, "\nresults written to %s\n", jsonPath)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&quick, "quick", false, "small N, one short round")
	c.Flags().IntSliceVar(&ns, "ns", nil, "the numbers of leases present (default 0,1000,10000; at most 20000)")
	c.Flags().IntVar(&rounds, "rounds", 0, "rounds at each N (default 3)")
	c.Flags().BoolVar(&markdown, "markdown", false, "print Markdown tables")
	c.Flags().StringVar(&jsonPath, "json-file", "bench-portmap-results.json", "where to write the results")
	c.Flags().StringVar(&dir, "dir", "/run/netshare-bench-portmap", "the bench's directory")
	c.Flags().StringVar(&from, "report", "", "print the tables of this results file instead of measuring")
	c.Flags().StringVar(&logs, "logs", "", "copy the servers' logs to `DIR` at the end")
	var job string
	client := &cobra.Command{
		Use:    "pmp-client --job JSON",
		Short:  "run one task of the bench's NAT-PMP load generator and print what it measured",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			var j bench.PMPJob
			if err := json.Unmarshal([]byte(job), &j); err != nil {
				return hresult.Invalid("job", "%v", err)
			}
			rep, err := bench.RunPMP(j)
			if err != nil {
				return hresultFail(err)
			}
			return json.NewEncoder(a.env.Stdout).Encode(rep)
		},
	}
	client.Flags().StringVar(&job, "job", "", "the task, as JSON")
	c.AddCommand(client)
	return c
}
