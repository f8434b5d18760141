package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hnetcfg"
)

func (a *app) leaseCmd() *cobra.Command {
	return group("lease", "the DHCP leases of the private networks",
		&cobra.Command{
			Use:   "list",
			Short: "list the DHCP leases, active first",
			Args:  args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				ls, err := a.manager().Leases(c.Context())
				if err != nil {
					return err
				}
				return a.out(ls, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "IP\tMAC\tHOSTNAME\tINTERFACE\tEXPIRY\tSTATE")
					for _, l := range ls {
						state := "expired"
						if l.Active {
							state = "active"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.IP, l.MAC, dash(l.Hostname), l.Interface, l.Expiry, state)
					}
					tw.Flush()
				})
			},
		})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dhcpDetail(w io.Writer, d hnetcfg.DHCPSettings) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	state := "not running (the connection is not shared as private)"
	if d.Active {
		state = "running"
	}
	fmt.Fprintf(tw, "DHCP server:\t%s\n", state)
	fmt.Fprintf(tw, "Subnet:\t%s\n", d.Subnet)
	fmt.Fprintf(tw, "Pool:\t%s - %s\n", d.PoolStart, d.PoolEnd)
	fmt.Fprintf(tw, "Lease time:\t%s\n", d.LeaseTime)
	fmt.Fprintf(tw, "Domain:\t%s\n", d.Domain)
	fmt.Fprintf(tw, "Router:\t%s\n", d.Router)
	fmt.Fprintf(tw, "DNS server:\t%s\n", d.DNSServer)
	if len(d.Reservations) == 0 {
		fmt.Fprintf(tw, "Reservations:\tnone\n")
	}
	tw.Flush()
	if len(d.Reservations) > 0 {
		fmt.Fprintln(w, "Reservations:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range d.Reservations {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.MAC, r.IP, dash(r.Name))
		}
		tw.Flush()
	}
}

func (a *app) dhcpCmd() *cobra.Command {
	show := &cobra.Command{
		Use:   "show CONN",
		Short: "show the DHCP settings of a private connection",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := a.config(c, args[0])
			if err != nil {
				return err
			}
			d, err := cfg.DHCP(c.Context())
			if err != nil {
				return err
			}
			return a.out(d, func(w io.Writer) { dhcpDetail(w, d) })
		},
	}
	var poolStart, poolEnd, leaseTime, domain, router, dnsServer string
	set := &cobra.Command{
		Use:   "set CONN [--pool-start IP --pool-end IP] [--lease-time DURATION] [--domain NAME] [--router IP] [--dns-server IP]",
		Short: "change the DHCP settings of a private connection (\"\" restores a default)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			var e hnetcfg.DHCPEdit
			fl := c.Flags()
			for name, dst := range map[string]**string{"pool-start": &e.PoolStart, "pool-end": &e.PoolEnd, "lease-time": &e.LeaseTime, "domain": &e.Domain, "router": &e.Router, "dns-server": &e.DNSServer} {
				if fl.Changed(name) {
					v, _ := fl.GetString(name)
					*dst = &v
				}
			}
			if e == (hnetcfg.DHCPEdit{}) {
				return usageError{fmt.Errorf("dhcp set: give at least one setting to change")}
			}
			return a.dhcpChange(c, args[0], func(cfg *hnetcfg.SharingConfiguration) (hnetcfg.DHCPSettings, error) {
				return cfg.SetDHCP(c.Context(), e)
			})
		},
	}
	set.Flags().StringVar(&poolStart, "pool-start", "", "first address of the pool")
	set.Flags().StringVar(&poolEnd, "pool-end", "", "last address of the pool")
	set.Flags().StringVar(&leaseTime, "lease-time", "", "lease time, such as 30m or 12h")
	set.Flags().StringVar(&domain, "domain", "", "the domain handed out (default home.arpa)")
	set.Flags().StringVar(&router, "router", "", "the router handed out (default the gateway's private address)")
	set.Flags().StringVar(&dnsServer, "dns-server", "", "the DNS server handed out (default the gateway's private address)")
	var mac, ip, name string
	reserve := &cobra.Command{
		Use:   "reserve CONN --mac MAC --ip IP [--name HOST]",
		Short: "give a MAC address a fixed address (and a host name)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			return a.dhcpChange(c, args[0], func(cfg *hnetcfg.SharingConfiguration) (hnetcfg.DHCPSettings, error) {
				return cfg.Reserve(c.Context(), hnetcfg.Reservation{MAC: mac, IP: ip, Name: name})
			})
		},
	}
	reserve.Flags().StringVar(&mac, "mac", "", "the client's MAC address")
	reserve.Flags().StringVar(&ip, "ip", "", "the address to reserve")
	reserve.Flags().StringVar(&name, "name", "", "the host's name")
	var umac string
	unreserve := &cobra.Command{
		Use:   "unreserve CONN --mac MAC",
		Short: "remove the reservation of a MAC address",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			return a.dhcpChange(c, args[0], func(cfg *hnetcfg.SharingConfiguration) (hnetcfg.DHCPSettings, error) {
				return cfg.Unreserve(c.Context(), umac)
			})
		},
	}
	unreserve.Flags().StringVar(&umac, "mac", "", "the client's MAC address")
	return group("dhcp", "the DHCP server of a private connection", show, set, reserve, unreserve)
}

func (a *app) dhcpChange(c *cobra.Command, conn string, do func(*hnetcfg.SharingConfiguration) (hnetcfg.DHCPSettings, error)) error {
	cfg, err := a.config(c, conn)
	if err != nil {
		return err
	}
	d, err := do(cfg)
	if err != nil {
		return err
	}
	return a.out(d, func(w io.Writer) { dhcpDetail(w, d) })
}

func dnsDetail(w io.Writer, d hnetcfg.DNSSettings) {
	ups := strings.Join(d.Effective, ", ")
	if len(d.Upstreams) == 0 {
		ups += " (from resolv.conf)"
	}
	fmt.Fprintf(w, "Upstreams: %s\n", ups)
	if len(d.Hosts) == 0 {
		fmt.Fprintln(w, "Static hosts: none")
		return
	}
	fmt.Fprintln(w, "Static hosts:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, h := range d.Hosts {
		fmt.Fprintf(tw, "  %s\t%s\n", h.Name, h.IP)
	}
	tw.Flush()
}

func (a *app) dnsCmd() *cobra.Command {
	hostList := func(c *cobra.Command, d hnetcfg.DNSSettings) error {
		return a.out(d.Hosts, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tIP")
			for _, h := range d.Hosts {
				fmt.Fprintf(tw, "%s\t%s\n", h.Name, h.IP)
			}
			tw.Flush()
		})
	}
	host := group("host", "static names the DNS forwarder answers",
		&cobra.Command{
			Use:   "add NAME IP",
			Short: "add or replace a static name",
			Args:  args(cobra.ExactArgs(2)),
			RunE: func(c *cobra.Command, args []string) error {
				d, err := a.manager().AddDNSHost(c.Context(), hnetcfg.DNSHost{Name: args[0], IP: args[1]})
				if err != nil {
					return err
				}
				return hostList(c, d)
			},
		},
		&cobra.Command{
			Use:   "remove NAME",
			Short: "remove a static name",
			Args:  args(cobra.ExactArgs(1)),
			RunE: func(c *cobra.Command, args []string) error {
				d, err := a.manager().RemoveDNSHost(c.Context(), args[0])
				if err != nil {
					return err
				}
				return hostList(c, d)
			},
		},
		&cobra.Command{
			Use:   "list",
			Short: "list the static names",
			Args:  args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				d, err := a.manager().DNS(c.Context())
				if err != nil {
					return err
				}
				return hostList(c, d)
			},
		},
	)
	var upstreams []string
	set := &cobra.Command{
		Use:   "set --upstream IP[,IP...]",
		Short: "set the upstream DNS servers (--upstream \"\" for those of resolv.conf)",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if !c.Flags().Changed("upstream") {
				return usageError{fmt.Errorf("dns set: --upstream is required")}
			}
			var ups []string
			for _, u := range upstreams {
				if u = strings.TrimSpace(u); u != "" {
					ups = append(ups, u)
				}
			}
			d, err := a.manager().SetDNS(c.Context(), hnetcfg.DNSEdit{Upstreams: ups})
			if err != nil {
				return err
			}
			return a.out(d, func(w io.Writer) { dnsDetail(w, d) })
		},
	}
	set.Flags().StringSliceVar(&upstreams, "upstream", nil, "upstream servers, comma-separated")
	show := &cobra.Command{
		Use:   "show",
		Short: "show the upstream servers and the static names",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			d, err := a.manager().DNS(c.Context())
			if err != nil {
				return err
			}
			return a.out(d, func(w io.Writer) { dnsDetail(w, d) })
		},
	}
	return group("dns", "the DNS forwarder of the private networks", host, set, show)
}
