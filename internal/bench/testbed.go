package bench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/netshare/netshare/internal/lab"
	"golang.org/x/sys/unix"
)

// testbed is the namespaces a side-by-side bench builds for itself: each
// server in a gateway namespace of its own with a client namespace behind
// it, and one upstream namespace in front of all of them. remove takes
// them away with every process in them.
type testbed struct {
	namespaces []string
}

// veth is a pair of linked interfaces in two namespaces.
type veth struct{ name, ns, peer, peerNS string }

// ifaddr is an address given to an interface.
type ifaddr struct{ ns, dev, cidr string }

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func in(ns string, args ...string) error {
	return sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// build makes the namespaces (with loopback up), the veth pairs, their
// addresses, and brings every end up. The caller removes the testbed
// whether build succeeds or not.
func (tb *testbed) build(namespaces []string, veths []veth, addrs []ifaddr) error {
	for _, ns := range namespaces {
		if err := sh("ip", "netns", "add", ns); err != nil {
			return err
		}
		tb.namespaces = append(tb.namespaces, ns)
		if err := in(ns, "ip", "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	for _, v := range veths {
		if err := sh("ip", "link", "add", v.name, "netns", v.ns, "type", "veth", "peer", "name", v.peer, "netns", v.peerNS); err != nil {
			return err
		}
	}
	for _, a := range addrs {
		if err := in(a.ns, "ip", "addr", "add", a.cidr, "dev", a.dev); err != nil {
			return err
		}
	}
	for _, v := range veths {
		if err := in(v.ns, "ip", "link", "set", v.name, "up"); err != nil {
			return err
		}
		if err := in(v.peerNS, "ip", "link", "set", v.peer, "up"); err != nil {
			return err
		}
	}
	return nil
}

// remove kills what runs in the namespaces and deletes them.
func (tb *testbed) remove() {
	for _, ns := range tb.namespaces {
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					killWait(pid)
				}
			}
		}
		exec.Command("ip", "netns", "del", ns).Run()
	}
	tb.namespaces = nil
}

// lockDir makes a bench's directory its own: one bench at a time in a
// directory (another would remove this one's files and namespaces when it
// ends), and nothing a killed run left there (a daemon's stored state,
// logs) carried into this one.
func lockDir(dir, bench string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another %s bench is running in %s (%w); wait for it, or give --dir another directory", bench, dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	for _, e := range entries {
		if e.Name() == ".lock" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			lock.Close()
			return nil, fmt.Errorf("removing what an earlier run left: %w", err)
		}
	}
	return func() { lock.Close() }, nil
}

// startSideBySide is how a side-by-side bench starts: its directory
// locked and cleared (lockDir), a lab for netshare's namespaces named
// with prefix and a random id (pfx; the peer's namespaces take the same),
// and the testbed for the peer's. end removes them all, first copying the
// servers' logs to logDir if it is set.
func startSideBySide(dir, prefix, bench, binary, logDir string) (l *lab.Lab, tb *testbed, pfx string, end func(), err error) {
	unlock, err := lockDir(dir, bench)
	if err != nil {
		return nil, nil, "", nil, err
	}
	var id [3]byte
	rand.Read(id[:])
	pfx = prefix + hex.EncodeToString(id[:])
	l = &lab.Lab{Dir: dir, ID: hex.EncodeToString(id[:]), WAN: pfx + "-up", GW: pfx + "-gw", LAN: pfx + "-lan",
		Socket: filepath.Join(dir, "netshare.sock"), Binary: binary}
	tb = &testbed{}
	end = func() {
		tb.remove()
		if logDir != "" {
			os.MkdirAll(logDir, 0o755)
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, f := range logs {
				if data, err := os.ReadFile(f); err == nil {
					os.WriteFile(filepath.Join(logDir, filepath.Base(f)), data, 0o644)
				}
			}
		}
		l.Down()
		unlock()
	}
	return l, tb, pfx, end, nil
}
