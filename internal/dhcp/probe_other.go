//go:build !linux

package dhcp

import (
	"net"
	"net/netip"
	"time"
)

// NewProber returns the prober for a private network's link: ping, as ARP
// is probed on Linux only.
func NewProber(iface string, server netip.Addr) Prober {
	return PingProber{Timeout: 300 * time.Millisecond}
}

// setRcvBuf sets the receive buffer of c to n bytes, as far as the system
// allows.
func setRcvBuf(c *net.UDPConn, n int) { c.SetReadBuffer(n) }
