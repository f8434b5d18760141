package dns

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fastServer is a udpServer on no socket, for calling handle directly.
func fastServer(t testing.TB, h *Handler) *udpServer {
	t.Helper()
	h.init()
	return newUDPServer(h, nil)
}

// sameAnswer reports how a and b differ, as a client sees them. Names
// compare as DNS compares them, whatever their case: the fast path names
// the records of a cached answer as the client wrote the question.
func sameAnswer(a, b *dns.Msg) error {
	if a.MsgHdr != b.MsgHdr {
		return fmt.Errorf("header %+v, want %+v", a.MsgHdr, b.MsgHdr)
	}
	for _, sec := range []struct {
		name string
		a, b []dns.RR
	}{{"answer", a.Answer, b.Answer}, {"authority", a.Ns, b.Ns}, {"additional", a.Extra, b.Extra}} {
		if !strings.EqualFold(fmt.Sprint(sec.a), fmt.Sprint(sec.b)) {
			return fmt.Errorf("%s %v, want %v", sec.name, sec.a, sec.b)
		}
	}
	if fmt.Sprint(a.Question) != fmt.Sprint(b.Question) {
		return fmt.Errorf("question %v, want %v", a.Question, b.Question)
	}
	return nil
}

// TestFastPathAnswersAsTheGeneralPath asks the same questions of the UDP
// fast path (wire bytes in, wire bytes out) and of the general path
// (miekg/dns): the answers must be the same, record for record, and the
// common questions must take the fast path.
func TestFastPathAnswersAsTheGeneralPath(t *testing.T) {
	up, count := upstream(t)
	h := newHandler(t, up)
	u := fastServer(t, h)
	src := netip.MustParseAddrPort("192.168.137.20:40000")
	t0 := time.Now()
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
		edns  uint16 // 0: none
		do    bool
		cd    bool
		norec bool
		fast  bool // answered on the fast path
	}{
		{"private host", "nas.home.arpa.", dns.TypeA, 0, false, false, false, true},
		{"private host, bare name", "nas.", dns.TypeA, 0, false, false, false, true},
		{"private host, upper case", "NaS.Home.ARPA.", dns.TypeA, 1232, false, false, false, true},
		{"private host, EDNS and DO", "nas.home.arpa.", dns.TypeA, 4096, true, false, false, true},
		{"private host, no recursion", "nas.home.arpa.", dns.TypeA, 0, false, false, true, true},
		{"private host, ANY", "nas.home.arpa.", dns.TypeANY, 0, false, false, false, true},
		{"private host, AAAA", "nas.home.arpa.", dns.TypeAAAA, 1232, false, false, false, true},
		{"private host, MX", "nas.home.arpa.", dns.TypeMX, 0, false, false, false, true},
		{"unknown private name", "nobody.home.arpa.", dns.TypeA, 0, false, false, false, true},
		{"two labels under the domain", "a.nas.home.arpa.", dns.TypeA, 0, false, false, false, true},
		{"the domain itself", "home.arpa.", dns.TypeSOA, 0, false, false, false, true},
		{"private reverse name", "57.137.168.192.in-addr.arpa.", dns.TypePTR, 0, false, false, false, false},
		{"cached upstream name", "example.test.", dns.TypeA, 0, false, false, false, true},
		{"cached upstream name, EDNS", "example.test.", dns.TypeA, 1232, false, false, false, true},
		{"cached upstream name, CD", "example.test.", dns.TypeA, 1232, true, true, false, true},
		{"cached negative answer", "gone.test.", dns.TypeA, 0, false, false, false, true},
		{"cached, mixed case", "ExAmple.TEST.", dns.TypeA, 0, false, false, false, true},
		{"cached, no recursion asked", "example.test.", dns.TypeA, 0, false, false, true, true},
		{"a name to escape", "we\\ ird.test.", dns.TypeA, 0, false, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion(tc.qname, tc.qtype)
			q.RecursionDesired = !tc.norec
			q.CheckingDisabled = tc.cd
			if tc.edns != 0 {
				q.SetEdns0(tc.edns, tc.do)
			}
			pkt, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			// The general path answers first: it fills the cache.
			r := new(dns.Msg)
			if err := r.Unpack(pkt); err != nil {
				t.Fatal(err)
			}
			want := h.respond(r, src.Addr(), true, true)
			if want == nil {
				t.Fatal("the general path gave no answer")
			}
			// What the client would receive from it: packed, unpacked.
			wb, err := want.Pack()
			if err != nil {
				t.Fatal(err)
			}
			want = new(dns.Msg)
			want.Unpack(wb)

			out := make([]byte, maxFastAnswer)
			n, general := u.handle(pkt, src, out, make([]byte, 256), t0)
			if general || n == 0 {
				if tc.fast {
					t.Fatalf("the fast path passed it on (n %d, general %v)", n, general)
				}
				return
			}
			if !tc.fast {
				t.Fatal("the fast path answered a question it should pass on")
			}
			got := new(dns.Msg)
			if err := got.Unpack(out[:n]); err != nil {
				t.Fatalf("the fast path's answer does not unpack: %v", err)
			}
			if err := sameAnswer(got, want); err != nil {
				t.Fatalf("fast path: %v\ngot:\n%v\nwant:\n%v", err, got, want)
			}
		})
	}
	if n := count.Load(); n != 4 { // example.test (without and with DO, CD), gone.test, we\ ird.test
		t.Errorf("the upstream was asked %d times, want 4", n)
	}
}

// TestFastPathAgesCachedAnswers: the TTLs of a cached answer count down on
// the fast path, to zero at most, and it expires with its TTL.
func TestFastPathAgesCachedAnswers(t *testing.T) {
	h := newHandler(t)
	u := fastServer(t, h)
	t0 := time.Now()
	h.Cache.put(cacheKey{name: "example.test.", qtype: dns.TypeA, qclass: dns.ClassINET}, aAnswer("example.test.", 100), t0)
	q := new(dns.Msg)
	q.SetQuestion("example.test.", dns.TypeA)
	pkt, _ := q.Pack()
	src := netip.MustParseAddrPort("192.168.137.20:40000")
	for _, tc := range []struct {
		after time.Duration
		ttl   uint32 // 0: not answered here
	}{{0, 100}, {40 * time.Second, 60}, {99 * time.Second, 1}, {100 * time.Second, 0}} {
		out := make([]byte, maxFastAnswer)
		n, general := u.handle(pkt, src, out, make([]byte, 256), t0.Add(tc.after))
		if tc.ttl == 0 {
			if n != 0 || !general {
				t.Errorf("after %v: answered from an expired entry", tc.after)
			}
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(out[:n]); err != nil || len(m.Answer) != 1 {
			t.Fatalf("after %v: %v %v", tc.after, m, err)
		}
		if got := m.Answer[0].Header().Ttl; got != tc.ttl {
			t.Errorf("after %v: TTL %d, want %d", tc.after, got, tc.ttl)
		}
	}
}

// TestFastPathGates: sources outside the private networks are refused on
// the fast path too, answers are never answered, and the rate per client
// holds.
func TestFastPathGates(t *testing.T) {
	h := newHandler(t)
	h.Limits.PerClient.Rate, h.Limits.PerClient.Burst = 1, 3
	u := fastServer(t, h)
	q := new(dns.Msg)
	q.SetQuestion("nas.home.arpa.", dns.TypeA)
	pkt, _ := q.Pack()
	out, name := make([]byte, maxFastAnswer), make([]byte, 256)
	now := time.Now()

	n, general := u.handle(pkt, netip.MustParseAddrPort("203.0.113.9:53"), out, name, now)
	m := new(dns.Msg)
	if general || n == 0 || m.Unpack(out[:n]) != nil || m.Rcode != dns.RcodeRefused || len(m.Answer) != 0 {
		t.Errorf("from outside: %v (general %v)", m, general)
	}
	q.Response = true
	answer, _ := q.Pack()
	if n, general := u.handle(answer, netip.MustParseAddrPort("192.168.137.20:53"), out, name, now); n != 0 || general {
		t.Error("an answer was answered")
	}
	answered := 0
	for range 10 {
		if n, _ := u.handle(pkt, netip.MustParseAddrPort("192.168.137.20:40000"), out, name, now); n > 0 {
			answered++
		}
	}
	if answered != 3 {
		t.Errorf("%d of 10 queries at once answered, want the burst of 3", answered)
	}
	if s := h.Stats(); s.Refused != 1 || s.RateLimited != 7 {
		t.Errorf("stats %+v", s)
	}
}

// FuzzFastPath feeds the fast path any bytes: it must never panic, and
// what it answers must unpack, answer the query's ID and fit the client.
func FuzzFastPath(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  uint16
	}{{"nas.", dns.TypeA, 0}, {"nas.home.arpa.", dns.TypeAAAA, 1232}, {"example.test.", dns.TypeA, 4096}, {"gone.test.", dns.TypeMX, 0}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns != 0 {
			m.SetEdns0(q.edns, true)
		}
		b, _ := m.Pack()
		f.Add(b)
	}
	h := &Handler{Domain: "home.arpa", Names: names{"nas": netip.MustParseAddr("192.168.137.57")}, Cache: NewCache(1 << 20)}
	t0 := time.Now()
	h.Cache.put(cacheKey{name: "example.test.", qtype: dns.TypeA, qclass: dns.ClassINET}, aAnswer("example.test.", 100), t0)
	u := fastServer(f, h)
	out, name := make([]byte, maxFastAnswer), make([]byte, 256)
	src := netip.AddrPortFrom(netip.MustParseAddr("192.168.137.20"), 40000)
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _ := u.handle(data, src, out, name, t0)
		if n == 0 {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(out[:n]); err != nil {
			t.Fatalf("answer does not unpack: %v", err)
		}
		if !m.Response || m.Id != uint16(data[0])<<8|uint16(data[1]) {
			t.Fatalf("answer %v to query %x", m, data)
		}
		limit := dns.MinMsgSize
		if r := new(dns.Msg); r.Unpack(data) == nil {
			if opt := r.IsEdns0(); opt != nil {
				limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), ednsSize)
			}
		}
		if n > limit {
			t.Fatalf("%d bytes to a client that takes %d", n, limit)
		}
	})
}

// BenchmarkFastPath answers a private name and a cached upstream name on
// the fast path, as the UDP loop does for each query.
func BenchmarkFastPath(b *testing.B) {
	up, _ := upstream(b)
	h := newHandler(b, up)
	h.Limits.PerClient.Rate, h.Limits.PerClient.Burst = 1e12, 1e12 // measure the answer, not the rate
	u := fastServer(b, h)
	src := netip.MustParseAddrPort("192.168.137.20:40000")
	for _, q := range []struct{ name, qname string }{{"private", "nas.home.arpa."}, {"cached", "example.test."}} {
		b.Run(q.name, func(b *testing.B) {
			r := new(dns.Msg)
			r.SetQuestion(q.qname, dns.TypeA)
			r.SetEdns0(1232, false)
			h.ServeDNS(&recorder{src: &net.UDPAddr{IP: net.ParseIP("192.168.137.20"), Port: 40000}}, r) // fills the cache
			pkt, _ := r.Pack()
			out, name := make([]byte, maxFastAnswer), make([]byte, 256)
			b.ReportAllocs()
			for b.Loop() {
				if n, _ := u.handle(pkt, src, out, name, time.Now()); n == 0 {
					b.Fatal("not answered on the fast path")
				}
			}
		})
	}
}
