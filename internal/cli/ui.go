package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/netshare/netshare/hresult"
)

func (a *app) uiCmd() *cobra.Command {
	return group("ui", "the web UI",
		&cobra.Command{
			Use:   "url",
			Short: "print the web UI's login link",
			Long: `url prints a link that opens the daemon's web UI and logs in. The link carries
the UI's token (kept in the state directory, mode 0600): treat it as a
password. The daemon serves the UI when started with --http ADDR.`,
			Args: args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				info, err := a.manager().WebUI(c.Context())
				if err != nil {
					return err
				}
				if !info.Enabled {
					return hresult.New(hresult.NotImpl, "the web UI is off: start the daemon with 'netshare serve --http 127.0.0.1:8137'")
				}
				return a.out(info, func(w io.Writer) { fmt.Fprintln(w, info.LoginURL) })
			},
		},
	)
}
