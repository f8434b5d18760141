package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/internal/bench"
)

func (a *app) benchCmd() *cobra.Command {
	var quick, markdown bool
	var jsonPath, dir string
	c := &cobra.Command{
		Use:   "bench [--quick] [--json FILE] [--dir DIR]",
		Short: "measure netshare against one nftables rule per mapping, in a lab of its own (root)",
		Long: `bench builds a lab (network namespaces, removed at the end) and measures the
time from an API call to the kernel holding a mapping change, connection and
request rates through a mapping, the restore of N mappings at start with the
daemon's memory, and bulk adds, beside the rule-per-mapping design of the
peers and plain routing. It prints tables and writes the results as JSON.
--quick uses small N, for checking that it works.`,
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
	return c
}
