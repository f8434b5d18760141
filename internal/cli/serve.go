package cli

import (
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/daemon"
)

func (a *app) serveCmd() *cobra.Command {
	var stateDir, backend, level string
	c := &cobra.Command{
		Use:   "serve [--state-dir DIR] [--socket PATH]",
		Short: "run the netshare daemon",
		Long: `serve runs the daemon: it keeps the state in DIR/netshare.db, applies it to
the network namespace it runs in, and answers on the unix socket (mode 0660:
root and the socket's group). SIGINT or SIGTERM stops it cleanly.

--backend=fake uses in-memory interfaces (wan0, lan0, wlan0) and an
in-memory firewall instead of the kernel: a safe way to try every command.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return usageError{err}
			}
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: lv}))
			err := daemon.Run(c.Context(), daemon.Config{
				StateDir: stateDir,
				Socket:   a.socket,
				Backend:  strings.ToLower(backend),
				Logger:   log,
			})
			if err != nil {
				return hresult.New(hresult.Fail, "%v", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&stateDir, "state-dir", daemon.DefaultStateDir, "directory of the state file")
	c.Flags().StringVar(&backend, "backend", daemon.BackendKernel, "kernel, or fake for in-memory interfaces and firewall")
	c.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	return c
}
