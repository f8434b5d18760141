package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
)

func (a *app) sharingCmd() *cobra.Command {
	var public, private bool
	var address string
	enable := &cobra.Command{
		Use:   "enable CONN --public|--private [--address IP/PREFIX]",
		Short: "share a connection as the public (upstream) one or as a private one",
		Long: `enable shares CONN. There is one public connection: enabling another one
unshares the old one and disables its port mappings. A public connection gets
the firewall switched on. A private connection gets the private address
(--address, default 192.168.137.1/24) in place of its own IPv4 addresses,
which come back when sharing is disabled.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			if public == private {
				return usageError{fmt.Errorf("sharing enable: give exactly one of --public and --private")}
			}
			typ := hnetcfg.ICSSHARINGTYPE_PUBLIC
			if private {
				typ = hnetcfg.ICSSHARINGTYPE_PRIVATE
			}
			req := hnetcfg.SharingRequest{Type: typ, Address: address}
			return a.configure(c, args[0], func(s *hnetcfg.SharingConfiguration) error { return s.EnableSharingRequest(c.Context(), req) },
				func(p hnetcfg.ConnectionProps) string {
					if p.Sharing.Address != "" {
						return "shared as " + string(p.Sharing.Type) + " with address " + p.Sharing.Address
					}
					return "shared as " + string(p.Sharing.Type)
				})
		},
	}
	enable.Flags().BoolVar(&public, "public", false, "share as the public connection")
	enable.Flags().BoolVar(&private, "private", false, "share as a private connection")
	enable.Flags().StringVar(&address, "address", "", "a private connection's address and prefix (default 192.168.137.1/24)")
	return group("sharing", "share a connection and see what is shared",
		enable,
		&cobra.Command{
			Use:   "disable CONN",
			Short: "unshare a connection and disable its port mappings (the firewall stays as it is)",
			Args:  args(cobra.ExactArgs(1)),
			RunE: func(c *cobra.Command, args []string) error {
				return a.configure(c, args[0], func(s *hnetcfg.SharingConfiguration) error { return s.DisableSharing(c.Context()) },
					func(hnetcfg.ConnectionProps) string { return "not shared" })
			},
		},
		&cobra.Command{
			Use:   "show",
			Short: "show the public and private connections",
			Args:  args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				o, err := a.manager().Sharing(c.Context())
				if err != nil {
					return err
				}
				return a.out(o, func(w io.Writer) {
					fmt.Fprintf(w, "Sharing installed: %v\n", o.Installed)
					fmt.Fprint(w, "Public: ")
					names(w, o.Public)
					fmt.Fprint(w, "Private: ")
					names(w, o.Private)
					if o.PublicAddress != "" {
						fmt.Fprintf(w, "Public address: %s\n", o.PublicAddress)
					}
					if o.BehindNAT {
						fmt.Fprintln(w, "Behind another NAT: the public address is a private or shared one; the port mappings reach the Internet only if the upstream NAT forwards their ports too")
					}
				})
			},
		},
	)
}

func names(w io.Writer, ps []hnetcfg.ConnectionProps) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "none")
		return
	}
	for i, p := range ps {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprint(w, p.Name)
		if p.Name != p.Interface {
			fmt.Fprintf(w, " (%s)", p.Interface)
		}
		fmt.Fprintf(w, " [%s, firewall %s]", p.Status, onOff(p.FirewallEnabled))
	}
	fmt.Fprintln(w)
}

func (a *app) firewallCmd() *cobra.Command {
	say := func(p hnetcfg.ConnectionProps) string {
		if p.FirewallEnabled && p.AllowPing {
			return "firewall on, answers ping"
		}
		return "firewall " + onOff(p.FirewallEnabled)
	}
	var allowPing bool
	enable := &cobra.Command{
		Use:   "enable CONN [--allow-ping[=false]]",
		Short: "drop unsolicited inbound traffic on a connection, but for enabled port mappings",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			var req hnetcfg.FirewallRequest
			if c.Flags().Changed("allow-ping") {
				req.AllowPing = &allowPing
			}
			return a.configure(c, args[0], func(s *hnetcfg.SharingConfiguration) error {
				return s.EnableInternetFirewallRequest(c.Context(), req)
			}, say)
		},
	}
	enable.Flags().BoolVar(&allowPing, "allow-ping", false, "answer ping (inbound ICMP echo); left as it is unless given")
	disable := &cobra.Command{
		Use:   "disable CONN",
		Short: "switch a connection's firewall off",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			return a.configure(c, args[0], func(s *hnetcfg.SharingConfiguration) error {
				return s.DisableInternetFirewall(c.Context())
			}, say)
		},
	}
	return group("firewall", "switch the stateful firewall of a connection", enable, disable)
}

func (a *app) natTraversalCmd() *cobra.Command {
	say := func(p hnetcfg.ConnectionProps) string {
		s := "NAT-PMP and PCP " + onOff(p.NATTraversal)
		if p.NATTraversal && p.Sharing.Type != hnetcfg.ICSSHARINGTYPE_PRIVATE {
			s += " (in effect while the connection is shared as private)"
		}
		return s
	}
	show := &cobra.Command{
		Use:   "show CONN",
		Short: "say whether the devices of a private connection may ask for port mappings",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			return a.configure(c, args[0], func(*hnetcfg.SharingConfiguration) error { return nil }, say)
		},
	}
	set := &cobra.Command{
		Use:   "set CONN on|off",
		Short: "let the devices of a private connection ask for port mappings of their own (NAT-PMP, PCP), or stop it",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			var on bool
			switch args[1] {
			case "on":
				on = true
			case "off":
			default:
				return usageError{fmt.Errorf("%s: %q is not allowed; use on or off", c.CommandPath(), args[1])}
			}
			return a.configure(c, args[0], func(s *hnetcfg.SharingConfiguration) error {
				if on {
					return s.EnableNATTraversal(c.Context())
				}
				return s.DisableNATTraversal(c.Context())
			}, say)
		},
	}
	return group("nat-traversal", "let devices on a private network map ports for themselves (NAT-PMP, PCP; off by default)", show, set, a.policyCmd())
}

func (a *app) policyCmd() *cobra.Command {
	showPolicy := &cobra.Command{
		Use:   "show",
		Short: "print what devices may map for themselves",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			p, err := a.manager().PortMapPolicy(c.Context())
			if err != nil {
				return err
			}
			return a.out(p, func(w io.Writer) { policyText(w, p) })
		},
	}
	var (
		rules            []string
		minLife, maxLife time.Duration
		quota            int
		rate             float64
		thirdParty       bool
	)
	set := &cobra.Command{
		Use:   "set [--rule 'allow|deny CLIENTS|any EXTERNAL INTERNAL']... [--min-lifetime D] [--max-lifetime D] [--quota N] [--rate R] [--third-party]",
		Short: "change what devices may map for themselves; what is not given stays",
		Long: `Change the port mapping policy. Rules (--rule, in order, replacing the
rules there are) are tried in order; the first that matches a request
decides, and a request no rule matches is refused. A rule is an action,
the clients (an IPv4 prefix or address, or "any"), and the external and
internal ports (a port or a range):

  netshare nat-traversal policy set --rule 'deny 192.168.137.66 1-65535 1-65535' \
      --rule 'allow 192.168.137.0/24 1024-65535 1-65535'`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			m := a.manager()
			p, err := m.PortMapPolicy(c.Context())
			if err != nil {
				return err
			}
			fl := c.Flags()
			if fl.Changed("rule") {
				p.Rules = []hnetcfg.PortMapRule{}
				for i, r := range rules {
					f := strings.Fields(r)
					if len(f) != 4 {
						return usageError{fmt.Errorf("%s: --rule %q: give the action, the clients, the external and the internal ports (rule %d)", c.CommandPath(), r, i+1)}
					}
					if f[1] == "any" {
						f[1] = ""
					}
					p.Rules = append(p.Rules, hnetcfg.PortMapRule{Action: f[0], Clients: f[1], External: f[2], Internal: f[3]})
				}
			}
			if fl.Changed("min-lifetime") {
				p.MinLifetime = minLife.String()
			}
			if fl.Changed("max-lifetime") {
				p.MaxLifetime = maxLife.String()
			}
			if fl.Changed("quota") {
				p.Quota = quota
			}
			if fl.Changed("rate") {
				p.Rate = rate
			}
			if fl.Changed("third-party") {
				p.AllowThirdParty = thirdParty
			}
			p, err = m.SetPortMapPolicy(c.Context(), p)
			if err != nil {
				return err
			}
			return a.out(p, func(w io.Writer) { policyText(w, p) })
		},
	}
	fl := set.Flags()
	fl.StringArrayVar(&rules, "rule", nil, "a rule: 'allow|deny CLIENTS|any EXTERNAL INTERNAL'; repeat for each, in order")
	fl.DurationVar(&minLife, "min-lifetime", 0, "the shortest lifetime given (such as 2m)")
	fl.DurationVar(&maxLife, "max-lifetime", 0, "the longest lifetime given (such as 24h)")
	fl.IntVar(&quota, "quota", 0, "how many mappings one host may have")
	fl.Float64Var(&rate, "rate", 0, "how many requests a second one device may send")
	fl.BoolVar(&thirdParty, "third-party", false, "let a PCP client map for another host of the private networks")
	return group("policy", "what devices may map for themselves: rules, lifetimes, quota, rate", showPolicy, set)
}

func policyText(w io.Writer, p hnetcfg.PortMapPolicy) {
	fmt.Fprintln(w, "Rules (the first that matches decides; a request no rule matches is refused):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, r := range p.Rules {
		clients := r.Clients
		if clients == "" {
			clients = "any"
		}
		fmt.Fprintf(tw, "  %d\t%s\tclients %s\texternal %s\tinternal %s\n", i+1, r.Action, clients, r.External, r.Internal)
	}
	tw.Flush()
	if len(p.Rules) == 0 {
		fmt.Fprintln(w, "  none: every request is refused")
	}
	fmt.Fprintf(w, "Lifetime: %s to %s\n", p.MinLifetime, p.MaxLifetime)
	fmt.Fprintf(w, "Quota: %d mappings a host\n", p.Quota)
	fmt.Fprintf(w, "Rate: %g requests a second a device\n", p.Rate)
	fmt.Fprintf(w, "For another host (PCP THIRD_PARTY): %s\n", yesNo(p.AllowThirdParty))
}

// configure runs do on the sharing configuration of conn and prints the
// connection afterwards.
func (a *app) configure(c *cobra.Command, conn string, do func(*hnetcfg.SharingConfiguration) error, say func(hnetcfg.ConnectionProps) string) error {
	m := a.manager()
	cn, err := m.Connection(c.Context(), conn)
	if err != nil {
		return err
	}
	if err := do(m.INetSharingConfigurationForINetConnection(cn)); err != nil {
		return err
	}
	p, err := cn.GetProperties(c.Context())
	if err != nil {
		return hresult.From(err)
	}
	return a.out(p, func(w io.Writer) { fmt.Fprintf(w, "%s: %s\n", p.Name, say(p)) })
}
