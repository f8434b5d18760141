// Package cli is the netshare command line: 'netshare serve' runs the
// daemon, and the other commands drive it through the hnetcfg client.
//
// Output rules: the requested output goes to stdout, and with --json it is
// JSON and nothing else; an error goes to stderr as "E_CODE: message" and
// the exit status is 1 (2 for a command line that cannot be parsed).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/version"
)

// Env is what a CLI run reads and writes.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// usageError marks a command line that could not be parsed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// exitStatus ends the program with a status and no message, for a command
// that already said what went wrong.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Main runs the command line args (without the program name) and returns
// the exit status.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	a := &app{env: env}
	root := a.root()
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var ue usageError
	if errors.As(err, &ue) || !isHresult(err) {
		fmt.Fprintf(env.Stderr, "%s: %v\n", hresult.InvalidArg, err)
		fmt.Fprintln(env.Stderr, "Run 'netshare --help' for usage.")
		return 2
	}
	fmt.Fprintln(env.Stderr, hresult.From(err).Error())
	return 1
}

func isHresult(err error) bool {
	var e *hresult.Error
	return errors.As(err, &e)
}

func hresultFail(err error) error { return hresult.New(hresult.Fail, "%w", err) }

// SignalContext returns a context that is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

type app struct {
	env    Env
	socket string
	json   bool
}

// Command returns the command tree, for the documentation the package
// build generates from it (man pages, shell completions).
func Command(env Env) *cobra.Command {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	return (&app{env: env}).root()
}

func (a *app) manager() *hnetcfg.SharingManager { return hnetcfg.NewSharingManager(a.socket) }

func (a *app) root() *cobra.Command {
	defSocket := a.env.Getenv("NETSHARE_SOCKET")
	if defSocket == "" {
		defSocket = hnetcfg.DefaultSocket
	}
	root := &cobra.Command{
		Use:   "netshare",
		Short: "Internet Connection Sharing and Firewall for Linux",
		Long: `netshare shares one upstream connection with private networks (NAT,
forwarding, addressing), guards connections with a stateful firewall and
publishes services with port mappings. 'netshare serve' runs the daemon;
the other commands talk to it.

CONN is an interface name, a connection name or a connection id.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&a.socket, "socket", defSocket, "the daemon's unix socket (environment: NETSHARE_SOCKET)")
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print machine-readable JSON and nothing else on stdout")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.serveCmd(), a.connectionCmd(), a.sharingCmd(), a.firewallCmd(), a.natTraversalCmd(), a.mappingCmd(), a.leaseCmd(), a.dhcpCmd(), a.dnsCmd(), a.configCmd(), a.uiCmd(), a.labCmd(), a.benchCmd(), a.versionCmd())
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// args wraps a cobra argument check so that its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, a []string) error {
		if err := check(c, a); err != nil {
			return usageError{fmt.Errorf("%s: %w", c.CommandPath(), err)}
		}
		return nil
	}
}

// group returns a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, a []string) error {
			return usageError{fmt.Errorf("%s: a subcommand is required (%s)", c.CommandPath(), subNames(c))}
		},
	}
	c.AddCommand(subs...)
	return c
}

func subNames(c *cobra.Command) string {
	var names []string
	for _, s := range c.Commands() {
		names = append(names, s.Name())
	}
	return strings.Join(names, ", ")
}

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// out prints v as JSON with --json, and text otherwise.
func (a *app) out(v any, text func(w io.Writer)) error {
	if a.json {
		return a.printJSON(v)
	}
	text(a.env.Stdout)
	return nil
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print netshare's version, commit and Go version",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			in := version.Get()
			return a.out(in, func(w io.Writer) {
				fmt.Fprintf(w, "netshare %s\n", in.Version)
				if in.Commit != "" {
					fmt.Fprintf(w, "commit %s", in.Commit)
					if in.Time != "" {
						fmt.Fprintf(w, " (%s)", in.Time)
					}
					if in.Modified {
						fmt.Fprint(w, ", with changes not committed")
					}
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "built with %s\n", in.Go)
			})
		},
	}
}
