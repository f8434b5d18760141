package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// Upstream names the lab's DNS server on the wan host knows.
var Upstream = map[string]netip.Addr{
	"example.test.":     netip.MustParseAddr(WANHost),
	"www.example.test.": netip.MustParseAddr(WANHost),
}

// BigName has an answer of about 43 KB on the wan host's DNS server: the
// name of the amplification tests.
const BigName = "big.example.test."

// ServeDNS runs a small authoritative DNS server for the names of
// Upstream, and BigName, on port 53 of every address, UDP and TCP, until
// ctx is done.
func ServeDNS(ctx context.Context) error {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) == 1 {
			q := r.Question[0]
			if q.Name == BigName {
				// 200 TXT records, about 43 KB: cut to the asker's size
				// over UDP, in full over TCP, as real servers do.
				for i := range 200 {
					m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 120},
						Txt: []string{fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 200))}})
				}
			} else if a, ok := Upstream[q.Name]; ok {
				if q.Qtype == dns.TypeA {
					m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: a.AsSlice()}}
				}
			} else {
				m.Rcode = dns.RcodeNameError
			}
		}
		writeSized(w, r, m)
	})
	return serveDNS(ctx, ":53", h)
}

// writeSized writes m, cut to the asker's size over UDP, as real servers
// do.
func writeSized(w dns.ResponseWriter, r, m *dns.Msg) {
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if w.RemoteAddr().Network() == "udp" {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// serveDNS serves h on addr, UDP and TCP, until ctx is done.
func serveDNS(ctx context.Context, addr string, h dns.Handler) error {
	errc := make(chan error, 2)
	var servers []*dns.Server
	for _, network := range []string{"udp", "tcp"} {
		s := &dns.Server{Addr: addr, Net: network, Handler: h}
		servers = append(servers, s)
		go func() { errc <- s.ListenAndServe() }()
	}
	select {
	case <-ctx.Done():
		for _, s := range servers {
			s.Shutdown()
		}
		return nil
	case err := <-errc:
		return err
	}
}

// signatures returns the RRSIGs among rrs that cover typ.
func signatures(rrs []dns.RR, typ uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == typ {
			out = append(out, rr)
		}
	}
	return out
}

// ServeZone serves the records of a zone file (a signed one, for the
// DNSSEC tests) authoritatively on addr, UDP and TCP, until ctx is done:
// the RRset asked for, with the RRSIGs that cover it when the query has
// the DO bit; NODATA (with its NSEC proof under DO) or NXDOMAIN with the
// SOA otherwise.
func ServeZone(ctx context.Context, addr, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	byName := map[string][]dns.RR{}
	var soa dns.RR
	zp := dns.NewZoneParser(f, "", file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		byName[name] = append(byName[name], rr)
		if rr.Header().Rrtype == dns.TypeSOA {
			soa = rr
		}
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if soa == nil {
		return fmt.Errorf("%s: no SOA record", file)
	}
	origin := strings.ToLower(soa.Header().Name)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			w.WriteMsg(m)
			return
		}
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		if !dns.IsSubDomain(origin, name) {
			m.Rcode = dns.RcodeRefused
			w.WriteMsg(m)
			return
		}
		m.Authoritative = true
		do := r.IsEdns0() != nil && r.IsEdns0().Do()
		rrs, found := byName[name]
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			} else if sig, ok := rr.(*dns.RRSIG); ok && do && sig.TypeCovered == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if len(m.Answer) == 0 {
			if !found {
				m.Rcode = dns.RcodeNameError
			}
			m.Ns = []dns.RR{soa}
			if do {
				// The proof: the SOA's signature and, for a name that
				// exists, its NSEC (which types it has) and the NSEC's
				// signature.
				m.Ns = append(m.Ns, signatures(byName[origin], dns.TypeSOA)...)
				for _, rr := range rrs {
					if rr.Header().Rrtype == dns.TypeNSEC {
						m.Ns = append(m.Ns, rr)
					}
				}
				m.Ns = append(m.Ns, signatures(rrs, dns.TypeNSEC)...)
			}
		}
		writeSized(w, r, m)
	})
	return serveDNS(ctx, addr, h)
}
