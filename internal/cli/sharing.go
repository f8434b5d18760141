package cli

import (
	"fmt"
	"io"

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
	return group("nat-traversal", "let devices on a private network map ports for themselves (NAT-PMP, PCP; off by default)", show, set)
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
