// Package nettest creates network namespaces for tests that need the
// kernel, and removes them when the test ends, also when it fails. Nothing
// here touches the host's own namespace.
package nettest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"
)

var seq atomic.Int64

// NetNS is a named network namespace (one that `ip netns exec` reaches).
type NetNS struct {
	Name   string
	Handle netns.NsHandle
}

// New creates a namespace with a unique name and deletes it at the end of
// the test. Where namespaces cannot be created (not root, no permission)
// the test is skipped with the reason, except under CI, where it fails:
// CI must run the kernel tests.
func New(t testing.TB) *NetNS {
	t.Helper()
	name := fmt.Sprintf("nstest-%d-%d", os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("cannot create a network namespace (need root and iproute2): %v: %s", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	n := &NetNS{Name: name}
	t.Cleanup(func() {
		if n.Handle.IsOpen() {
			n.Handle.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("removing namespace %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", name, err)
	}
	n.Handle = h
	n.MustRun(t, "ip", "link", "set", "lo", "up")
	return n
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NetNS) Run(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), n.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (n *NetNS) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
