package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
)

// mappingFlags are the flags of mapping add and mapping edit.
type mappingFlags struct {
	name, protocol, targetIP, targetName string
	external, internal                   int
	enable                               bool
}

func (f *mappingFlags) register(c *cobra.Command, edit bool) {
	fl := c.Flags()
	fl.StringVar(&f.name, "name", "", "the mapping's name (1 to 256 characters)")
	fl.StringVar(&f.protocol, "protocol", "", "tcp or udp")
	fl.IntVar(&f.external, "external-port", 0, "the port opened on the connection (1-65535)")
	fl.IntVar(&f.internal, "internal-port", 0, "the port on the target (1-65535)")
	fl.StringVar(&f.targetIP, "target-ip", "", "the target's IPv4 address")
	fl.StringVar(&f.targetName, "target-name", "", "the target's host name")
	if edit {
		fl.BoolVar(&f.enable, "enable", false, "enable (--enable) or disable (--enable=false) the mapping")
	} else {
		fl.BoolVar(&f.enable, "enable", false, "enable the mapping once added (a new mapping is disabled)")
	}
}

func (a *app) mappingCmd() *cobra.Command {
	var add mappingFlags
	addCmd := &cobra.Command{
		Use:   "add CONN --name NAME --protocol tcp|udp --external-port N --internal-port N (--target-ip IP | --target-name HOST) [--enable]",
		Short: "add a port mapping (disabled unless --enable); prints its id",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := a.config(c, args[0])
			if err != nil {
				return err
			}
			pm, err := cfg.AddPortMappingSpec(c.Context(), hnetcfg.PortMappingSpec{
				Name:            add.name,
				Protocol:        hnetcfg.Protocol(add.protocol),
				ExternalPort:    add.external,
				InternalPort:    add.internal,
				TargetName:      add.targetName,
				TargetIPAddress: add.targetIP,
			})
			if err != nil {
				return err
			}
			if add.enable {
				if err := pm.Enable(c.Context()); err != nil {
					e := hresult.From(err)
					return &hresult.Error{Code: e.Code, Reason: e.Reason, Message: fmt.Sprintf("mapping %s was added but not enabled: %s", pm.ID(), e.Message)}
				}
			}
			return a.out(pm.Props(), func(w io.Writer) { fmt.Fprintln(w, pm.ID()) })
		},
	}
	add.register(addCmd, false)

	var edit mappingFlags
	editCmd := &cobra.Command{
		Use:   "edit CONN ID [--name NAME] [--protocol tcp|udp] [--external-port N] [--internal-port N] [--target-ip IP | --target-name HOST] [--enable[=false]]",
		Short: "change fields of a port mapping, keeping its id",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			var e hnetcfg.PortMappingEdit
			fl := c.Flags()
			if fl.Changed("name") {
				e.Name = &edit.name
			}
			if fl.Changed("protocol") {
				e.Protocol = new(hnetcfg.Protocol(edit.protocol))
			}
			if fl.Changed("external-port") {
				e.ExternalPort = &edit.external
			}
			if fl.Changed("internal-port") {
				e.InternalPort = &edit.internal
			}
			if fl.Changed("target-ip") {
				e.TargetIPAddress = &edit.targetIP
			}
			if fl.Changed("target-name") {
				e.TargetName = &edit.targetName
			}
			if fl.Changed("enable") {
				e.Enabled = &edit.enable
			}
			if e == (hnetcfg.PortMappingEdit{}) {
				return usageError{fmt.Errorf("mapping edit: give at least one field to change")}
			}
			return a.onMapping(c, args, func(pm *hnetcfg.PortMapping) error { return pm.Edit(c.Context(), e) })
		},
	}
	edit.register(editCmd, true)

	var q hnetcfg.MappingQuery
	var origin string
	list := &cobra.Command{
		Use:   "list CONN [--enabled] [--origin user|natpmp|pcp|upnp] [--client IP]",
		Short: "list the port mappings of a connection: a person's, and those devices made for themselves",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := a.config(c, args[0])
			if err != nil {
				return err
			}
			q.Origin = hnetcfg.MappingOrigin(origin)
			pms, err := cfg.QueryPortMappings(c.Context(), q)
			if err != nil {
				return err
			}
			ps := make([]hnetcfg.PortMappingProps, len(pms))
			for i, pm := range pms {
				ps[i] = pm.Props()
			}
			return a.out(ps, func(w io.Writer) { mappingTable(w, ps) })
		},
	}
	list.Flags().BoolVar(&q.EnabledOnly, "enabled", false, "list the enabled mappings only")
	list.Flags().StringVar(&origin, "origin", "", "list the mappings of this origin only: user (a person's), natpmp, pcp or upnp (a device's)")
	list.Flags().StringVar(&q.Client, "client", "", "list the mappings this device (its address) made only")

	return group("mapping", "publish services with port mappings",
		addCmd, list,
		a.mappingVerb("show", "show one port mapping", func(*hnetcfg.PortMapping, context.Context) error { return nil }),
		a.mappingVerb("enable", "enable a port mapping", (*hnetcfg.PortMapping).Enable),
		a.mappingVerb("disable", "disable a port mapping", (*hnetcfg.PortMapping).Disable),
		&cobra.Command{
			Use:   "remove CONN ID",
			Short: "remove a port mapping",
			Args:  args(cobra.ExactArgs(2)),
			RunE: func(c *cobra.Command, args []string) error {
				cfg, err := a.config(c, args[0])
				if err != nil {
					return err
				}
				pm, err := cfg.PortMapping(c.Context(), args[1])
				if err != nil {
					return err
				}
				if err := cfg.RemovePortMapping(c.Context(), pm); err != nil {
					return err
				}
				return a.out(map[string]any{"id": pm.ID(), "removed": true}, func(w io.Writer) {
					fmt.Fprintf(w, "removed mapping %s (%s)\n", pm.ID(), pm.Props().Name)
				})
			},
		},
		editCmd,
	)
}

// mappingVerb is a command that runs verb on one mapping and prints the
// mapping afterwards.
func (a *app) mappingVerb(use, short string, verb func(*hnetcfg.PortMapping, context.Context) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CONN ID",
		Short: short,
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, args []string) error {
			return a.onMapping(c, args, func(pm *hnetcfg.PortMapping) error { return verb(pm, c.Context()) })
		},
	}
}

// config returns the sharing configuration of the connection conn names.
func (a *app) config(c *cobra.Command, conn string) (*hnetcfg.SharingConfiguration, error) {
	m := a.manager()
	cn, err := m.Connection(c.Context(), conn)
	if err != nil {
		return nil, err
	}
	return m.INetSharingConfigurationForINetConnection(cn), nil
}

// onMapping runs do on the mapping args[1] of the connection args[0] and
// prints the mapping afterwards.
func (a *app) onMapping(c *cobra.Command, args []string, do func(*hnetcfg.PortMapping) error) error {
	cfg, err := a.config(c, args[0])
	if err != nil {
		return err
	}
	pm, err := cfg.PortMapping(c.Context(), args[1])
	if err != nil {
		return err
	}
	if err := do(pm); err != nil {
		return err
	}
	return a.out(pm.Props(), func(w io.Writer) { mappingDetail(w, pm.Props()) })
}

func target(p hnetcfg.PortMappingProps) string {
	switch {
	case p.TargetIPAddress != "":
		return p.TargetIPAddress
	case p.Unresolved:
		return p.TargetName + " (unresolved)"
	}
	return p.TargetName + " (" + p.ResolvedIPAddress + ")"
}

func mappingTable(w io.Writer, ps []hnetcfg.PortMappingProps) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPROTOCOL\tEXTERNAL\tTARGET\tINTERNAL\tENABLED\tORIGIN")
	now := time.Now()
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", p.ID, p.Name, p.Protocol, p.ExternalPort, target(p), p.InternalPort, yesNo(p.Enabled), origin(p, now))
	}
	tw.Flush()
}

// origin says who made a mapping: "user", or the protocol a device
// leased it by, with the device and the time its lease has left.
func origin(p hnetcfg.PortMappingProps, now time.Time) string {
	if p.Origin == "" || p.Origin == hnetcfg.OriginUser {
		return "user"
	}
	s := fmt.Sprintf("%s by %s", p.Origin, p.Client)
	if t, err := time.Parse(time.RFC3339, p.Expires); err == nil {
		s += fmt.Sprintf(", %s left", max(t.Sub(now), 0).Truncate(time.Second))
	}
	return s
}

func mappingDetail(w io.Writer, p hnetcfg.PortMappingProps) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", p.ID)
	fmt.Fprintf(tw, "Name:\t%s\n", p.Name)
	fmt.Fprintf(tw, "Protocol:\t%s\n", p.Protocol)
	fmt.Fprintf(tw, "External port:\t%d\n", p.ExternalPort)
	fmt.Fprintf(tw, "Internal port:\t%d\n", p.InternalPort)
	if p.TargetIPAddress != "" {
		fmt.Fprintf(tw, "Target IP address:\t%s\n", p.TargetIPAddress)
	} else {
		fmt.Fprintf(tw, "Target name:\t%s\n", p.TargetName)
		if p.Unresolved {
			fmt.Fprintf(tw, "Resolved to:\tnothing yet (no lease, reservation or static name has it)\n")
		} else {
			fmt.Fprintf(tw, "Resolved to:\t%s\n", p.ResolvedIPAddress)
		}
	}
	fmt.Fprintf(tw, "Enabled:\t%s\n", yesNo(p.Enabled))
	fmt.Fprintf(tw, "Origin:\t%s\n", origin(p, time.Now()))
	if p.Expires != "" {
		fmt.Fprintf(tw, "Lease ends:\t%s\n", p.Expires)
	}
	if len(p.RemotePeers) > 0 {
		fmt.Fprintf(tw, "Remote peers:\tonly %s\n", strings.Join(p.RemotePeers, ", "))
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
