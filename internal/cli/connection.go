package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hnetcfg"
)

func (a *app) connectionCmd() *cobra.Command {
	return group("connection", "list and manage connections (network interfaces)",
		&cobra.Command{
			Use:   "list",
			Short: "list every connection with its properties",
			Args:  args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				cs, err := a.manager().EnumEveryConnection(c.Context())
				if err != nil {
					return err
				}
				ps := make([]hnetcfg.ConnectionProps, len(cs))
				for i, cn := range cs {
					ps[i] = cn.Props()
				}
				return a.out(ps, func(w io.Writer) { connectionTable(w, ps) })
			},
		},
		&cobra.Command{
			Use:   "show CONN",
			Short: "show one connection",
			Args:  args(cobra.ExactArgs(1)),
			RunE: func(c *cobra.Command, args []string) error {
				cn, err := a.manager().Connection(c.Context(), args[0])
				if err != nil {
					return err
				}
				return a.out(cn.Props(), func(w io.Writer) { connectionDetail(w, cn.Props()) })
			},
		},
		a.connVerb("connect", "bring a connection's interface up", (*hnetcfg.Connection).Connect),
		a.connVerb("disconnect", "take a connection's interface down", (*hnetcfg.Connection).Disconnect),
		&cobra.Command{
			Use:   "rename CONN NEWNAME",
			Short: "give a connection a friendly name",
			Args:  args(cobra.ExactArgs(2)),
			RunE: func(c *cobra.Command, args []string) error {
				cn, err := a.manager().Connection(c.Context(), args[0])
				if err != nil {
					return err
				}
				if err := cn.Rename(c.Context(), args[1]); err != nil {
					return err
				}
				return a.out(cn.Props(), func(w io.Writer) {
					fmt.Fprintf(w, "%s: renamed to %q\n", cn.Props().Interface, cn.Props().Name)
				})
			},
		},
	)
}

// connVerb is a command that runs one verb on a connection and prints the
// connection's new state.
func (a *app) connVerb(use, short string, verb func(*hnetcfg.Connection, context.Context) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CONN",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			cn, err := a.manager().Connection(c.Context(), args[0])
			if err != nil {
				return err
			}
			if err := verb(cn, c.Context()); err != nil {
				return err
			}
			return a.out(cn.Props(), func(w io.Writer) { fmt.Fprintf(w, "%s: %s\n", cn.Props().Name, cn.Props().Status) })
		},
	}
}

func sharingWord(p hnetcfg.ConnectionProps) string {
	if !p.Sharing.Enabled {
		return "-"
	}
	return string(p.Sharing.Type)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func connectionTable(w io.Writer, ps []hnetcfg.ConnectionProps) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINTERFACE\tSTATUS\tMEDIA\tSHARING\tFIREWALL\tID")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Interface, p.Status, p.MediaType, sharingWord(p), onOff(p.FirewallEnabled), p.ID)
	}
	tw.Flush()
}

func connectionDetail(w io.Writer, p hnetcfg.ConnectionProps) {
	chars := make([]string, len(p.Characteristics))
	for i, c := range p.Characteristics {
		chars[i] = string(c)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", p.Name)
	fmt.Fprintf(tw, "ID:\t%s\n", p.ID)
	fmt.Fprintf(tw, "Interface:\t%s\n", p.Interface)
	fmt.Fprintf(tw, "Device:\t%s\n", p.DeviceName)
	fmt.Fprintf(tw, "Status:\t%s\n", p.Status)
	fmt.Fprintf(tw, "Media type:\t%s\n", p.MediaType)
	fmt.Fprintf(tw, "Characteristics:\t%s\n", strings.Join(chars, ", "))
	fmt.Fprintf(tw, "Sharing:\t%s\n", sharingWord(p))
	fmt.Fprintf(tw, "Firewall:\t%s\n", onOff(p.FirewallEnabled))
	tw.Flush()
}
