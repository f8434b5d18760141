// Package connlimit bounds the connections a listener holds: in all, by
// accepting no more until one ends (the rest wait in the kernel's backlog,
// holding no descriptor of ours), and per source address, by closing the
// excess at once, so that one client cannot take every slot.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener with limits.
type Listener struct {
	net.Listener
	perSource int

	slots   chan struct{}
	done    chan struct{}
	closing sync.Once

	mu       sync.Mutex
	bySource map[netip.Addr]int

	refused atomic.Uint64
}

// New wraps ln: at most total connections open at once, at most
// perSource from one address (connections without an IP address, such as
// a unix socket's, count as one source).
func New(ln net.Listener, total, perSource int) *Listener {
	return &Listener{
		Listener: ln, perSource: perSource,
		slots: make(chan struct{}, total), done: make(chan struct{}),
		bySource: map[netip.Addr]int{},
	}
}

// Accept waits for a free slot, then for a connection from a source under
// its limit.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		src := sourceOf(c.RemoteAddr())
		l.mu.Lock()
		if l.bySource[src] >= l.perSource {
			l.mu.Unlock()
			// Counted before the close, so that whoever sees the close
			// sees the count.
			l.refused.Add(1)
			c.Close()
			<-l.slots
			continue
		}
		l.bySource[src]++
		l.mu.Unlock()
		return &conn{Conn: c, l: l, src: src}, nil
	}
}

// Close closes the listener; connections already accepted stay open.
func (l *Listener) Close() error {
	l.closing.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Refused returns how many connections were closed for their source's
// limit.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open returns how many connections are open.
func (l *Listener) Open() int { return len(l.slots) }

func sourceOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

type conn struct {
	net.Conn
	l    *Listener
	src  netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.bySource[c.src]--; c.l.bySource[c.src] <= 0 {
			delete(c.l.bySource, c.src)
		}
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}
