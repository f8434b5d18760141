package dns

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/netshare/netshare/internal/ratelimit"
)

// recorder is a dns.ResponseWriter from a given source that keeps what
// is written.
type recorder struct {
	src net.Addr
	msg *dns.Msg
}

func (r *recorder) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(192, 168, 137, 1), Port: 53}
}
func (r *recorder) RemoteAddr() net.Addr        { return r.src }
func (r *recorder) WriteMsg(m *dns.Msg) error   { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}

func ask(h *Handler, src string, name string, qtype uint16) *dns.Msg {
	w := &recorder{src: &net.UDPAddr{IP: net.ParseIP(src), Port: 40000}}
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	h.ServeDNS(w, r)
	return w.msg
}

// TestOnlyPrivateSources replays the open resolver: with the public
// firewall off, a query from the Internet got an answer, private names
// included. Only the private networks (and the gateway itself) are
// answered; the rest get REFUSED and learn nothing.
func TestOnlyPrivateSources(t *testing.T) {
	up, count := upstream(t)
	h := newHandler(t, up)
	for _, tc := range []struct {
		src, name string
		rcode     int
	}{
		{"203.0.113.9", "example.test.", dns.RcodeRefused},
		{"203.0.113.9", "nas.home.arpa.", dns.RcodeRefused},
		{"2001:db8::9", "nas.", dns.RcodeRefused},
		{"10.0.0.9", "nas.", dns.RcodeRefused},
		{"192.168.137.20", "nas.home.arpa.", dns.RcodeSuccess},
		{"192.168.137.20", "example.test.", dns.RcodeSuccess},
		{"127.0.0.1", "nas.", dns.RcodeSuccess},
	} {
		t.Run(tc.src+" "+tc.name, func(t *testing.T) {
			m := ask(h, tc.src, tc.name, dns.TypeA)
			if m == nil || m.Rcode != tc.rcode {
				t.Fatalf("answer %v, want %s", m, dns.RcodeToString[tc.rcode])
			}
			if tc.rcode == dns.RcodeRefused && len(m.Answer) != 0 {
				t.Fatalf("a refused answer carries records: %v", m)
			}
		})
	}
	if got := h.Stats().Refused; got != 4 {
		t.Errorf("refused %d, want 4", got)
	}
	if n := count.Load(); n != 1 {
		t.Errorf("the upstream was asked %d times, want once (for the private client)", n)
	}
}

// bigUpstream answers every query with 200 TXT records, about 45 KB, as
// the name in the amplification report did: in full over TCP, cut to the
// asker's size over UDP, as a real server does.
func bigUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for i := range 200 {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
				Txt: []string{fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 200))}})
		}
		if w.RemoteAddr().Network() == "udp" {
			size := dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	})
	addr := freePort(t)
	var wg sync.WaitGroup
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr.String(), Net: network, Handler: h}
		wg.Add(1)
		srv.NotifyStartedFunc = wg.Done
		go srv.ListenAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	wg.Wait()
	return addr
}

// TestAnswersFitTheClient replays the amplification: a 35-byte query got
// a 45,835-byte answer over UDP. UDP answers now fit 512 bytes, or the
// size the client's EDNS record offers (at most 1,232), with TC set, from
// the cache too; over TCP the whole answer comes.
func TestAnswersFitTheClient(t *testing.T) {
	h := newHandler(t, bigUpstream(t))
	addr := freePort(t)
	s, err := Serve(h, []netip.AddrPort{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name  string
		edns  uint16 // 0: no EDNS
		net   string
		limit int
	}{
		{"no EDNS", 0, "udp", 512},
		{"EDNS 1232", 1232, "udp", 1232},
		{"EDNS 4096", 4096, "udp", 1232},
		{"EDNS 100", 100, "udp", 512},
		{"again from the cache", 0, "udp", 512},
		{"TCP", 0, "tcp", 65535},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := new(dns.Msg)
			r.SetQuestion("big.example.test.", dns.TypeTXT)
			if tc.edns > 0 {
				r.SetEdns0(tc.edns, true)
			}
			q, _ := r.Pack()
			conn, err := net.Dial(tc.net, addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c := &dns.Conn{Conn: conn, UDPSize: 65535}
			if err := c.WriteMsg(r); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			raw, err := c.ReadMsgHeader(nil)
			if err != nil {
				t.Fatal(err)
			}
			m := new(dns.Msg)
			if err := m.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			t.Logf("query %d bytes, answer %d bytes, %d records, TC %v", len(q), len(raw), len(m.Answer), m.Truncated)
			if len(raw) > tc.limit {
				t.Fatalf("answer of %d bytes to a client limited to %d", len(raw), tc.limit)
			}
			if tc.net == "udp" && !m.Truncated {
				t.Fatal("a cut answer without TC: the client would not ask again over TCP")
			}
			if tc.net == "tcp" && (m.Truncated || len(m.Answer) != 200) {
				t.Fatalf("over TCP: %d records, TC %v; want all 200", len(m.Answer), m.Truncated)
			}
			if opt := m.IsEdns0(); (opt != nil) != (tc.edns > 0) || (opt != nil && (opt.UDPSize() != ednsSize || !opt.Do())) {
				t.Fatalf("the answer's EDNS record %v does not answer the client's (%d)", opt, tc.edns)
			}
		})
	}
	if h.Stats().Truncated < 5 {
		t.Errorf("truncated %d answers, want 5", h.Stats().Truncated)
	}
}

// TestForwardedQueriesBounded replays the storm with slow upstreams: every
// query waited on the upstream, until the daemon ran out of descriptors.
// Now at most InFlight wait; the rest get SERVFAIL at once.
func TestForwardedQueriesBounded(t *testing.T) {
	h := newHandler(t, silent(t))
	h.Limits = Limits{InFlight: 8}
	h.Timeout = 2 * time.Second
	goroutines := runtime.NumGoroutine()
	var wg sync.WaitGroup
	var mu sync.Mutex
	rcodes := map[int]int{}
	var quick int
	for i := range 200 {
		wg.Go(func() {
			start := time.Now()
			m := ask(h, fmt.Sprintf("192.168.137.%d", 10+i%100), fmt.Sprintf("n%d.example.test.", i), dns.TypeA)
			mu.Lock()
			defer mu.Unlock()
			if m != nil {
				rcodes[m.Rcode]++
				if time.Since(start) < 500*time.Millisecond {
					quick++
				}
			}
		})
	}
	wg.Wait()
	if rcodes[dns.RcodeServerFailure] != 200 || quick < 192 {
		t.Fatalf("rcodes %v, %d quick: want 200 SERVFAIL, all but 8 at once", rcodes, quick)
	}
	if got := h.Stats().Overloaded; got < 192 {
		t.Fatalf("overloaded %d, want at least 192", got)
	}
	// What stays is the forwarder's sockets to the upstream, each with
	// its reader, until they have been idle a while.
	if g := runtime.NumGoroutine(); g > goroutines+socketsPerUpstream+4 {
		t.Errorf("goroutines %d -> %d", goroutines, g)
	}
}

// TestPerClientRate shows one client held to its rate while another is
// served.
func TestPerClientRate(t *testing.T) {
	h := newHandler(t)
	h.Limits = Limits{PerClient: ratelimit.Limit{Rate: 10, Burst: 20}}
	answered := 0
	for range 100 {
		if ask(h, "192.168.137.20", "nas.", dns.TypeA) != nil {
			answered++
		}
	}
	if answered < 20 || answered > 25 {
		t.Fatalf("one client answered %d times out of 100 at once, want its burst of 20", answered)
	}
	if ask(h, "192.168.137.21", "nas.", dns.TypeA) == nil {
		t.Fatal("another client was not answered")
	}
	if h.Stats().RateLimited < 75 {
		t.Fatalf("rate-limited %d", h.Stats().RateLimited)
	}
}

// TestTCPConnectionsCapped opens more TCP connections from one client than
// it may hold: the excess are closed at once, and another client still
// gets an answer over TCP.
func TestTCPConnectionsCapped(t *testing.T) {
	h := newHandler(t)
	addr := freePort(t)
	s, err := Serve(h, []netip.AddrPort{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	closed := 0
	for range 20 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !strings.Contains(err.Error(), "timeout") {
			closed++
			c.Close()
			continue
		}
		held = append(held, c)
	}
	if len(held) != DefaultLimits.TCPConnsPerClient || closed != 20-DefaultLimits.TCPConnsPerClient {
		t.Fatalf("%d held, %d closed; want %d held", len(held), closed, DefaultLimits.TCPConnsPerClient)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	conn, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c := &dns.Conn{Conn: conn}
	defer c.Close()
	r := new(dns.Msg)
	r.SetQuestion("nas.", dns.TypeA)
	c.WriteMsg(r)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if m, err := c.ReadMsg(); err != nil || len(m.Answer) != 1 {
		t.Fatalf("another client over TCP: %v %v", m, err)
	}
}

// TestOneClientTakesAQuarterInFlight shows that one client holds at most
// a quarter of the forwarded queries in flight: another client still
// gets its queries forwarded while the first one floods slow names.
func TestOneClientTakesAQuarterInFlight(t *testing.T) {
	up, _ := upstream(t)
	h := newHandler(t, silent(t), up) // the first upstream hangs: each query waits its timeout
	h.Limits = Limits{InFlight: 8}
	h.Timeout = 500 * time.Millisecond
	var wg sync.WaitGroup
	var quick atomic.Int64
	for i := range 20 {
		wg.Go(func() {
			start := time.Now()
			if m := ask(h, "192.168.137.20", fmt.Sprintf("f%d.example.test.", i), dns.TypeA); m != nil && m.Rcode == dns.RcodeServerFailure && time.Since(start) < 200*time.Millisecond {
				quick.Add(1)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the flood holds its two slots
	if got := ask(h, "192.168.137.21", "example.test.", dns.TypeA); got == nil || got.Rcode != dns.RcodeSuccess {
		t.Errorf("another client while one floods: %v", got)
	}
	wg.Wait()
	if q := quick.Load(); q != 18 {
		t.Errorf("%d of 20 queries from one client refused at once, want 18 (8/4 = 2 in flight)", q)
	}
}

// BenchmarkServeDNS answers a private name and a cached upstream name
// through ServeDNS, as the server does for each UDP query.
func BenchmarkServeDNS(b *testing.B) {
	up, _ := upstream(b)
	h := newHandler(b, up)
	for _, q := range []struct{ name, qname string }{{"private", "nas.home.arpa."}, {"cached", "example.test."}} {
		b.Run(q.name, func(b *testing.B) {
			w := &recorder{src: &net.UDPAddr{IP: net.ParseIP("192.168.137.20"), Port: 40000}}
			r := new(dns.Msg)
			r.SetQuestion(q.qname, dns.TypeA)
			r.SetEdns0(1232, false)
			h.ServeDNS(w, r) // fills the cache
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(w, r)
				w.msg.Pack()
			}
		})
	}
}
