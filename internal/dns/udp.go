package dns

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// udpServer serves a Handler on one UDP socket: a loop reads queries in
// batches and answers what it can on the spot (the fast path, wire.go);
// the rest goes to the general path, each query in a goroutine of its
// own, at most slots of them at once.
type udpServer struct {
	h     *Handler
	conn  *net.UDPConn
	slots chan struct{}
	done  chan struct{}
}

// maxQuery is the largest query read; longer ones are dropped.
const maxQuery = 4096

func newUDPServer(h *Handler, conn *net.UDPConn) *udpServer {
	return &udpServer{h: h, conn: conn, slots: make(chan struct{}, 2*h.Limits.InFlight), done: make(chan struct{})}
}

// handle answers one query, pkt from src, into out (maxFastAnswer bytes
// at least); name is a buffer of 256 bytes. n > 0 is an answer to send;
// general says pkt is for the general path, already admitted; neither
// drops it.
func (u *udpServer) handle(pkt []byte, src netip.AddrPort, out, name []byte, now time.Time) (n int, general bool) {
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
		return 0, false // a runt, or an answer: never answer an answer
	}
	h := u.h
	addr := src.Addr().Unmap()
	q, parsed := parseQuery(pkt, name)
	if !h.allowed(addr) {
		h.refuse(addr)
		if parsed {
			return writeRcode(out, pkt, &q, dns.RcodeRefused, false), false
		}
		return 0, false
	}
	if !h.admit(addr, now) {
		return 0, false
	}
	if !parsed {
		return 0, true
	}
	qname := string(q.name)
	if la := h.lookupLocal(qname, q.qtype); la.kind != notLocal {
		if n := writeLocal(out, pkt, &q, la); n > 0 {
			return n, false
		}
		return 0, true
	}
	if e := h.Cache.lookup(cacheKey{name: qname, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.flags&flagCD != 0}, now); e != nil {
		if n := writeCached(out, pkt, &q, e, now); n > 0 {
			return n, false
		}
	}
	return 0, true
}

// dispatch hands pkt (which the caller gives up) to the general path,
// or, when slots are all taken, answers SERVFAIL into out.
func (u *udpServer) dispatch(pkt []byte, src netip.AddrPort, out, name []byte) int {
	select {
	case u.slots <- struct{}{}:
		go u.general(pkt, src)
		return 0
	default:
	}
	u.h.overloaded.Add(1)
	u.h.note("DNS query answered SERVFAIL: too many queries in the general path", "limit", cap(u.slots), "source", src.Addr())
	if q, ok := parseQuery(pkt, name); ok {
		return writeRcode(out, pkt, &q, dns.RcodeServerFailure, false)
	}
	return 0
}

// general answers an admitted query with miekg/dns: unpacked, answered by
// the Handler, fit to the client, packed.
func (u *udpServer) general(pkt []byte, src netip.AddrPort) {
	defer func() { <-u.slots }()
	r := new(dns.Msg)
	var resp *dns.Msg
	if err := r.Unpack(pkt); err != nil {
		// As miekg/dns's server does: FORMERR to a query whose header
		// could be read.
		resp = new(dns.Msg)
		resp.Id = binary.BigEndian.Uint16(pkt)
		resp.Response = true
		resp.Opcode = int(pkt[2]>>3) & 0xf
		resp.Rcode = dns.RcodeFormatError
	} else if resp = u.h.respond(r, src.Addr().Unmap(), true, true); resp == nil {
		return
	}
	b, err := resp.Pack()
	if err != nil {
		if u.h.Log != nil {
			u.h.Log.Debug("packing a DNS answer", "err", err)
		}
		return
	}
	if _, err := u.conn.WriteToUDPAddrPort(b, src); err != nil && u.h.Log != nil {
		u.h.Log.Debug("writing a DNS answer", "err", err)
	}
}

// Close stops the server and waits for its loop to end.
func (u *udpServer) Close() error {
	err := u.conn.Close()
	<-u.done
	return err
}
