package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// ARPProber finds the addresses in use on an Ethernet link with ARP
// requests sent from the server's own address: a host answers ARP for its
// address even when it drops ping. It needs CAP_NET_RAW.
type ARPProber struct {
	Interface string
	Source    netip.Addr // the server's address on the link
	Timeout   time.Duration
}

// NewProber returns the prober for a private network's link: ARP where the
// link has Ethernet addresses, ping elsewhere.
func NewProber(iface string, server netip.Addr) Prober {
	if ifi, err := net.InterfaceByName(iface); err == nil && len(ifi.HardwareAddr) == 6 {
		return ARPProber{Interface: iface, Source: server, Timeout: 300 * time.Millisecond}
	}
	return PingProber{Timeout: 300 * time.Millisecond}
}

// InUse implements Prober: it sends one request for each address and
// listens for Timeout to whoever claims one of them (a reply, or a
// host's own probe for it).
func (p ARPProber) InUse(ctx context.Context, ips []netip.Addr) (map[netip.Addr]bool, error) {
	ifi, err := net.InterfaceByName(p.Interface)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 || !p.Source.Is4() {
		return nil, fmt.Errorf("ARP on %s: needs an Ethernet link and an IPv4 source", p.Interface)
	}
	c, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("opening an ARP socket on %s: %w", p.Interface, err)
	}
	defer c.Close()
	want := map[netip.Addr]bool{}
	bcast := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for _, ip := range ips {
		if !ip.Is4() {
			continue
		}
		want[ip] = true
		if _, err := c.WriteTo(arpRequest(ifi.HardwareAddr, p.Source, ip), bcast); err != nil {
			return nil, fmt.Errorf("sending an ARP request for %s on %s: %w", ip, p.Interface, err)
		}
	}
	deadline := time.Now().Add(p.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetReadDeadline(deadline)
	used := map[netip.Addr]bool{}
	buf := make([]byte, 128)
	for len(used) < len(want) {
		n, _, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading ARP on %s: %w", p.Interface, err)
		}
		if ip, ok := claimed(buf[:n]); ok && want[ip] {
			used[ip] = true
		}
	}
	return used, nil
}

// arpRequest is an ARP request for target from (mac, src), without the
// Ethernet header, which the kernel adds.
func arpRequest(mac net.HardwareAddr, src, target netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[2:], 0x0800) // IPv4
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], 1) // request
	copy(b[8:14], mac)
	s, t := src.As4(), target.As4()
	copy(b[14:18], s[:])
	copy(b[24:28], t[:])
	return b
}

// claimed returns the address an ARP packet says its sender holds or is
// about to take: the sender address of a reply or request, or the target
// of a probe (a request from 0.0.0.0, RFC 5227).
func claimed(b []byte) (netip.Addr, bool) {
	if len(b) < 28 || binary.BigEndian.Uint16(b[0:]) != 1 || binary.BigEndian.Uint16(b[2:]) != 0x0800 || b[4] != 6 || b[5] != 4 {
		return netip.Addr{}, false
	}
	sender := netip.AddrFrom4([4]byte(b[14:18]))
	if !sender.IsUnspecified() {
		return sender, true
	}
	if binary.BigEndian.Uint16(b[6:]) == 1 {
		return netip.AddrFrom4([4]byte(b[24:28])), true
	}
	return netip.Addr{}, false
}

// setRcvBuf sets the receive buffer of c to n bytes: past rmem_max with
// SO_RCVBUFFORCE where the process may (CAP_NET_ADMIN), else as far as
// SO_RCVBUF goes.
func setRcvBuf(c *net.UDPConn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
}
