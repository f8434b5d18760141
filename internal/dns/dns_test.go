package dns

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

type names map[string]netip.Addr

func (n names) Lookup(label string) (netip.Addr, bool) { a, ok := n[label]; return a, ok }
func (n names) Reverse(ip netip.Addr) (string, bool) {
	for k, v := range n {
		if v == ip {
			return k, true
		}
	}
	return "", false
}
func (n names) Private(ip netip.Addr) bool {
	return netip.MustParsePrefix("192.168.137.0/24").Contains(ip)
}

// upstream runs a DNS server on loopback that knows example.test and
// counts the queries it gets.
func upstream(t testing.TB) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	var count atomic.Int32
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		count.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		switch r.Question[0].Name {
		case "example.test.":
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP("198.51.100.2")}}
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 600}, Ns: "ns.test.", Mbox: "h.test.", Minttl: 30}}
		}
		w.WriteMsg(m)
	})
	return serveUDP(t, h), &count
}

// serveUDP serves h over UDP on loopback until the test ends.
func serveUDP(t testing.TB, h dns.Handler) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// silent returns a UDP address that never answers.
func silent(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func query(t *testing.T, h *Handler, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	m := h.answer(r, false)
	if m == nil || m.Id != r.Id {
		t.Fatalf("%s: answer %v", name, m)
	}
	return m
}

func newHandler(t testing.TB, ups ...netip.AddrPort) *Handler {
	return &Handler{
		Domain:    "home.arpa",
		Names:     names{"nas": netip.MustParseAddr("192.168.137.57"), "printer": netip.MustParseAddr("192.168.137.50")},
		Upstreams: ups,
		Timeout:   300 * time.Millisecond,
		Cache:     NewCache(1 << 20),
	}
}

func TestLocalNames(t *testing.T) {
	h := newHandler(t)
	for _, name := range []string{"nas.", "NAS.home.arpa.", "nas.home.arpa."} {
		m := query(t, h, name, dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.168.137.57" || m.Answer[0].Header().Ttl != LocalTTL {
			t.Errorf("%s: %v", name, m)
		}
	}
	if m := query(t, h, "nobody.home.arpa.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("unknown private name: %s", dns.RcodeToString[m.Rcode])
	}

	if m := query(t, h, "nas.home.arpa.", dns.TypeAAAA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("AAAA of a private host: %v", m)
	}
	m := query(t, h, "50.137.168.192.in-addr.arpa.", dns.TypePTR)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.PTR).Ptr != "printer.home.arpa." {
		t.Errorf("PTR: %v", m)
	}
	if m := query(t, h, "99.137.168.192.in-addr.arpa.", dns.TypePTR); m.Rcode != dns.RcodeNameError {
		t.Errorf("PTR of an unknown private address: %s", dns.RcodeToString[m.Rcode])
	}
}

func TestForwardAndCache(t *testing.T) {
	up, count := upstream(t)
	h := newHandler(t, silent(t), up) // the first upstream fails over to the second
	m := query(t, h, "example.test.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "198.51.100.2" {
		t.Fatalf("forwarded: %v", m)
	}
	query(t, h, "example.test.", dns.TypeA)
	if n := count.Load(); n != 1 {
		t.Fatalf("upstream asked %d times, want 1 (cached)", n)
	}
	// Negative answers are cached by the SOA's minimum.
	if m := query(t, h, "gone.test.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Fatalf("NXDOMAIN upstream: %v", m)
	}
	query(t, h, "gone.test.", dns.TypeA)
	if n := count.Load(); n != 2 {
		t.Fatalf("upstream asked %d times, want 2", n)
	}
	// A non-private PTR goes upstream.
	query(t, h, "2.100.51.198.in-addr.arpa.", dns.TypePTR)
	if n := count.Load(); n != 3 {
		t.Fatalf("upstream asked %d times, want 3", n)
	}
}

// aAnswer is an upstream's answer to name A: one address, TTL ttl.
func aAnswer(name string, ttl uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.ParseIP("198.51.100.2")}}
	return m
}

func TestCacheTTL(t *testing.T) {
	c := NewCache(2600) // about ten small answers
	m := aAnswer("example.test.", 100)
	k := cacheKey{name: "example.test.", qtype: dns.TypeA, qclass: dns.ClassINET}
	t0 := time.Unix(1000, 0)
	c.put(k, m, t0)
	if got := c.get(k, t0.Add(40*time.Second)); got == nil || got.Answer[0].Header().Ttl != 60 {
		t.Fatalf("after 40 s: %v, want TTL 60", got)
	}
	if got := c.get(k, t0.Add(100*time.Second)); got != nil {
		t.Fatal("served after the TTL ran out")
	}
	// A full cache keeps its bound, and drops the least recently used.
	key := func(i int) cacheKey {
		return cacheKey{name: fmt.Sprintf("n%d.test.", i), qtype: dns.TypeA, qclass: dns.ClassINET}
	}
	for i := range 50 {
		c.put(key(i), aAnswer(key(i).name, 100), t0)
		c.get(key(0), t0) // n0 is used all along
	}
	if c.Bytes() > 2600 || c.Len() > 10 || c.Len() < 5 {
		t.Fatalf("cache holds %d answers in %d bytes, bound 2600", c.Len(), c.Bytes())
	}
	if c.get(key(0), t0) == nil || c.get(key(1), t0) != nil {
		t.Fatal("the cache did not keep the answer in use and drop the old ones")
	}
	// An answer to another question than its key's is not kept.
	c.put(key(100), aAnswer("other.test.", 100), t0)
	if c.get(key(100), t0) != nil {
		t.Fatal("the cache kept an answer under another name")
	}
	c.Flush()
	if c.Len() != 0 || c.Bytes() != 0 || c.get(key(0), t0) != nil {
		t.Fatal("Flush left answers")
	}
}

func TestUpstreamFailureIsQuick(t *testing.T) {
	h := newHandler(t, silent(t))
	start := time.Now()
	m := query(t, h, "example.test.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	// One timeout of 300 ms, with a wide margin for a busy machine.
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("SERVFAIL after %v", d)
	}
	if m := query(t, newHandler(t), "example.test.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("no upstreams: %s", dns.RcodeToString[m.Rcode])
	}
}

func TestServeUDPAndTCP(t *testing.T) {
	up, _ := upstream(t)
	h := newHandler(t, up)
	// Port 0 is not allowed by Serve's callers; pick free ports.
	addr := freePort(t)
	s, err := Serve(h, []netip.AddrPort{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		r := new(dns.Msg)
		r.SetQuestion("nas.home.arpa.", dns.TypeA)
		m, _, err := c.Exchange(r, addr.String())
		if err != nil || len(m.Answer) != 1 {
			t.Fatalf("%s: %v %v", network, m, err)
		}
		r.SetQuestion("example.test.", dns.TypeA)
		if m, _, err := c.Exchange(r, addr.String()); err != nil || len(m.Answer) != 1 {
			t.Fatalf("%s forwarded: %v %v", network, m, err)
		}
	}
}

func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := netip.MustParseAddrPort(l.Addr().String())
		l.Close()
		if pc, err := net.ListenPacket("udp", a.String()); err == nil {
			pc.Close()
			return a
		}
	}
	t.Fatal("no free port")
	return netip.AddrPort{}
}

// FuzzAnswer feeds the handler whatever unpacks as a DNS message: it must
// never panic, and its answer must pack.
func FuzzAnswer(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"nas.", dns.TypeA}, {"nas.home.arpa.", dns.TypeAAAA}, {"57.137.168.192.in-addr.arpa.", dns.TypePTR}, {"example.test.", dns.TypeMX}, {".", dns.TypeNS}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		b, _ := m.Pack()
		f.Add(b)
	}
	h := &Handler{Domain: "home.arpa", Names: names{"nas": netip.MustParseAddr("192.168.137.57")}, Cache: NewCache(10)}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil {
			return
		}
		if m := h.answer(r, false); m != nil {
			m.Pack() // may fail for names the query could not have; must not panic
		}
	})
}

// TestSingleLabelsGoUpstream checks that only a private host's bare name
// is answered here: every other single-label question (com. DS, test. NS,
// an unknown bare name) goes upstream, or DNSSEC validation behind the
// gateway breaks.
func TestSingleLabelsGoUpstream(t *testing.T) {
	up, count := upstream(t)
	h := newHandler(t, up)
	for _, q := range []struct {
		name  string
		qtype uint16
		local bool
	}{
		{"nas.", dns.TypeA, true},
		{"nas.", dns.TypeAAAA, true},
		{"nas.", dns.TypeDS, false},
		{"com.", dns.TypeDS, false},
		{"test.", dns.TypeNS, false},
		{"nobody.", dns.TypeA, false},
	} {
		before := count.Load()
		m := query(t, h, q.name, q.qtype)
		asked := count.Load() > before
		if asked == q.local || m.Authoritative != q.local {
			t.Errorf("%s %s: upstream asked %v, authoritative %v; want local %v", q.name, dns.TypeToString[q.qtype], asked, m.Authoritative, q.local)
		}
	}
}

// TestUpstreamQuery checks what goes upstream: the client's question, RD
// and CD, this server's EDNS size and the client's DO, nothing else; and
// that DO and CD queries are cached apart.
func TestUpstreamQuery(t *testing.T) {
	var mu sync.Mutex
	var seen []*dns.Msg
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		seen = append(seen, r.Copy())
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP("198.51.100.2")}}
		w.WriteMsg(m)
	})
	fwd := newHandler(t, serveUDP(t, h))
	for _, c := range []struct{ do, cd bool }{{false, false}, {true, false}, {true, true}, {true, true}} {
		r := new(dns.Msg)
		r.SetQuestion("example.test.", dns.TypeA)
		r.SetEdns0(4096, c.do)
		r.IsEdns0().Option = append(r.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
		r.CheckingDisabled = c.cd
		if m := fwd.answer(r, false); m == nil || len(m.Answer) != 1 || !m.RecursionAvailable {
			t.Fatalf("answer %v", m)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("upstream asked %d times, want 3 (the last query from the cache)", len(seen))
	}
	for i, q := range seen {
		opt := q.IsEdns0()
		if opt == nil || opt.UDPSize() != ednsSize || opt.Do() != (i > 0) || q.CheckingDisabled != (i == 2) || len(opt.Option) != 0 || !q.RecursionDesired {
			t.Errorf("upstream query %d: %v", i, q)
		}
	}
}

// BenchmarkCachePut inserts into full caches of different sizes: the cost
// of an insert, with its eviction, must not grow with the size.
func BenchmarkCachePut(b *testing.B) {
	t0 := time.Unix(1000, 0)
	names := make([]string, 1<<20)
	msgs := make([]*dns.Msg, len(names))
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example.test.", i)
		msgs[i] = aAnswer(names[i], 300)
	}
	for _, size := range []int{1 << 20, 16 << 20, 128 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			c := NewCache(size)
			for i := 0; c.Bytes() < size*9/10 && i < 4*len(names); i++ { // fill it
				c.put(cacheKey{name: names[i%len(names)], qtype: uint16(1 + i/len(names)), qclass: dns.ClassINET}, msgs[i%len(names)], t0)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				c.put(cacheKey{name: names[i%len(names)], qtype: dns.TypeAAAA, qclass: dns.ClassINET}, msgs[i%len(names)], t0)
			}
		})
	}
}
