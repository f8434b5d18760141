package lab_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
	"github.com/vishvananda/netns"

	"github.com/netshare/netshare/internal/lab"
)

// inNetns runs fn on a thread in network namespace name: the sockets fn
// opens are that namespace's. The thread goes back to its own namespace
// after, or, if it cannot, stays locked and ends with the goroutine.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromName(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			t.Error(err)
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			t.Errorf("returning to the original namespace: %v", err)
			return // the thread stays locked, and dies with this goroutine
		}
		runtime.UnlockOSThread()
	}()
	<-done
}

// TestGoNATPMP has github.com/jackpal/go-nat-pmp, the NAT-PMP client of
// Syncthing and go-ethereum, map a port of the lan host.
func TestGoNATPMP(t *testing.T) {
	l, _ := up(t)
	if _, err := l.Start(l.LAN, "lan-server.log", "lab", "server", "--port", "7000"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	client := natpmp.NewClientWithTimeout(net.ParseIP(lab.GatewayLAN), 5*time.Second)
	var (
		addr   *natpmp.GetExternalAddressResult
		mapped *natpmp.AddPortMappingResult
		err    error
	)
	inNetns(t, l.LAN, func() {
		if addr, err = client.GetExternalAddress(); err != nil {
			return
		}
		mapped, err = client.AddPortMapping("tcp", 7000, 7300, 600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := net.IP(addr.ExternalIPAddress[:]).String(); got != lab.GatewayWAN {
		t.Errorf("the external address is %s, want %s", got, lab.GatewayWAN)
	}
	if mapped.MappedExternalPort != 7300 || mapped.InternalPort != 7000 || mapped.PortMappingLifetimeInSeconds != 600 {
		t.Errorf("mapped %+v", mapped)
	}
	public := fmt.Sprintf("%s:7300", lab.GatewayWAN)
	reaches(t, l, l.WAN, "tcp", public, lab.WANHost)
	inNetns(t, l.LAN, func() { _, err = client.AddPortMapping("tcp", 7000, 0, 0) })
	if err != nil {
		t.Fatal(err)
	}
	blocked(t, l, l.WAN, "tcp", public)
}
