package conntrack

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/nettest"
)

// TestGetAndSetTimeout makes a UDP flow in a namespace of its own, reads
// it by its original tuple, gives it more time, and reads the time back.
func TestGetAndSetTimeout(t *testing.T) {
	ns := nettest.New(t)
	// A rule that uses conntrack, so that the namespace tracks flows.
	ns.MustRun(t, "nft", "add table inet t")
	ns.MustRun(t, "nft", "add chain inet t c { type filter hook output priority 0; }")
	ns.MustRun(t, "nft", "add rule inet t c ct state new accept")
	ns.MustRun(t, "python3", "-c", `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 5000))
s.sendto(b"x", ("127.0.0.1", 6000))`)
	c, err := Dial(int(ns.Handle))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	orig := Tuple{Proto: ipproto.UDP, Src: netip.MustParseAddrPort("127.0.0.1:5000"), Dst: netip.MustParseAddrPort("127.0.0.1:6000")}
	f, err := c.Get(orig)
	if err != nil {
		t.Fatal(err)
	}
	wantReply := Tuple{Proto: ipproto.UDP, Src: orig.Dst, Dst: orig.Src}
	if f.Orig != orig || f.Reply != wantReply || f.Timeout <= 0 || f.Timeout > 30*time.Second {
		t.Fatalf("flow %+v, want %v replied by %v with at most 30 s", f, orig, wantReply)
	}
	if err := c.SetTimeout(orig, 600*time.Second); err != nil {
		t.Fatal(err)
	}
	if f, err = c.Get(orig); err != nil || f.Timeout < 590*time.Second || f.Timeout > 600*time.Second {
		t.Fatalf("after SetTimeout(600s): %+v, %v", f, err)
	}
	absent := orig
	absent.Dst = netip.MustParseAddrPort("127.0.0.1:6001")
	if _, err := c.Get(absent); !errors.Is(err, ErrNotFound) {
		t.Errorf("an absent flow: %v", err)
	}
	if err := c.SetTimeout(absent, time.Minute); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetTimeout of an absent flow: %v", err)
	}
	if _, err := c.Get(Tuple{Proto: ipproto.UDP, Src: netip.MustParseAddrPort("[::1]:1"), Dst: orig.Dst}); err == nil {
		t.Error("an IPv6 tuple was asked for")
	}
}
