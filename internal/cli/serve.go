package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/daemon"
	"github.com/netshare/netshare/internal/webui"
)

func (a *app) serveCmd() *cobra.Command {
	var stateDir, backend string
	var level logLevel
	var httpCfg webui.ListenConfig
	var httpFD int
	var dnsCache, config string
	format := logFormat("text")
	c := &cobra.Command{
		Use:   "serve [--state-dir DIR] [--socket PATH]",
		Short: "run the netshare daemon",
		Long: `serve runs the daemon: it keeps the state in DIR/netshare.db, applies it to
the network namespace it runs in, and answers on the unix socket (mode 0660:
root and the socket's group). SIGINT or SIGTERM stops it cleanly.

--backend=fake uses in-memory interfaces (wan0, lan0, wlan0) and an
in-memory firewall instead of the kernel: a safe way to try every command.

--http ADDR serves the web UI on ADDR (such as 127.0.0.1:8137). It is off by
default. An address other than loopback needs --http-remote, and the UI
never answers on the public connection's addresses without --http-public.
Logging in needs the token kept in DIR/ui-token (made at first start, mode
0600); 'netshare ui url' prints a login link.

` + settingsHelp(),
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := applyServeSettings(c, a.env.Getenv, config, c.Flags().Changed("config")); err != nil {
				return usageError{err}
			}
			opts := &slog.HandlerOptions{Level: level.Level}
			var log *slog.Logger
			if format == "json" {
				log = slog.New(slog.NewJSONHandler(c.ErrOrStderr(), opts))
			} else {
				log = slog.New(slog.NewTextHandler(c.ErrOrStderr(), opts))
			}
			if httpFD > 0 {
				if httpCfg.Addr != "" {
					return usageError{fmt.Errorf("serve: give --http or --http-fd, not both")}
				}
				ln, err := net.FileListener(os.NewFile(uintptr(httpFD), "http"))
				if err != nil {
					return usageError{fmt.Errorf("--http-fd %d: not a listening socket: %w", httpFD, err)}
				}
				httpCfg.Listener = ln
			}
			if httpCfg.Addr != "" {
				if err := httpCfg.Check(); err != nil {
					return usageError{err}
				}
			}
			cacheSize, err := parseBytes(dnsCache)
			if err != nil || cacheSize < 64<<10 || cacheSize > 1<<30 {
				return usageError{fmt.Errorf("--dns-cache %q: give a size from 64KiB to 1GiB, such as 4MiB", dnsCache)}
			}
			err = daemon.Run(c.Context(), daemon.Config{
				StateDir:     stateDir,
				Socket:       a.socket,
				Backend:      strings.ToLower(backend),
				Logger:       log,
				HTTP:         httpCfg,
				DNSCacheSize: cacheSize,
			})
			if err != nil {
				return hresult.New(hresult.Fail, "%w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&stateDir, "state-dir", daemon.DefaultStateDir, "directory of the state file")
	c.Flags().StringVar(&backend, "backend", daemon.BackendKernel, "kernel, or fake for in-memory interfaces and firewall")
	c.Flags().Var(&level, "log-level", "debug, info, warn or error")
	c.Flags().Var(&format, "log-format", "text (for the journal) or json")
	c.Flags().StringVar(&config, "config", DefaultServeConfig, "the configuration `FILE` (optional unless given)")
	c.Flags().StringVar(&httpCfg.Addr, "http", "", "serve the web UI on `ADDR` (host:port), such as 127.0.0.1:8137")
	c.Flags().BoolVar(&httpCfg.AllowRemote, "http-remote", false, "allow --http on an address other than loopback")
	c.Flags().BoolVar(&httpCfg.AllowPublic, "http-public", false, "let the web UI answer on the public connection's addresses")
	c.Flags().IntVar(&httpFD, "http-fd", 0, "serve the web UI on this inherited listening socket (the lab uses it)")
	c.Flags().MarkHidden("http-fd")
	c.Flags().StringVar(&dnsCache, "dns-cache", "4MiB", "memory for the DNS cache, such as 512KiB, 4MiB or 64MiB")
	return c
}

// parseBytes reads a size such as 4MiB, 512KiB, 1GiB or 65536 (bytes).
func parseBytes(s string) (int, error) {
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}
