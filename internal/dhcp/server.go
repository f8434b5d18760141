package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/net/ipv4"

	"github.com/netshare/netshare/internal/ping"
	"github.com/netshare/netshare/internal/ratelimit"
)

// Limits bound the work a Server takes on, whatever arrives.
type Limits struct {
	// PerClient is the rate of packets taken from one hardware address.
	PerClient ratelimit.Limit
	// NewClients is the rate of packets taken from hardware addresses the
	// server does not know (no lease, reservation or offer): mostly
	// DISCOVERs, which cost a client nothing to forge.
	NewClients ratelimit.Limit
	// Queue is how many packets may wait in each of the two queues (known
	// clients, new clients); the rest are dropped and counted.
	Queue int
	// Workers is how many requests are answered at once: the lease
	// writes of requests answered together share one commit.
	Workers int
}

// DefaultLimits serve 1,000 new clients a second (bursts of 200) and a
// client's ordinary exchanges and retries, and keep a flood's cost to a
// few percent of a core.
var DefaultLimits = Limits{
	PerClient:  ratelimit.Limit{Rate: 8, Burst: 16},
	NewClients: ratelimit.Limit{Rate: 1000, Burst: 200},
	Queue:      256,
	Workers:    4,
}

// Stats counts what a Server did with the packets it read.
type Stats struct {
	Received    uint64 // packets read
	Answered    uint64 // replies sent
	Malformed   uint64 // not a DHCP request: dropped
	RateLimited uint64 // over a client's or the new clients' rate: dropped
	QueueFull   uint64 // no room to wait: dropped
}

// Server runs an Allocator on one interface, port 67. One goroutine reads
// and sorts packets, a few answer them (known clients first), one probes
// addresses ahead of need; memory and work stay bounded under any flood.
type Server struct {
	conn *net.UDPConn
	a    *Allocator
	log  *slog.Logger
	lim  Limits

	perClient *ratelimit.Table[[6]byte]
	newRate   ratelimit.Bucket // the reader's alone
	recent    recentFilter

	known, fresh chan *datagram
	free         chan *datagram
	// parked holds DISCOVERs that found no probed address ready; they
	// are answered after the next probe round, a few hundred milliseconds
	// on, where a client would try again after seconds.
	parked chan *datagram

	received, answered, malformed, limited, full atomic.Uint64

	stop   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type datagram struct {
	buf  [1500]byte
	n    int
	peer *net.UDPAddr
}

// Serve starts serving a on the interface iface; Close stops it. lim's
// zero fields take DefaultLimits' values.
func Serve(iface string, a *Allocator, lim Limits, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		return nil, fmt.Errorf("DHCP server on %s: %w", iface, err)
	}
	return serveConn(conn, a, lim, log), nil
}

func serveConn(conn *net.UDPConn, a *Allocator, lim Limits, log *slog.Logger) *Server {
	if lim.PerClient == (ratelimit.Limit{}) {
		lim.PerClient = DefaultLimits.PerClient
	}
	if lim.NewClients == (ratelimit.Limit{}) {
		lim.NewClients = DefaultLimits.NewClients
	}
	if lim.Queue <= 0 {
		lim.Queue = DefaultLimits.Queue
	}
	if lim.Workers <= 0 {
		lim.Workers = DefaultLimits.Workers
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		conn: conn, a: a, log: log, lim: lim,
		perClient: ratelimit.NewTable[[6]byte](lim.PerClient, 4096),
		recent:    recentFilter{seed: maphash.MakeSeed()},
		known:     make(chan *datagram, lim.Queue),
		fresh:     make(chan *datagram, lim.Queue),
		free:      make(chan *datagram, 2*lim.Queue+lim.Workers),
		parked:    make(chan *datagram, lim.Queue),
		stop:      make(chan struct{}),
		cancel:    cancel,
	}
	for range cap(s.free) {
		s.free <- &datagram{}
	}
	s.wg.Add(3 + lim.Workers)
	go s.read()
	for range lim.Workers {
		go s.work()
	}
	go s.probe(ctx)
	go s.report()
	return s
}

// Close stops the server and waits for its goroutines.
func (s *Server) Close() error {
	close(s.stop)
	s.cancel()
	err := s.conn.Close()
	s.wg.Wait()
	return err
}

// Allocator returns the server's allocator.
func (s *Server) Allocator() *Allocator { return s.a }

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	return Stats{
		Received: s.received.Load(), Answered: s.answered.Load(),
		Malformed: s.malformed.Load(), RateLimited: s.limited.Load(), QueueFull: s.full.Load(),
	}
}

// readBatch is how many packets one system call reads.
const readBatch = 64

// rcvBuf is the socket's receive buffer: room for a few thousand requests
// while the reader is not scheduled.
const rcvBuf = 4 << 20

// read takes packets off the socket, many at a time, and sorts them:
// packets from known clients (and from clients sending again) wait in one
// queue, the others in another, after the rates. It must keep up with a
// flood, or the kernel drops packets at random, real clients' included.
func (s *Server) read() {
	defer s.wg.Done()
	setRcvBuf(s.conn, rcvBuf)
	pc := ipv4.NewPacketConn(s.conn)
	msgs := make([]ipv4.Message, readBatch)
	bufs := make([][1500]byte, readBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{bufs[i][:]}
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.a.warn("reading DHCP packets", "err", err)
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		now := time.Now()
		for i := range n {
			peer, _ := msgs[i].Addr.(*net.UDPAddr)
			s.sort(bufs[i][:msgs[i].N], peer, now)
		}
	}
}

// sort puts one packet in its queue, or drops and counts it.
func (s *Server) sort(b []byte, peer *net.UDPAddr, now time.Time) {
	s.received.Add(1)
	mac, _, ok := peek(b)
	if !ok || peer == nil {
		s.malformed.Add(1)
		return
	}
	if !s.perClient.Allow(mac, now) {
		s.limited.Add(1)
		return
	}
	q := s.known
	if !s.recent.seen(mac, now) && !s.a.Known(net.HardwareAddr(mac[:]).String()) {
		if !s.newRate.Allow(s.lim.NewClients, now) {
			s.limited.Add(1)
			s.recent.note(mac, now)
			return
		}
		q = s.fresh
	}
	var p *datagram
	select {
	case p = <-s.free:
	default:
		s.full.Add(1)
		return
	}
	p.n = copy(p.buf[:], b)
	p.peer = peer
	select {
	case q <- p:
	default:
		s.full.Add(1)
		s.free <- p
	}
}

// peek reads what sorting needs from a raw BOOTP request: the client's
// hardware address and the message type. ok is false for anything that
// is not an Ethernet DHCP request.
func peek(b []byte) (mac [6]byte, typ dhcpv4.MessageType, ok bool) {
	if len(b) < 240 || b[0] != 1 || b[1] != 1 || b[2] != 6 || binary.BigEndian.Uint32(b[236:240]) != 0x63825363 {
		return mac, 0, false
	}
	copy(mac[:], b[28:34])
	for opts := b[240:]; len(opts) > 0; {
		switch code := opts[0]; code {
		case 0:
			opts = opts[1:]
		case 255:
			return mac, typ, typ != 0
		default:
			if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
				return mac, 0, false
			}
			if code == 53 && opts[1] == 1 {
				typ = dhcpv4.MessageType(opts[2])
			}
			opts = opts[2+int(opts[1]):]
		}
	}
	return mac, typ, typ != 0
}

// work answers the queued packets, known clients first.
func (s *Server) work() {
	defer s.wg.Done()
	for {
		var p *datagram
		select {
		case p = <-s.known:
		default:
			select {
			case p = <-s.known:
			case p = <-s.fresh:
			case <-s.stop:
				return
			}
		}
		s.answer(p, true)
		s.free <- p
	}
}

// answer answers p; patient lets a DISCOVER that finds nothing ready
// wait for the next probe round.
func (s *Server) answer(p *datagram, patient bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("DHCP request dropped: handler panic", "panic", r)
		}
	}()
	m, err := dhcpv4.FromBytes(p.buf[:p.n])
	if err != nil {
		s.malformed.Add(1)
		return
	}
	resp, short := s.a.handle(context.Background(), m, patient)
	if resp == nil {
		if short && patient {
			w := *p
			select {
			case s.parked <- &w:
			default:
				s.full.Add(1)
			}
		}
		return
	}
	to := p.peer
	switch {
	case m.GatewayIPAddr != nil && !m.GatewayIPAddr.IsUnspecified():
		to = &net.UDPAddr{IP: m.GatewayIPAddr, Port: dhcpv4.ServerPort}
	case resp.MessageType() == dhcpv4.MessageTypeNak, to.IP == nil, to.IP.IsUnspecified():
		// A client without an address hears broadcasts only.
		to = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
	if _, err := s.conn.WriteTo(resp.ToBytes(), to); err != nil {
		s.a.warn("sending a DHCP reply", "to", to, "err", err)
		return
	}
	s.answered.Add(1)
	s.recent.note([6]byte(m.ClientHWAddr), time.Now())
}

// probe runs the allocator's probe rounds: one a second, and another at
// once when clients take the probed addresses faster.
func (s *Server) probe(ctx context.Context) {
	defer s.wg.Done()
	for {
		waiting := len(s.parked) // parked before this round: it counted them
		if _, err := s.a.ProbeRound(ctx); err != nil && ctx.Err() == nil {
			s.a.warn("probing addresses before offering them", "err", err)
		}
		s.unpark(waiting)
		select {
		case <-s.stop:
			return
		case <-s.a.Kick():
		case <-time.After(time.Second):
		}
	}
}

// unpark answers the n DISCOVERs parked first, at last taking over the
// oldest offer if still nothing is ready for them.
func (s *Server) unpark(n int) {
	for range n {
		select {
		case p := <-s.parked:
			s.answer(p, false)
		default:
			return
		}
	}
}

// report logs, at most every 10 s, how many packets were dropped.
func (s *Server) report() {
	defer s.wg.Done()
	var last Stats
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		st := s.Stats()
		if d := (Stats{Malformed: st.Malformed - last.Malformed, RateLimited: st.RateLimited - last.RateLimited, QueueFull: st.QueueFull - last.QueueFull}); d != (Stats{}) {
			s.log.Warn("DHCP packets dropped in the last 10 s", "malformed", d.Malformed, "overRate", d.RateLimited, "queueFull", d.QueueFull, "received", st.Received-last.Received)
		}
		last = st
	}
}

// recentFilter remembers, in a fixed 4 MB, the hardware addresses the
// server answered in the last minute or had to drop for the new clients'
// rate, so that a real client goes first when it sends again: with its
// REQUEST after an offer (even when the flood has since taken the offered
// address over), or when it tries again after a drop. A flood of forged
// addresses, each sent once, gains nothing from it. Under a flood of
// 100,000 forged addresses a second, a client's entry survives 1 s with a
// chance of about 9 in 10, 3 s with about 3 in 4. It is safe for
// concurrent use.
type recentFilter struct {
	seed  maphash.Seed
	once  sync.Once
	slots []atomic.Uint32 // fingerprint<<8 | time in quarter seconds, mod 256
}

const recentSlots = 1 << 20

func (f *recentFilter) where(mac [6]byte) (int, uint32) {
	h := maphash.Comparable(f.seed, mac)
	return int(h & (recentSlots - 1)), uint32(h>>40) | 1
}

func quarter(now time.Time) uint32 { return uint32(now.UnixMilli()/250) & 0xff }

func (f *recentFilter) note(mac [6]byte, now time.Time) {
	f.once.Do(func() { f.slots = make([]atomic.Uint32, recentSlots) })
	i, fp := f.where(mac)
	f.slots[i].Store(fp<<8 | quarter(now))
}

func (f *recentFilter) seen(mac [6]byte, now time.Time) bool {
	f.once.Do(func() { f.slots = make([]atomic.Uint32, recentSlots) })
	i, fp := f.where(mac)
	e := f.slots[i].Load()
	return e>>8 == fp&0xffffff && (quarter(now)-e)&0xff < 240
}

// PingProber probes addresses with ICMP echo requests: for links without
// hardware addresses, where ARP does not reach.
type PingProber struct {
	Timeout time.Duration
}

// InUse implements Prober.
func (p PingProber) InUse(ctx context.Context, ips []netip.Addr) (map[netip.Addr]bool, error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	used := map[netip.Addr]bool{}
	for _, ip := range ips {
		wg.Go(func() {
			if _, err := ping.Ping(ip, p.Timeout); err == nil {
				mu.Lock()
				used[ip] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return used, nil
}
