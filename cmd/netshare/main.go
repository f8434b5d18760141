// Command netshare is Internet Connection Sharing and Firewall for Linux:
// 'netshare serve' runs the daemon, and the other commands drive it.
package main

import (
	"os"

	"github.com/netshare/netshare/internal/cli"
)

func main() {
	ctx, stop := cli.SignalContext()
	code := cli.Main(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
