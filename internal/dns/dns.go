// Package dns is the DNS forwarder of the private networks: it answers A
// and PTR queries for the private hosts (DHCP leases, reservations and
// static entries), under the domain and as bare names, and forwards
// everything else to the upstream resolvers, over UDP and TCP, with a cache
// that honours TTLs. An upstream that fails makes a quick SERVFAIL.
//
// It answers the private networks only (REFUSED to any other source,
// whatever the firewall lets in), and a storm costs it bounded work: a rate
// per client, a bounded number of forwarded queries in flight (the excess
// gets a quick SERVFAIL), capped TCP connections, and UDP answers that fit
// 512 bytes or the client's EDNS size, truncated with TC set otherwise, so
// that it amplifies nothing.
//
// Over UDP, queries are read and answered in batches; a question for a
// private name or a cached one is answered from its wire bytes (wire.go),
// and the rest are unpacked and answered by the Handler (udp.go). Forwarded
// queries share a few sockets to each upstream (upstream.go).
package dns

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/netshare/netshare/internal/connlimit"
	"github.com/netshare/netshare/internal/ratelimit"
)

// LocalTTL is the TTL of the answers about private hosts.
const LocalTTL = 60

// Names resolves the private hosts. Names are lower-case labels.
type Names interface {
	Lookup(label string) (netip.Addr, bool)
	Reverse(ip netip.Addr) (string, bool)
	// Private reports whether ip is in a private network, whose reverse
	// zone this server answers for.
	Private(ip netip.Addr) bool
}

// Limits bound the work a storm of queries costs.
type Limits struct {
	// PerClient is the rate of queries answered for one address; the
	// rest are dropped.
	PerClient ratelimit.Limit
	// InFlight is how many forwarded queries may wait on the upstreams at
	// once; the rest get SERVFAIL at once.
	InFlight int
	// TCPConns and TCPConnsPerClient bound the TCP connections held, in
	// all and from one address, on each address served.
	TCPConns, TCPConnsPerClient int
}

// DefaultLimits are generous to a busy home or office network (a host
// that resolves for others, a proxy or a NAS, may ask thousands of names
// a second, with hundreds waiting on the upstreams; a benchmark, tens of
// thousands) and keep a storm to a few megabytes: what bounds a storm is
// InFlight (Unbound's num-queries-per-thread; a forwarded query costs a
// goroutine and a map entry, the sockets to the upstreams are shared), and
// no client may hold more than a quarter of it. The rate per client is a
// guard against a source gone mad, set above what one core answers from
// memory (a client that asks faster fills the socket's queue before it
// meets the rate).
var DefaultLimits = Limits{
	PerClient:         ratelimit.Limit{Rate: 200000, Burst: 200000},
	InFlight:          1024,
	TCPConns:          64,
	TCPConnsPerClient: 8,
}

// Stats counts the queries the Handler turned away or cut.
type Stats struct {
	Refused     uint64 // from a source outside the private networks
	RateLimited uint64 // over the client's rate: dropped
	Overloaded  uint64 // too many forwarded queries in flight: SERVFAIL
	Truncated   uint64 // UDP answers cut to the client's size, TC set
}

// Handler answers queries. Set its fields before serving.
type Handler struct {
	// Domain is the private domain, such as home.arpa.
	Domain string
	Names  Names
	// Upstreams are tried in order; none means every forwarded query fails.
	Upstreams []netip.AddrPort
	// Timeout bounds one upstream exchange; 2 s if zero.
	Timeout time.Duration
	Log     *slog.Logger
	Cache   *Cache
	// Limits' zero fields take DefaultLimits' values.
	Limits Limits

	once     sync.Once
	perIP    *ratelimit.Table[netip.Addr]
	inflight chan struct{}
	logLimit *ratelimit.Sampler
	domain   string // Domain, lower-case and fully qualified

	flightMu sync.Mutex
	byClient map[netip.Addr]int // forwarded queries in flight, by client
	fwd      forwarder

	refused, limited, overloaded, truncated atomic.Uint64
}

var _ dns.Handler = (*Handler)(nil)

// ednsSize is the UDP size this server offers (RFC 9715's advice: no
// fragments), and the most it sends a client that offers more.
const ednsSize = 1232

func (h *Handler) init() {
	h.once.Do(func() {
		if h.Limits.PerClient == (ratelimit.Limit{}) {
			h.Limits.PerClient = DefaultLimits.PerClient
		}
		if h.Limits.InFlight <= 0 {
			h.Limits.InFlight = DefaultLimits.InFlight
		}
		if h.Limits.TCPConns <= 0 {
			h.Limits.TCPConns = DefaultLimits.TCPConns
		}
		if h.Limits.TCPConnsPerClient <= 0 {
			h.Limits.TCPConnsPerClient = DefaultLimits.TCPConnsPerClient
		}
		h.perIP = ratelimit.NewTable[netip.Addr](h.Limits.PerClient, 4096)
		h.inflight = make(chan struct{}, h.Limits.InFlight)
		h.byClient = map[netip.Addr]int{}
		h.logLimit = ratelimit.NewSampler(1, 5)
		if h.Domain != "" {
			h.domain = strings.ToLower(dns.Fqdn(h.Domain))
		}
	})
}

// Stats returns the counts so far.
func (h *Handler) Stats() Stats {
	return Stats{Refused: h.refused.Load(), RateLimited: h.limited.Load(), Overloaded: h.overloaded.Load(), Truncated: h.truncated.Load()}
}

// ServeDNS implements dns.Handler.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	src := netip.Addr{}
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		src = ap.Addr().Unmap()
	}
	udp := w.RemoteAddr().Network() != "tcp"
	resp := h.respond(r, src, udp, false)
	if resp == nil {
		return
	}
	if err := w.WriteMsg(resp); err != nil && h.Log != nil {
		h.Log.Debug("writing a DNS answer", "err", err)
	}
}

// respond returns the answer to r from src, fit to the client, or nil
// for none. admitted says the UDP fast path has already checked the
// source and counted the query against its rate.
func (h *Handler) respond(r *dns.Msg, src netip.Addr, udp, admitted bool) *dns.Msg {
	h.init()
	if r.Response {
		return nil // never answer an answer: two servers would play ping-pong
	}
	if !admitted {
		if !h.allowed(src) {
			h.refuse(src)
			return h.reply(r, dns.RcodeRefused)
		}
		if !h.admit(src, time.Now()) {
			return nil
		}
	}
	resp := h.answerFrom(r, !udp, src)
	if resp == nil {
		return nil
	}
	h.fit(r, resp, udp)
	return resp
}

// refuse counts and notes a query from outside the private networks.
func (h *Handler) refuse(src netip.Addr) {
	h.refused.Add(1)
	h.note("DNS query refused: the source is not on a private network", "source", src)
}

// admit counts a query from src against its rate: false means drop it.
func (h *Handler) admit(src netip.Addr, now time.Time) bool {
	if h.perIP.Allow(src, now) {
		return true
	}
	h.limited.Add(1)
	h.note("DNS queries over the client's rate dropped", "source", src)
	return false
}

// takeFlight takes a slot for a forwarded query from src: one of
// InFlight in all, and at most a quarter of them for one client.
func (h *Handler) takeFlight(src netip.Addr) bool {
	h.flightMu.Lock()
	if h.byClient[src] >= max(1, cap(h.inflight)/4) {
		h.flightMu.Unlock()
		return false
	}
	h.byClient[src]++
	h.flightMu.Unlock()
	select {
	case h.inflight <- struct{}{}:
		return true
	default:
		h.endClient(src)
		return false
	}
}

func (h *Handler) endFlight(src netip.Addr) {
	<-h.inflight
	h.endClient(src)
}

func (h *Handler) endClient(src netip.Addr) {
	h.flightMu.Lock()
	if h.byClient[src]--; h.byClient[src] <= 0 {
		delete(h.byClient, src)
	}
	h.flightMu.Unlock()
}

// allowed reports whether src may ask: a host of a private network, or
// this host itself.
func (h *Handler) allowed(src netip.Addr) bool {
	return src.IsLoopback() || (h.Names != nil && h.Names.Private(src))
}

// note logs a line about a refused or dropped query, at most one a second.
func (h *Handler) note(msg string, args ...any) {
	if h.Log == nil {
		return
	}
	if ok, n := h.logLimit.Allow(time.Now()); ok {
		h.Log.Warn(msg, append(args, "suppressed", n)...)
	}
}

// fit gives resp this server's EDNS record for the client (the DO bit
// echoed; never the upstream's or the cache's record), and cuts a UDP
// answer to 512 bytes, or the size the client's EDNS record offers up to
// ednsSize, setting TC when records had to go: the client asks again over
// TCP. Answers are compressed.
func (h *Handler) fit(r, resp *dns.Msg, udp bool) {
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		resp.SetEdns0(ednsSize, opt.Do())
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), ednsSize)
	}
	if udp {
		was := resp.Truncated
		resp.Truncate(size)
		if resp.Truncated && !was {
			h.truncated.Add(1)
		}
	}
	resp.Compress = true
}

func (h *Handler) reply(r *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	return m
}

// answer builds the answer to r; tcp says how r came.
func (h *Handler) answer(r *dns.Msg, tcp bool) *dns.Msg {
	return h.answerFrom(r, tcp, netip.Addr{})
}

// answerFrom is answer for a query from src (the zero Addr when unknown).
func (h *Handler) answerFrom(r *dns.Msg, tcp bool, src netip.Addr) *dns.Msg {
	h.init()
	if r.Response || r.Opcode != dns.OpcodeQuery {
		return h.reply(r, dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return h.reply(r, dns.RcodeFormatError)
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if m := h.local(r, q, name); m != nil {
		return m
	}
	return h.forward(r, q, name, tcp, src)
}

// local answers for the private hosts and their reverse zone; nil means the
// query is not about them.
func (h *Handler) local(r *dns.Msg, q dns.Question, name string) *dns.Msg {
	la := h.lookupLocal(name, q.Qtype)
	if la.kind == notLocal {
		return nil
	}
	m := h.reply(r, dns.RcodeSuccess)
	m.Authoritative = true
	switch la.kind {
	case localNXDomain:
		m.Rcode = dns.RcodeNameError
	case localA:
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: LocalTTL}, A: la.ip.AsSlice()}}
	case localPTR:
		m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: LocalTTL}, Ptr: la.host}}
	}
	return m
}

// localKind is what this server says of a name as the private networks'
// authority.
type localKind int

const (
	notLocal      localKind = iota // not a private name: forwarded
	localNXDomain                  // a private name nobody holds
	localNoData                    // a private name, no record of the type asked
	localA                         // a private host's address
	localPTR                       // a private address's host
)

// localAnswer is what lookupLocal found: ip for localA, host (a fully
// qualified name) for localPTR.
type localAnswer struct {
	kind localKind
	ip   netip.Addr
	host string
}

// lookupLocal decides what this server answers about name (lower-case,
// fully qualified) as the authority for the private hosts and their
// reverse zone. The UDP fast path and the general path share it, so that
// both say the same.
func (h *Handler) lookupLocal(name string, qtype uint16) localAnswer {
	var label string
	switch {
	case qtype == dns.TypePTR && strings.HasSuffix(name, ".in-addr.arpa."):
		ip, ok := reverseAddr(name)
		if !ok || h.Names == nil || !h.Names.Private(ip) {
			return localAnswer{}
		}
		host, found := h.Names.Reverse(ip)
		if !found {
			return localAnswer{kind: localNXDomain}
		}
		return localAnswer{kind: localPTR, host: host + "." + h.fqdn()}
	case dns.CountLabel(name) == 1:
		// A bare host name, for an address: answered when it is a private
		// host's. Everything else about a single label (com. DS, test. NS)
		// is the Internet's, and goes upstream.
		switch qtype {
		case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
		default:
			return localAnswer{}
		}
		if h.Names == nil {
			return localAnswer{}
		}
		label = name[:len(name)-1]
		if _, found := h.Names.Lookup(label); !found {
			return localAnswer{}
		}
	case h.Domain != "" && name == h.fqdn():
		return localAnswer{kind: localNoData}
	case h.Domain != "" && len(name) > len(h.fqdn()) && strings.HasSuffix(name, h.fqdn()) && name[len(name)-len(h.fqdn())-1] == '.':
		label = name[:len(name)-len(h.fqdn())-1]
	default:
		return localAnswer{}
	}
	var ip netip.Addr
	found := false
	if h.Names != nil && !strings.Contains(label, ".") {
		ip, found = h.Names.Lookup(label)
	}
	switch {
	case !found:
		return localAnswer{kind: localNXDomain}
	case qtype == dns.TypeA || qtype == dns.TypeANY:
		return localAnswer{kind: localA, ip: ip}
	default:
		return localAnswer{kind: localNoData}
	}
}

// fqdn returns the private domain, lower-case and fully qualified.
func (h *Handler) fqdn() string {
	h.init()
	return h.domain
}

// reverseAddr parses d.c.b.a.in-addr.arpa.
func reverseAddr(name string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	return ip, err == nil && ip.Is4()
}

// forward asks the upstreams, through the cache. The upstream query is
// this server's own: the question, RD and CD as the client set them, and
// an EDNS record offering ednsSize with the client's DO bit; nothing else
// of the client's (its UDP size, its options) goes upstream.
func (h *Handler) forward(r *dns.Msg, q dns.Question, name string, tcp bool, src netip.Addr) *dns.Msg {
	key := cacheKey{name: name, qtype: q.Qtype, qclass: q.Qclass, do: isDO(r), cd: r.CheckingDisabled}
	if m := h.Cache.get(key, time.Now()); m != nil {
		m.Id = r.Id
		m.Question = r.Question
		m.RecursionDesired = r.RecursionDesired
		m.RecursionAvailable = true
		return m
	}
	if !h.takeFlight(src) {
		h.overloaded.Add(1)
		h.note("DNS query answered SERVFAIL: too many forwarded queries in flight", "limit", cap(h.inflight), "source", src)
		return h.reply(r, dns.RcodeServerFailure)
	}
	defer h.endFlight(src)
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	up := new(dns.Msg)
	up.SetQuestion(q.Name, q.Qtype)
	up.Question[0].Qclass = q.Qclass
	up.RecursionDesired = r.RecursionDesired
	up.CheckingDisabled = r.CheckingDisabled
	up.SetEdns0(ednsSize, key.do)
	var lastErr error
	for _, u := range h.Upstreams {
		var resp *dns.Msg
		var err error
		if !tcp {
			resp, err = h.fwd.exchange(u, up, timeout)
		}
		if tcp || (err == nil && resp.Truncated) {
			c := &dns.Client{Net: "tcp", Timeout: timeout}
			resp, _, err = c.Exchange(up, u.String())
		}
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			lastErr = fmt.Errorf("%s answered %s", u, dns.RcodeToString[resp.Rcode])
			continue
		}
		h.Cache.put(key, resp, time.Now())
		resp.Id = r.Id
		resp.RecursionAvailable = true
		return resp
	}
	if h.Log != nil {
		h.Log.Debug("no upstream answered", "name", name, "err", lastErr)
	}
	return h.reply(r, dns.RcodeServerFailure)
}

func isDO(r *dns.Msg) bool {
	opt := r.IsEdns0()
	return opt != nil && opt.Do()
}

// Server serves a Handler on addresses, UDP and TCP, port 53 unless the
// address says otherwise.
type Server struct {
	udp     []*udpServer
	servers []*dns.Server // TCP
}

// Serve starts serving h on each of addrs. TCP connections are capped by
// h's Limits, and each must send a query within 2 s and another within
// 8 s of the last.
func Serve(h *Handler, addrs []netip.AddrPort) (*Server, error) {
	h.init()
	s := &Server{}
	for _, a := range addrs {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("DNS on %s/udp: %w", a, err)
		}
		u := newUDPServer(h, pc)
		go u.serve()
		s.udp = append(s.udp, u)

		ln, err := net.Listen("tcp", a.String())
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("DNS on %s/tcp: %w", a, err)
		}
		started := make(chan struct{})
		srv := &dns.Server{Net: "tcp", Handler: h, NotifyStartedFunc: func() { close(started) },
			Listener:    connlimit.New(ln, h.Limits.TCPConns, h.Limits.TCPConnsPerClient),
			ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 8 * time.Second }}
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
			s.servers = append(s.servers, srv)
		case err := <-errc:
			s.Close()
			return nil, fmt.Errorf("DNS on %s/tcp: %w", a, err)
		}
	}
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	var errs []error
	for _, u := range s.udp {
		errs = append(errs, u.Close())
	}
	for _, srv := range s.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs = append(errs, srv.ShutdownContext(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// SystemUpstreams returns the name servers of a resolv.conf file, port 53.
func SystemUpstreams(path string) ([]netip.AddrPort, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, s := range cfg.Servers {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
		}
	}
	return out, nil
}

// cacheKey identifies a cached answer: DNSSEC-aware clients (DO) and
// validating ones (CD) get answers of their own.
type cacheKey struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

type cacheEntry struct {
	key cacheKey
	// wire is the answer packed, names compressed, without an EDNS
	// record; qend is where its question ends and ttls where the TTLs of
	// its records are, for aging them without unpacking.
	wire    []byte
	qend    int
	ttls    []uint16
	size    int
	stored  time.Time
	expires time.Time
}

// Cache keeps upstream answers until their TTL runs out, within a bound on
// the memory they take; the least recently used answer goes first. Every
// operation costs the same whatever the number of answers. The zero value
// is not usable; NewCache makes one.
type Cache struct {
	mu      sync.Mutex
	max     int // bytes
	bytes   int
	entries map[cacheKey]*list.Element // of *cacheEntry
	lru     list.List                  // most recently used first
}

// DefaultCacheSize is the memory the DNS cache may take, in bytes.
const DefaultCacheSize = 4 << 20

// entryOverhead is what an answer costs besides its bytes: the map entry,
// the list element, the entry.
const entryOverhead = 200

// NewCache returns a cache of at most maxBytes of answers.
func NewCache(maxBytes int) *Cache {
	return &Cache{max: maxBytes, entries: map[cacheKey]*list.Element{}}
}

// maxCacheTTL bounds how long anything is cached.
const maxCacheTTL = time.Hour

// ttlOf returns how long m may be cached: the smallest TTL of its records,
// or the negative TTL of its SOA for an answer without records.
func ttlOf(m *dns.Msg) time.Duration {
	if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
		return 0
	}
	min := uint32(maxCacheTTL / time.Second)
	seen := false
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			ttl := rr.Header().Ttl
			if soa, ok := rr.(*dns.SOA); ok && len(m.Answer) == 0 {
				ttl = min32(ttl, soa.Minttl)
			}
			min, seen = min32(min, ttl), true
		}
	}
	if !seen {
		return 0
	}
	return time.Duration(min) * time.Second
}

func min32(a, b uint32) uint32 {
	if a < b {
		return a
	}
	return b
}

// get returns the cached answer for k, its TTLs aged, or nil.
func (c *Cache) get(k cacheKey, now time.Time) *dns.Msg {
	e := c.lookup(k, now)
	if e == nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(e.wire); err != nil {
		return nil // cannot happen: the cache packed it
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Ttl > age {
				rr.Header().Ttl -= age
			} else {
				rr.Header().Ttl = 0
			}
		}
	}
	return m
}

// lookup returns the entry of k, unexpired, or nil. The entry is not to
// be changed.
func (c *Cache) lookup(k cacheKey, now time.Time) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return e
}

func (c *Cache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	c.bytes -= e.size
}

// put keeps m, an upstream's answer to k, for its TTL: packed, without
// its EDNS record (each client gets this server's own).
func (c *Cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	if c == nil || m.Truncated || m.Rcode > 0xf || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, k.name) {
		return
	}
	ttl := ttlOf(m)
	if ttl <= 0 {
		return
	}
	p := *m
	p.Extra = nil
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			p.Extra = append(p.Extra, rr)
		}
	}
	p.Compress = true
	wire, err := p.Pack()
	if err != nil {
		return
	}
	ttls, qend, ok := ttlOffsets(wire)
	if !ok {
		return
	}
	e := &cacheEntry{key: k, wire: wire, qend: qend, ttls: ttls, stored: now, expires: now.Add(ttl)}
	e.size = len(wire) + 2*len(ttls) + len(k.name) + entryOverhead
	if e.size > c.max/8 {
		return // one answer may take an eighth of the cache at most
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		c.removeLocked(el)
	}
	c.entries[k] = c.lru.PushFront(e)
	c.bytes += e.size
	for c.bytes > c.max {
		c.removeLocked(c.lru.Back())
	}
}

// Flush empties the cache.
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.lru.Init()
	c.bytes = 0
}

// Bytes returns the memory the cached answers take, as the cache counts it.
func (c *Cache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Len returns the number of cached answers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
