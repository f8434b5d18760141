package dns

import (
	"encoding/binary"
	"time"

	"github.com/miekg/dns"
)

// The UDP fast path answers the queries that make up nearly all of a
// network's traffic (a question for a private host, or one the cache
// holds) straight from the wire bytes, without unpacking the query into a
// message or packing an answer: dnsmasq's way, and what makes a query
// cost a few microseconds. Anything out of the ordinary (an opcode other
// than QUERY, more than one question, records besides an EDNS one, a
// name with characters that need escaping, an answer that would not fit
// the client) goes to the general path, which unpacks it with miekg/dns;
// both decide with the same code (lookupLocal, the cache), so that they
// say the same.

// Header bits, in the 16-bit flags word.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagAD = 1 << 5
	flagCD = 1 << 4
)

const headerLen = 12

// optLen is the length of this server's EDNS record: the root name, type,
// class (the UDP size), TTL (extended rcode, version, flags), no data.
const optLen = 11

// wireQuery is what the fast path needs of a query.
type wireQuery struct {
	id     uint16
	flags  uint16
	qend   int // where the question ends
	name   []byte
	qtype  uint16
	qclass uint16
	edns   bool
	do     bool
	size   int // the most the answer may take over UDP
}

// parseQuery reads a query for the fast path. name is a buffer of at
// least 256 bytes for the name in presentation form (lower-case, fully
// qualified); ok is false for anything the general path must see.
func parseQuery(b []byte, name []byte) (q wireQuery, ok bool) {
	if len(b) < headerLen {
		return q, false
	}
	q.id = binary.BigEndian.Uint16(b)
	q.flags = binary.BigEndian.Uint16(b[2:])
	if q.flags&(flagQR|flagTC|0x7800) != 0 { // an answer, cut, or not QUERY
		return q, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, false
	}
	off := headerLen
	n := 0
	for {
		if off >= len(b) {
			return q, false
		}
		l := int(b[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(b) || n+l+1 > 255 {
			return q, false // a pointer, a reserved label type, or too long
		}
		for _, c := range b[off : off+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return q, false // needs escaping: the general path
			}
			name[n] = c
			n++
		}
		name[n] = '.'
		n++
		off += l
	}
	if n == 0 || off+4 > len(b) {
		return q, false // the root, or no type and class
	}
	q.name = name[:n]
	q.qtype = binary.BigEndian.Uint16(b[off:])
	q.qclass = binary.BigEndian.Uint16(b[off+2:])
	off += 4
	q.qend = off
	q.size = dns.MinMsgSize
	if ar == 1 {
		// Only an EDNS record of version 0: root name, type OPT.
		if off+optLen > len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != dns.TypeOPT {
			return q, false
		}
		udp := int(binary.BigEndian.Uint16(b[off+3:]))
		if b[off+5] != 0 || b[off+6] != 0 { // extended rcode, version
			return q, false
		}
		q.edns = true
		q.do = b[off+7]&0x80 != 0
		q.size = min(max(udp, dns.MinMsgSize), ednsSize)
		rdlen := int(binary.BigEndian.Uint16(b[off+9:]))
		off += optLen + rdlen
	}
	if off != len(b) {
		return q, false
	}
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT:
		return q, false
	}
	return q, true
}

// writeHeader starts an answer to q in out: the query's header and
// question, with flags and counts set. It returns the offset after the
// question.
func writeHeader(out, query []byte, q *wireQuery, flags uint16, an, ns, ar uint16) int {
	n := copy(out, query[:q.qend])
	// RD and CD as the client set them; RA always; the rest from flags.
	flags |= flagQR | flagRA | q.flags&(flagRD|flagCD)
	binary.BigEndian.PutUint16(out[2:], flags)
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], an)
	binary.BigEndian.PutUint16(out[8:], ns)
	binary.BigEndian.PutUint16(out[10:], ar)
	return n
}

// writeOPT appends this server's EDNS record, echoing the client's DO bit,
// when the client sent one (the caller counted it in ARCOUNT).
func writeOPT(out []byte, q *wireQuery) int {
	if !q.edns {
		return 0
	}
	out[0] = 0
	binary.BigEndian.PutUint16(out[1:], dns.TypeOPT)
	binary.BigEndian.PutUint16(out[3:], ednsSize)
	var do byte
	if q.do {
		do = 0x80
	}
	out[5], out[6], out[7], out[8] = 0, 0, do, 0
	binary.BigEndian.PutUint16(out[9:], 0)
	return optLen
}

// opts returns the ARCOUNT of this server's own records for q.
func opts(q *wireQuery) uint16 {
	if q.edns {
		return 1
	}
	return 0
}

// writeRcode writes an answer to q without records, with rcode (and AA
// when set), into out, which holds at least len(query)+optLen bytes.
func writeRcode(out, query []byte, q *wireQuery, rcode int, aa bool) int {
	flags := uint16(rcode & 0xf)
	if aa {
		flags |= flagAA
	}
	n := writeHeader(out, query, q, flags, 0, 0, opts(q))
	return n + writeOPT(out[n:], q)
}

// writeLocal writes the answer of a private name, la, to q. It returns 0
// for an answer the fast path does not write (PTR).
func writeLocal(out, query []byte, q *wireQuery, la localAnswer) int {
	switch la.kind {
	case localNXDomain:
		return writeRcode(out, query, q, dns.RcodeNameError, true)
	case localNoData:
		return writeRcode(out, query, q, dns.RcodeSuccess, true)
	case localA:
		if !la.ip.Is4() {
			return 0
		}
		n := writeHeader(out, query, q, flagAA, 1, 0, opts(q))
		// The question's name by a pointer, type A, class IN, TTL, 4 bytes.
		binary.BigEndian.PutUint16(out[n:], 0xc000|headerLen)
		binary.BigEndian.PutUint16(out[n+2:], dns.TypeA)
		binary.BigEndian.PutUint16(out[n+4:], dns.ClassINET)
		binary.BigEndian.PutUint32(out[n+6:], LocalTTL)
		binary.BigEndian.PutUint16(out[n+10:], 4)
		a := la.ip.As4()
		copy(out[n+12:], a[:])
		n += 16
		return n + writeOPT(out[n:], q)
	}
	return 0
}

// maxFastAnswer bounds an answer the fast path writes: the most any
// client is sent over UDP.
const maxFastAnswer = ednsSize

// writeCached writes the cached answer e to q, its TTLs aged to now. It
// returns 0 when the answer does not fit the client: the general path
// truncates it.
func writeCached(out, query []byte, q *wireQuery, e *cacheEntry, now time.Time) int {
	if e.qend != q.qend {
		return 0 // cannot happen for the same name; be safe
	}
	body := e.wire[e.qend:]
	total := q.qend + len(body)
	if q.edns {
		total += optLen
	}
	if total > q.size || total > len(out) {
		return 0
	}
	w := e.wire
	flags := binary.BigEndian.Uint16(w[2:]) & (flagAA | flagAD | 0xf)
	an, ns, ar := binary.BigEndian.Uint16(w[6:]), binary.BigEndian.Uint16(w[8:]), binary.BigEndian.Uint16(w[10:])
	n := writeHeader(out, query, q, flags, an, ns, ar+opts(q))
	copy(out[n:], body)
	if age := uint32(now.Sub(e.stored) / time.Second); age > 0 {
		for _, off := range e.ttls {
			ttl := binary.BigEndian.Uint32(w[off:])
			if ttl > age {
				ttl -= age
			} else {
				ttl = 0
			}
			binary.BigEndian.PutUint32(out[off:], ttl)
		}
	}
	n += len(body)
	return n + writeOPT(out[n:], q)
}

// ttlOffsets returns where the TTLs of the records of a packed message
// are, and where its question ends; ok is false for a message it cannot
// walk.
func ttlOffsets(w []byte) (ttls []uint16, qend int, ok bool) {
	if len(w) < headerLen {
		return nil, 0, false
	}
	qd := int(binary.BigEndian.Uint16(w[4:]))
	rrs := int(binary.BigEndian.Uint16(w[6:])) + int(binary.BigEndian.Uint16(w[8:])) + int(binary.BigEndian.Uint16(w[10:]))
	off := headerLen
	for range qd {
		if off = skipName(w, off); off < 0 || off+4 > len(w) {
			return nil, 0, false
		}
		off += 4
	}
	qend = off
	for range rrs {
		if off = skipName(w, off); off < 0 || off+10 > len(w) {
			return nil, 0, false
		}
		if binary.BigEndian.Uint16(w[off:]) == dns.TypeOPT {
			return nil, 0, false // the cache keeps no EDNS record
		}
		ttls = append(ttls, uint16(off+4))
		off += 10 + int(binary.BigEndian.Uint16(w[off+8:]))
		if off > len(w) {
			return nil, 0, false
		}
	}
	return ttls, qend, off == len(w)
}

// skipName returns the offset after the name at off, or -1.
func skipName(w []byte, off int) int {
	for off < len(w) {
		l := int(w[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xc0 == 0xc0:
			if off+2 > len(w) {
				return -1
			}
			return off + 2
		case l > 63:
			return -1
		}
		off += 1 + l
	}
	return -1
}
