package dns

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// A forwarder asks the upstream servers over a few UDP sockets that it
// keeps, each connected to one upstream from a port the kernel picks at
// random, and matches each answer to its query by ID and question. A
// socket is opened per query no more (which cost a forwarded query more
// than all the rest of its work); a query still takes a random ID on one
// of several random ports, and a socket serves socketUses queries at most
// and closes when idle for socketIdle, so its port changes often and an
// idle forwarder holds nothing.
type forwarder struct {
	mu    sync.Mutex
	socks map[netip.AddrPort][]*upSocket
}

const (
	socketsPerUpstream = 8
	socketUses         = 4096
	socketIdle         = 10 * time.Second
)

// upSocket is one socket to one upstream and the queries waiting on it.
type upSocket struct {
	f    *forwarder
	up   netip.AddrPort
	conn *net.UDPConn

	mu      sync.Mutex
	pending map[uint16]*waiter
	uses    int
	retired bool // out of the pool: closes once nothing waits on it
	closed  bool
}

type waiter struct {
	q    dns.Question
	done chan upAnswer // buffered: the reader never blocks
}

type upAnswer struct {
	m   *dns.Msg
	err error
}

// errUpstreamTimeout says an upstream did not answer in time.
var errUpstreamTimeout = errors.New("no answer in time")

// exchange sends m (one question) to up and waits for its answer, at most
// timeout. m's ID is set here.
func (f *forwarder) exchange(up netip.AddrPort, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	s, w, err := f.register(up, m)
	if err != nil {
		return nil, err
	}
	b, err := m.Pack()
	if err == nil {
		_, err = s.conn.Write(b)
	}
	if err != nil {
		s.forget(m.Id)
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-w.done:
		return a.m, a.err
	case <-t.C:
		s.forget(m.Id)
		return nil, fmt.Errorf("%s: %w (%v)", up, errUpstreamTimeout, timeout)
	}
}

// register picks a socket to up (opening one while the pool is short) and
// a free random ID on it for m.
func (f *forwarder) register(up netip.AddrPort, m *dns.Msg) (*upSocket, *waiter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.socks == nil {
		f.socks = map[netip.AddrPort][]*upSocket{}
	}
	pool := f.socks[up]
	var s *upSocket
	if len(pool) < socketsPerUpstream {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(up))
		if err != nil {
			return nil, nil, err
		}
		s = &upSocket{f: f, up: up, conn: conn, pending: map[uint16]*waiter{}}
		f.socks[up] = append(pool, s)
		go s.read()
	} else {
		s = pool[rand.N(len(pool))]
	}
	w := &waiter{q: m.Question[0], done: make(chan upAnswer, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		m.Id = uint16(rand.Uint32())
		if _, taken := s.pending[m.Id]; !taken {
			break
		}
	}
	s.pending[m.Id] = w
	if s.uses++; s.uses >= socketUses {
		f.dropLocked(s)
	}
	return s, w, nil
}

// dropLocked takes s out of the pool; f.mu and s.mu are held.
func (f *forwarder) dropLocked(s *upSocket) {
	s.retired = true
	pool := f.socks[s.up]
	for i, p := range pool {
		if p == s {
			f.socks[s.up] = append(pool[:i:i], pool[i+1:]...)
			break
		}
	}
}

// forget gives up on the query id.
func (s *upSocket) forget(id uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, id)
	s.closeIfDoneLocked()
}

// closeIfDoneLocked closes a retired socket that nothing waits on.
func (s *upSocket) closeIfDoneLocked() {
	if s.retired && len(s.pending) == 0 && !s.closed {
		s.closed = true
		s.conn.Close()
	}
}

// read hands each answer to its waiter until the socket closes, and
// closes it when nothing has waited on it for socketIdle.
func (s *upSocket) read() {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		s.conn.SetReadDeadline(time.Now().Add(socketIdle))
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				s.f.mu.Lock()
				s.mu.Lock()
				if len(s.pending) == 0 {
					s.f.dropLocked(s)
					s.closeIfDoneLocked()
				}
				s.mu.Unlock()
				s.f.mu.Unlock()
			case errors.Is(err, net.ErrClosed):
				s.failAll(err)
				return
			default:
				// The upstream refused (an ICMP error): every query
				// waiting on this socket went to it. The socket is done
				// with; the next query opens another.
				s.f.mu.Lock()
				s.mu.Lock()
				s.f.dropLocked(s)
				s.mu.Unlock()
				s.f.mu.Unlock()
				s.failAll(fmt.Errorf("%s: %w", s.up, err))
			}
			continue
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil || !m.Response || len(m.Question) != 1 {
			continue
		}
		s.mu.Lock()
		w := s.pending[m.Id]
		if w != nil && sameQuestion(w.q, m.Question[0]) {
			delete(s.pending, m.Id)
		} else {
			w = nil // not an answer to what was asked: ignored
		}
		s.closeIfDoneLocked()
		s.mu.Unlock()
		if w != nil {
			w.done <- upAnswer{m: m}
		}
	}
}

// failAll ends every query waiting on s with err.
func (s *upSocket) failAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.pending {
		delete(s.pending, id)
		w.done <- upAnswer{err: err}
	}
	s.closeIfDoneLocked()
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
