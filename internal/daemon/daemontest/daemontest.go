// Package daemontest runs a netshare daemon with fake backends on a
// temporary socket, for end-to-end tests of the API, the client and the CLI.
package daemontest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/netshare/netshare/internal/daemon"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/webui"
)

// Daemon is a running daemon. Links and Firewall are its fakes; they
// outlive restarts, as the kernel outlives the daemon.
type Daemon struct {
	t        testing.TB
	StateDir string
	Socket   string
	Links    *link.Fake
	Firewall *fw.Fake
	// HTTP, if set before Start, serves the web UI there (127.0.0.1:0
	// picks a free port; GET /v1/ui on the socket tells which).
	HTTP string
	stop context.CancelFunc
	done chan error
}

// Start runs a daemon on the fake interfaces of daemon.FakeLinks and stops
// it when the test ends.
func Start(t testing.TB) *Daemon {
	t.Helper()
	return start(t, "")
}

// StartUI is Start with the web UI on a free loopback port.
func StartUI(t testing.TB) *Daemon {
	t.Helper()
	return start(t, "127.0.0.1:0")
}

func start(t testing.TB, http string) *Daemon {
	t.Helper()
	// Unix socket paths are short: keep the directory near the root.
	dir, err := os.MkdirTemp("", "netshare-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &Daemon{
		t:        t,
		StateDir: filepath.Join(dir, "state"),
		Socket:   filepath.Join(dir, "run", "netshare.sock"),
		Links:    daemon.FakeLinks(),
		Firewall: fw.NewFake(),
		HTTP:     http,
	}
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

// Start starts the daemon again after Stop.
func (d *Daemon) Start() {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	d.stop, d.done = cancel, make(chan error, 1)
	go func() {
		d.done <- daemon.Run(ctx, daemon.Config{
			StateDir: d.StateDir,
			Socket:   d.Socket,
			Backend:  daemon.BackendFake,
			Links:    d.Links,
			Firewall: d.Firewall,
			HTTP:     webui.ListenConfig{Addr: d.HTTP},
			Ready:    func() { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-d.done:
		cancel()
		d.stop = nil
		d.t.Fatalf("daemon did not start: %v", err)
	}
}

// Stop stops the daemon as SIGTERM would and waits for it.
func (d *Daemon) Stop() {
	if d.stop == nil {
		return
	}
	d.stop()
	d.stop = nil
	if err := <-d.done; err != nil {
		d.t.Errorf("daemon stopped with %v", err)
	}
}

// Restart stops and starts the daemon.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.Stop()
	d.Start()
}
