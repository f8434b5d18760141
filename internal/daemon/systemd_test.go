package daemon_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/daemon"
	"github.com/netshare/netshare/internal/fw"
)

// TestSystemdNotify runs the daemon as systemd would run a unit of
// Type=notify with WatchdogSec=3: on a notify socket of the test's, it
// says READY=1 once it serves (not before the API answers), keeps the
// watchdog fed from its main loop, and says STOPPING=1 when stopped.
func TestSystemdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "ns-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sockPath := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sockPath)
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	socket := filepath.Join(dir, "netshare.sock")
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{StateDir: filepath.Join(dir, "state"), Socket: socket, Backend: daemon.BackendFake,
			Links: daemon.FakeLinks(), Firewall: fw.NewFake(), Ready: func() { close(ready) }})
	}()
	next := func(within time.Duration) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(within))
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no message from the daemon within %v: %v", within, err)
		}
		return string(buf[:n])
	}
	if msg := next(10 * time.Second); !strings.HasPrefix(msg, "READY=1\n") {
		t.Fatalf("first message %q, want READY=1", msg)
	}
	if _, err := net.Dial("unix", socket); err != nil {
		t.Errorf("READY=1 came before the API answers: %v", err)
	}
	// Keep-alives at half the period; the main loop goes round every
	// second, so two come within four seconds.
	start := time.Now()
	for range 2 {
		if msg := next(4 * time.Second); msg != "WATCHDOG=1" {
			t.Fatalf("message %q, want WATCHDOG=1", msg)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("two keep-alives took %v", d)
	}
	cancel()
	for {
		msg := next(10 * time.Second)
		if msg == "STOPPING=1" {
			break
		}
		if msg != "WATCHDOG=1" {
			t.Fatalf("message %q while stopping, want STOPPING=1", msg)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-ready
}
