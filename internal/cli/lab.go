package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/lab"
)

func (a *app) labCmd() *cobra.Command {
	var dir, ui string
	fail := func(err error) error {
		if err == nil {
			return nil
		}
		return hresult.New(hresult.Fail, "%w", err)
	}
	up := &cobra.Command{
		Use:   "up [--dir DIR]",
		Short: "build the lab: namespaces wan, gw and lan, netshare serving in gw, sharing wan0 with lan0",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return fail(err)
			}
			l, err := lab.Up(c.Context(), lab.Options{Dir: dir, Binary: bin, Progress: a.env.Stderr, UI: ui})
			if err != nil {
				return fail(err)
			}
			return a.out(l, func(w io.Writer) { fmt.Fprint(w, "\n"+l.Status()) })
		},
	}
	up.Flags().StringVar(&ui, "ui", "127.0.0.1:8137", "serve the web UI on this loopback `ADDR` of this machine (\"\" for none; a taken port is traded for a free one)")
	down := &cobra.Command{
		Use:   "down [--dir DIR]",
		Short: "stop the lab and remove everything it created",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := lab.Load(dir)
			if err != nil {
				return fail(err)
			}
			if err := l.Down(); err != nil {
				return fail(err)
			}
			return a.out(map[string]any{"id": l.ID, "down": true}, func(w io.Writer) { fmt.Fprintf(w, "lab %s removed\n", l.ID) })
		},
	}
	status := &cobra.Command{
		Use:   "status [--dir DIR]",
		Short: "show the lab and how to use it",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := lab.Load(dir)
			if err != nil {
				return fail(err)
			}
			return a.out(l, func(w io.Writer) { fmt.Fprint(w, l.Status()) })
		},
	}
	for _, c := range []*cobra.Command{up, down, status} {
		c.Flags().StringVar(&dir, "dir", lab.DefaultDir, "the lab's directory (state, socket, logs)")
	}
	var port int
	server := &cobra.Command{
		Use:   "server --port N",
		Short: "run a test server (tcp and udp) that tells each client its address",
		Args:  args(cobra.NoArgs),
		RunE:  func(c *cobra.Command, _ []string) error { return fail(lab.Serve(c.Context(), port)) },
	}
	server.Flags().IntVar(&port, "port", lab.ServerPort, "port to serve on")
	var timeout time.Duration
	var from string
	probe := &cobra.Command{
		Use:   "probe tcp|udp HOST:PORT [--from ADDR:PORT] | probe icmp HOST",
		Short: "ask a test server which address it sees us come from",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			answer, err := lab.Probe(args[0], args[1], from, timeout)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintln(a.env.Stdout, answer)
			return nil
		},
	}
	probe.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for an answer")
	probe.Flags().StringVar(&from, "from", "", "send from this local `ADDR:PORT` (either may be empty or 0)")
	var duration, interval time.Duration
	stream := &cobra.Command{
		Use:    "stream HOST:PORT",
		Short:  "send a UDP flow and print when answers come",
		Hidden: true,
		Args:   args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			return fail(lab.Stream(args[0], duration, interval, a.env.Stdout))
		},
	}
	stream.Flags().DurationVar(&duration, "duration", 3*time.Second, "how long to send")
	stream.Flags().DurationVar(&interval, "interval", 50*time.Millisecond, "time between datagrams")
	exe := &cobra.Command{
		Use:   "exec wan|gw|lan [--dir DIR] -- COMMAND [ARG...]",
		Short: "run a command on a host of the lab",
		Args:  args(cobra.MinimumNArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			l, err := lab.Load(dir)
			if err != nil {
				return fail(err)
			}
			ns := map[string]string{"wan": l.WAN, "gw": l.GW, "lan": l.LAN}[args[0]]
			if ns == "" {
				return usageError{fmt.Errorf("lab exec: %q is not a host of the lab; use wan, gw or lan", args[0])}
			}
			cmd := exec.CommandContext(c.Context(), "ip", append([]string{"netns", "exec", ns}, args[1:]...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, a.env.Stdout, a.env.Stderr
			cmd.Env = append(os.Environ(), "NETSHARE_SOCKET="+l.Socket)
			err = cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				// The command said why; pass its status on.
				return exitStatus(ee.ExitCode())
			}
			if err != nil {
				return fail(fmt.Errorf("%s on %s: %w", strings.Join(args[1:], " "), args[0], err))
			}
			return nil
		},
	}
	exe.Flags().StringVar(&dir, "dir", lab.DefaultDir, "the lab's directory")
	var iface, hostname string
	dhcpClient := &cobra.Command{
		Use:    "dhcp-client --interface IF [--hostname NAME]",
		Short:  "keep a DHCP lease on an interface, configuring its address",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return fail(lab.DHCPClient(c.Context(), iface, hostname, a.env.Stdout))
		},
	}
	dhcpClient.Flags().StringVar(&iface, "interface", "eth0", "the interface")
	dhcpClient.Flags().StringVar(&hostname, "hostname", "", "the host name to send")
	var rate int
	var floodFor time.Duration
	dhcpFlood := &cobra.Command{
		Use:    "dhcp-flood --interface IF --rate N --duration D",
		Short:  "send DHCP DISCOVERs from forged hardware addresses (a starvation attack, for tests)",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return fail(lab.DHCPFlood(c.Context(), iface, rate, floodFor, a.env.Stdout))
		},
	}
	dhcpFlood.Flags().StringVar(&iface, "interface", "eth0", "the interface")
	dhcpFlood.Flags().IntVar(&rate, "rate", 100000, "DISCOVERs a second")
	dhcpFlood.Flags().DurationVar(&floodFor, "duration", 5*time.Second, "how long")
	var dnsServerAddr string
	var sources []string
	dnsFlood := &cobra.Command{
		Use:    "dns-flood --server ADDR:PORT --source ADDR... --rate N --duration D",
		Short:  "send DNS queries for new names from several sources (a query storm, for tests)",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			to, err := netip.ParseAddrPort(dnsServerAddr)
			if err != nil {
				return usageError{fmt.Errorf("--server: %w", err)}
			}
			var from []netip.Addr
			for _, s := range sources {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return usageError{fmt.Errorf("--source: %w", err)}
				}
				from = append(from, a)
			}
			return fail(lab.DNSFlood(c.Context(), to, from, rate, floodFor, a.env.Stdout))
		},
	}
	dnsFlood.Flags().StringVar(&dnsServerAddr, "server", lab.GatewayLAN+":53", "the DNS server")
	dnsFlood.Flags().StringSliceVar(&sources, "source", nil, "a source address (repeat, or separate with commas)")
	dnsFlood.Flags().IntVar(&rate, "rate", 5000, "queries a second")
	dnsFlood.Flags().DurationVar(&floodFor, "duration", 5*time.Second, "how long")
	var zoneFile, zoneAddr string
	dnsServer := &cobra.Command{
		Use:    "dns-server [--zone FILE --listen ADDR:PORT]",
		Short:  "answer for example.test on port 53, or serve a zone file",
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if zoneFile != "" {
				return fail(lab.ServeZone(c.Context(), zoneAddr, zoneFile))
			}
			return fail(lab.ServeDNS(c.Context()))
		},
	}
	dnsServer.Flags().StringVar(&zoneFile, "zone", "", "serve this zone file instead")
	dnsServer.Flags().StringVar(&zoneAddr, "listen", ":53", "where to serve the zone")
	return group("lab", "a sandbox of three network namespaces to try netshare in", up, down, status, exe, server, probe, stream, dhcpClient, dhcpFlood, dnsFlood, dnsServer)
}
