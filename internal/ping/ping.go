// Package ping sends ICMP echo requests: the DHCP server's check that an
// address is free before it offers it, and the lab's ping probe.
package ping

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

var seq atomic.Uint32

// Ping sends one ICMP echo request to the IPv4 address dst and waits up to
// timeout for the reply; it returns the round-trip time. It needs a raw
// socket (root or CAP_NET_RAW).
func Ping(dst netip.Addr, timeout time.Duration) (time.Duration, error) {
	if !dst.Is4() {
		return 0, fmt.Errorf("%s is not an IPv4 address", dst)
	}
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n := seq.Add(1)
	id, sq := int(n>>16)&0xffff^0x4e53, int(n&0xffff)
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: sq, Data: []byte("netshare")}}
	data, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := c.WriteTo(data, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return 0, err
	}
	c.SetReadDeadline(start.Add(timeout))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return 0, err
		}
		reply, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || reply.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := reply.Body.(*icmp.Echo)
		if ok && echo.ID == id && echo.Seq == sq && from.String() == dst.String() {
			return time.Since(start), nil
		}
	}
}
