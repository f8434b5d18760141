package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/netshare/netshare/internal/natpmp"
	"github.com/netshare/netshare/internal/pcp"
	"github.com/netshare/netshare/internal/ratelimit"
)

// Limits bound what a private network's devices can make the server do.
type Limits struct {
	// PerClient is the rate of requests one address may send.
	PerClient ratelimit.Limit
	// InFlight is how many requests are handled at once (each may wait
	// for the store's commit); beyond, requests are dropped and the
	// clients retry, as both protocols have them do.
	InFlight int
}

// DefaultLimits allow a device 20 requests a second (bursts of 40: a
// client maps a few ports at start, and renews them at half their
// lifetime), and 64 requests at once in all.
var DefaultLimits = Limits{PerClient: ratelimit.Limit{Rate: 20, Burst: 40}, InFlight: 64}

// Server serves a Handler on one private network: on the gateway's
// address there, port 5351, answering only what came in on the network's
// interface from an address of the network.
type Server struct {
	conn    *net.UDPConn
	pc      *ipv4.PacketConn
	h       *Handler
	prefix  netip.Prefix // the network
	gw      netip.Addr   // the gateway's address on it
	ifindex int
	limits  Limits
	rate    *ratelimit.Table[netip.Addr]
	slots   chan struct{}
	log     *slog.Logger
	dropLog *ratelimit.Sampler
	wg      sync.WaitGroup

	annMu   sync.Mutex    // guards annStop
	annStop chan struct{} // closed to stop the announcements under way
	closed  bool

	// Dropped counts the requests dropped: from another interface or
	// address, over a client's rate, or beyond InFlight.
	Dropped atomic.Uint64
}

// Serve starts serving h on network's gateway address (network is that
// address with the network's prefix) of interface iface.
func Serve(h *Handler, iface string, network netip.Prefix, limits Limits, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("NAT-PMP and PCP on %s: %w", iface, err)
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(network.Addr(), Port)))
	if err != nil {
		return nil, fmt.Errorf("NAT-PMP and PCP on %s: %w", network.Addr(), err)
	}
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("NAT-PMP and PCP on %s: asking for the interface of each packet: %w", network.Addr(), err)
	}
	if err := pc.SetMulticastInterface(ifi); err != nil {
		conn.Close()
		return nil, fmt.Errorf("NAT-PMP and PCP on %s: announcing on %s: %w", network.Addr(), iface, err)
	}
	pc.SetMulticastLoopback(false)
	s := &Server{conn: conn, pc: pc, h: h, prefix: network.Masked(), gw: network.Addr(), ifindex: ifi.Index, limits: limits,
		rate: ratelimit.NewTable[netip.Addr](limits.PerClient, 4096), slots: make(chan struct{}, max(limits.InFlight, 1)),
		log: log, dropLog: ratelimit.NewSampler(0.1, 1)}
	s.wg.Add(1)
	go s.serve()
	// A (re)started server tells the devices the epoch: one that went
	// back (a gateway that lost its state) makes them map again.
	s.Announce()
	return s, nil
}

// Announcements go to the devices' NAT-PMP and PCP clients.
var announceTo = netip.MustParseAddrPort("224.0.0.1:5350")

// Announce tells the network's devices the public address and the epoch
// (after a restart, or when the address moved): NAT-PMP's address response
// and PCP's ANNOUNCE response, to 224.0.0.1:5350, ten times, 250 ms apart
// and doubling (RFC 6886 §3.2.1, RFC 6887 §14.1.3). A new call replaces
// the announcements under way.
func (s *Server) Announce() {
	s.annMu.Lock()
	defer s.annMu.Unlock()
	if s.closed {
		return
	}
	if s.annStop != nil {
		close(s.annStop)
	}
	stop := make(chan struct{})
	s.annStop = stop
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		wait := 250 * time.Millisecond
		for range 10 {
			s.announce()
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
	}()
}

func (s *Server) announce() {
	addr, epoch, err := s.h.epoch()
	cm := &ipv4.ControlMessage{IfIndex: s.ifindex}
	dst := net.UDPAddrFromAddrPort(announceTo)
	if err == nil {
		s.pc.WriteTo(natpmp.AppendAddressResponse(nil, natpmp.Success, epoch, addr), cm, dst)
	}
	s.pc.WriteTo(pcp.AppendResponse(nil, pcp.Response{Opcode: pcp.OpAnnounce, Epoch: epoch}), cm, dst)
}

// Addr returns the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (s *Server) serve() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, cm, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("NAT-PMP and PCP: reading", "err", err)
			}
			return
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		if why := s.refuse(src.Addr().Unmap(), cm); why != "" {
			s.drop(why, src)
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.drop("too many requests at once", src)
			continue
		}
		req := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp := s.h.Handle(ctx, req, src.Addr().Unmap())
			cancel()
			// The slot is free before the answer leaves: a client that
			// sends its next request as soon as it hears this one finds
			// it free.
			<-s.slots
			if resp != nil {
				s.conn.WriteToUDPAddrPort(resp, src)
			}
		}()
	}
}

// refuse says why a packet is not served, or "" when it is: it must come
// in on the network's interface (a packet for this address that came in
// on another, the public one above all, is never answered), from an
// address of the network other than the gateway's, within the client's
// rate.
func (s *Server) refuse(src netip.Addr, cm *ipv4.ControlMessage) string {
	switch {
	case cm == nil || cm.IfIndex != s.ifindex:
		return "came in on another interface"
	case !s.prefix.Contains(src) || src == s.gw:
		return "from an address outside the network"
	case !s.rate.Allow(src, time.Now()):
		return "over the client's rate"
	}
	return ""
}

func (s *Server) drop(why string, src netip.AddrPort) {
	s.Dropped.Add(1)
	if ok, suppressed := s.dropLog.Allow(time.Now()); ok {
		s.log.Warn("NAT-PMP and PCP: request dropped", "from", src, "why", why, "droppedBefore", suppressed)
	}
}

// Close stops the server and waits for the requests in hand.
func (s *Server) Close() error {
	s.annMu.Lock()
	s.closed = true
	if s.annStop != nil {
		close(s.annStop)
		s.annStop = nil
	}
	s.annMu.Unlock()
	err := s.conn.Close()
	s.wg.Wait()
	return err
}
