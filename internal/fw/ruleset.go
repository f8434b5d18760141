package fw

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/netshare/netshare/internal/ipproto"
)

// TableName is the nftables table netshare owns, in the inet family. It
// shares the hooks with other tables (firewalld's, Docker's): an accept
// here is not final, a drop is.
const TableName = "netshare"

// Names of the sets and the map of the table. The chains never change;
// a Config only changes the elements of these, so that the same skeleton
// serves every state and a port mapping is one map element.
const (
	SetPublic     = "public"     // the public connection (0 or 1 interface)
	SetPrivate    = "private"    // the private connections
	SetFirewalled = "firewalled" // the connections with the firewall on
	SetPing       = "ping"       // firewalled connections that answer ping
	MapMappings   = "mappings"   // ifname . proto . port : ipv4 . port
	MapHairpin    = "hairpin"    // public ipv4 . proto . port : ipv4 . port
	SetFiltered   = "filtered"   // ifname . proto . port of mappings with peer filters
	SetPeers      = "peers"      // ifname . proto . port . ipv4 . port ranges they allow
)

// Ruleset is the compiled table: its interface sets, its port mapping map
// and its chains.
type Ruleset struct {
	Sets     []Set
	Mappings []Mapping
	Hairpin  []Hairpin
	// Filtered are the keys of the mappings with remote peer filters, and
	// Peers the elements of the peers set that their filters make.
	Filtered []Key
	Peers    []PeerRange
	Chains   []Chain
}

// PeerRange is an element of the peers set: flows to the mapping at Key
// from an address in Prefix and a port from First to Last may use it.
type PeerRange struct {
	Key
	Prefix      netip.Prefix
	First, Last uint16
}

// PeerRangesOf returns the elements of the peers set for m's filters.
func PeerRangesOf(m Mapping) []PeerRange {
	fs := m.Peers.All()
	out := make([]PeerRange, len(fs))
	for i, f := range fs {
		out[i] = PeerRange{Key: m.Key, Prefix: f.Prefix, First: f.Port, Last: f.Port}
		if f.Port == 0 {
			out[i].Last = 65535
		}
	}
	return out
}

// LastAddr returns the last address of an IPv4 prefix (its broadcast
// address).
func LastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

// Hairpin is an element of the hairpin map: traffic from a private
// network to a public address and port goes to the mapping's target.
type Hairpin struct {
	Addr         netip.Addr
	Protocol     ipproto.Proto
	Port         uint16
	Target       netip.Addr
	InternalPort uint16
}

// HairpinsOf returns the hairpin elements of m: one for each public
// address, if m is a mapping of the public connection.
func HairpinsOf(cfg *Config, m Mapping) []Hairpin {
	if m.Interface != cfg.Public {
		return nil
	}
	out := make([]Hairpin, len(cfg.PublicAddrs))
	for i, a := range cfg.PublicAddrs {
		out[i] = Hairpin{Addr: a, Protocol: m.Protocol, Port: m.ExternalPort, Target: m.Target, InternalPort: m.InternalPort}
	}
	return out
}

// Set is a named set of interface names.
type Set struct {
	Name     string
	Elements []string
}

// Chain is a base chain.
type Chain struct {
	Name     string
	Type     string // filter or nat
	Hook     string // prerouting, input, forward, postrouting
	Priority string // dstnat, filter or srcnat
	Rules    []Rule
}

// Rule is a sequence of terms, matches first and a statement last.
type Rule []Term

// Term is one match or statement of a rule. The set of terms is closed:
// the nftables backend turns each kind into netlink expressions.
type Term interface {
	String() string
}

// IIFSet matches the input interface against a named set.
type IIFSet struct {
	Set string
	Not bool
}

// OIFSet matches the output interface against a named set.
type OIFSet struct {
	Set string
	Not bool
}

// CtState matches conntrack states; any of the bits matches.
type CtState uint32

// Conntrack state bits, as the kernel defines them.
const (
	CtInvalid     CtState = 1
	CtEstablished CtState = 2
	CtRelated     CtState = 4
	CtNew         CtState = 8
)

// CtStatusDNAT matches connections whose destination was translated: the
// traffic of an enabled port mapping.
type CtStatusDNAT struct{}

// ICMPType matches an ICMP (V6 false) or ICMPv6 message type.
type ICMPType struct {
	V6   bool
	Type uint8
}

// UDPPorts matches UDP by source and destination port; 0 matches any.
type UDPPorts struct {
	Sport, Dport uint16
}

// FibSaddrIIFMissing matches packets whose source the namespace would not
// route back out of the interface they came in on (reverse-path check).
type FibSaddrIIFMissing struct{}

// FibSaddrLocal matches packets whose source is one of the namespace's own
// addresses.
type FibSaddrLocal struct{}

// SocketListens matches packets that a local socket would receive (a
// socket lookup that succeeds, for a socket that is not transparent).
type SocketListens struct{}

// TCPNotSYN matches TCP packets whose flags, among FIN, SYN, RST and ACK,
// are not SYN alone: packets that cannot open a connection.
type TCPNotSYN struct{}

// Verdict ends a rule with accept or drop.
type Verdict string

// Verdicts.
const (
	Accept Verdict = "accept"
	Drop   Verdict = "drop"
)

// Masquerade rewrites the source to the output interface's address.
type Masquerade struct{}

// HairpinDNAT rewrites the destination of IPv4 traffic to the address and
// port the map gives for (destination address, protocol, destination port).
type HairpinDNAT struct {
	Map string
}

func (t HairpinDNAT) String() string {
	return "dnat ip to ip daddr . meta l4proto . th dport map @" + t.Map
}

// DNATMap rewrites the destination of IPv4 traffic to the address and port
// the map gives for (input interface, protocol, destination port).
type DNATMap struct {
	Map string
}

// PeerDenied matches IPv4 flows to a mapping with remote peer filters
// (its input interface, protocol and port in the Filtered set) that no
// filter allows (with the source address and port, not in the Peers
// set).
type PeerDenied struct {
	Filtered, Peers string
}

func (t PeerDenied) String() string {
	return "iifname . meta l4proto . th dport @" + t.Filtered + " iifname . meta l4proto . th dport . ip saddr . th sport != @" + t.Peers
}

func ifset(dir, set string, not bool) string {
	if not {
		return dir + " != @" + set
	}
	return dir + " @" + set
}

func (t IIFSet) String() string { return ifset("iifname", t.Set, t.Not) }
func (t OIFSet) String() string { return ifset("oifname", t.Set, t.Not) }

func (s CtState) String() string {
	var names []string
	for _, b := range []struct {
		bit  CtState
		name string
	}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}} {
		if s&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return "ct state " + strings.Join(names, ",")
}

func (CtStatusDNAT) String() string { return "ct status dnat" }

var icmpNames = map[ICMPType]string{
	{false, 8}:  "echo-request",
	{true, 128}: "echo-request",
	{true, 133}: "nd-router-solicit",
	{true, 134}: "nd-router-advert",
	{true, 135}: "nd-neighbor-solicit",
	{true, 136}: "nd-neighbor-advert",
	{true, 137}: "nd-redirect",
}

func (t ICMPType) String() string {
	name, ok := icmpNames[t]
	if !ok {
		name = fmt.Sprint(t.Type)
	}
	if t.V6 {
		return "icmpv6 type " + name
	}
	return "icmp type " + name
}

func (t UDPPorts) String() string {
	var parts []string
	if t.Sport != 0 {
		parts = append(parts, fmt.Sprintf("udp sport %d", t.Sport))
	}
	if t.Dport != 0 {
		parts = append(parts, fmt.Sprintf("udp dport %d", t.Dport))
	}
	return strings.Join(parts, " ")
}

func (FibSaddrIIFMissing) String() string { return "fib saddr . iif oif missing" }
func (FibSaddrLocal) String() string      { return "fib saddr type local" }
func (SocketListens) String() string      { return "socket transparent 0" }
func (TCPNotSYN) String() string          { return "tcp flags != syn / fin,syn,rst,ack" }

func (v Verdict) String() string  { return string(v) }
func (Masquerade) String() string { return "masquerade" }
func (t DNATMap) String() string {
	return "dnat ip to iifname . meta l4proto . th dport map @" + t.Map
}

// Compile turns a Config into the Ruleset that enforces it. It is pure: the
// same Config gives the same Ruleset.
//
// The chains:
//   - antispoof: packets that come in on the public connection from a
//     source the gateway would not route back out of it (a private
//     network's address, say) or from one of its own addresses are
//     dropped, before anything else sees them;
//   - prerouting: enabled port mappings, one map lookup per new flow, and
//     hairpin: private hosts reaching a mapping at a public address; a
//     new flow to a mapping with remote peer filters that none of them
//     allows is dropped first (hairpin flows come from inside and are not
//     filtered);
//   - postrouting: traffic from private connections leaving through the
//     public one is masqueraded, and so is hairpin traffic;
//   - forward: replies pass; private connections reach the public one and
//     each other; mapped (DNAT) traffic passes if a TCP flow starts with a
//     SYN; anything else into a private network, or in through a
//     firewalled connection, is dropped;
//   - input: on firewalled connections, only replies, mapped traffic (a
//     TCP flow starting with a SYN), ping where allowed, IPv6 neighbour
//     discovery (not redirects) and DHCP client replies where a client
//     listens get to the gateway itself; the rest is dropped without an
//     answer.
//
// Outbound traffic is not filtered. With empty sets the table has no
// effect on traffic.
func Compile(cfg *Config) *Ruleset {
	c := cfg.Clone()
	c.Sort()
	var public []string
	if c.Public != "" {
		public = []string{c.Public}
	}
	// The hairpin elements, in one slice rather than one per mapping.
	var hairpin []Hairpin
	if c.Public != "" && len(c.PublicAddrs) > 0 {
		hairpin = make([]Hairpin, 0, len(c.Mappings)*len(c.PublicAddrs))
		for _, m := range c.Mappings {
			if m.Interface != c.Public {
				continue
			}
			for _, a := range c.PublicAddrs {
				hairpin = append(hairpin, Hairpin{Addr: a, Protocol: m.Protocol, Port: m.ExternalPort, Target: m.Target, InternalPort: m.InternalPort})
			}
		}
	}
	var filtered []Key
	var peerRanges []PeerRange
	for _, m := range c.Mappings {
		if m.Peers.Len() > 0 {
			filtered = append(filtered, m.Key)
			peerRanges = append(peerRanges, PeerRangesOf(m)...)
		}
	}
	return &Ruleset{
		Filtered: filtered,
		Peers:    peerRanges,
		Hairpin:  hairpin,
		Sets: []Set{
			{SetPublic, public},
			{SetPrivate, c.Private},
			{SetFirewalled, c.Firewalled},
			{SetPing, c.Ping},
		},
		Mappings: c.Mappings,
		Chains:   skeleton,
	}
}

var (
	fromPublic  = IIFSet{Set: SetPublic}
	fromPrivate = IIFSet{Set: SetPrivate}
	toPrivate   = OIFSet{Set: SetPrivate}
	toPublic    = OIFSet{Set: SetPublic}
	firewalled  = IIFSet{Set: SetFirewalled}
)

var skeleton = []Chain{
	{Name: "antispoof", Type: "filter", Hook: "prerouting", Priority: "raw", Rules: []Rule{
		// A DHCP offer reaches a public connection that has no address
		// (and so no route back) yet.
		{fromPublic, UDPPorts{Sport: 67, Dport: 68}, Accept},
		{fromPublic, FibSaddrIIFMissing{}, Drop},
		{fromPublic, FibSaddrLocal{}, Drop},
	}},
	{Name: "prerouting", Type: "nat", Hook: "prerouting", Priority: "dstnat", Rules: []Rule{
		{PeerDenied{SetFiltered, SetPeers}, Drop},
		{DNATMap{MapMappings}},
		{fromPrivate, HairpinDNAT{MapHairpin}},
	}},
	{Name: "postrouting", Type: "nat", Hook: "postrouting", Priority: "srcnat", Rules: []Rule{
		{fromPrivate, toPublic, Masquerade{}},
		// Hairpin: the target must answer through the gateway.
		{fromPrivate, toPrivate, CtStatusDNAT{}, Masquerade{}},
	}},
	{Name: "forward", Type: "filter", Hook: "forward", Priority: "filter", Rules: []Rule{
		{CtEstablished | CtRelated, Accept},
		{firewalled, CtInvalid, Drop},
		{toPrivate, CtInvalid, Drop},
		{CtNew, CtStatusDNAT{}, TCPNotSYN{}, Drop},
		{CtStatusDNAT{}, Accept},
		{fromPrivate, toPublic, Accept},
		{fromPrivate, toPrivate, Accept},
		{toPrivate, Drop},
		{firewalled, Drop},
	}},
	{Name: "input", Type: "filter", Hook: "input", Priority: "filter", Rules: []Rule{
		{IIFSet{Set: SetFirewalled, Not: true}, Accept},
		{CtEstablished | CtRelated, Accept},
		{CtInvalid, Drop},
		{CtNew, CtStatusDNAT{}, TCPNotSYN{}, Drop},
		{CtStatusDNAT{}, Accept},
		{IIFSet{Set: SetPing}, ICMPType{Type: 8}, Accept},
		{ICMPType{V6: true, Type: 133}, Accept},
		{ICMPType{V6: true, Type: 134}, Accept},
		{ICMPType{V6: true, Type: 135}, Accept},
		{ICMPType{V6: true, Type: 136}, Accept},
		// DHCP and DHCPv6 replies, where a client listens; with none, no
		// port-unreachable answer gives the gateway away.
		{UDPPorts{Sport: 67, Dport: 68}, SocketListens{}, Accept},
		{UDPPorts{Sport: 547, Dport: 546}, SocketListens{}, Accept},
		{Drop},
	}},
}

// String renders the ruleset in the syntax `nft list table` prints, with
// set and map elements sorted, for golden files and diagnostics.
func (r *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", TableName)
	first := true
	block := func() {
		if !first {
			b.WriteString("\n")
		}
		first = false
	}
	for _, s := range r.Sets {
		block()
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype ifname\n", s.Name)
		if len(s.Elements) > 0 {
			q := make([]string, len(s.Elements))
			for i, e := range s.Elements {
				q[i] = fmt.Sprintf("%q", e)
			}
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(q, ", "))
		}
		b.WriteString("\t}\n")
	}
	elementsBlock := func(kind, name, typ, flags string, es []string) {
		block()
		fmt.Fprintf(&b, "\t%s %s {\n\t\ttype %s\n", kind, name, typ)
		if flags != "" {
			fmt.Fprintf(&b, "\t\tflags %s\n", flags)
		}
		if len(es) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(es, ", "))
		}
		b.WriteString("\t}\n")
	}
	mapBlock := func(name, typ string, es []string) { elementsBlock("map", name, typ, "", es) }
	setBlock := func(name, typ, flags string, es []string) { elementsBlock("set", name, typ, flags, es) }
	var es []string
	for _, m := range r.Mappings {
		es = append(es, fmt.Sprintf("%q . %s . %d : %s . %d", m.Interface, m.Protocol, m.ExternalPort, m.Target, m.InternalPort))
	}
	mapBlock(MapMappings, "ifname . inet_proto . inet_service : ipv4_addr . inet_service", es)
	es = nil
	for _, h := range r.Hairpin {
		es = append(es, fmt.Sprintf("%s . %s . %d : %s . %d", h.Addr, h.Protocol, h.Port, h.Target, h.InternalPort))
	}
	mapBlock(MapHairpin, "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service", es)
	es = nil
	for _, k := range r.Filtered {
		es = append(es, fmt.Sprintf("%q . %s . %d", k.Interface, k.Protocol, k.ExternalPort))
	}
	setBlock(SetFiltered, "ifname . inet_proto . inet_service", "", es)
	es = nil
	for _, p := range r.Peers {
		// As nft lists them: a /32 as its address, one port alone.
		from, ports := p.Prefix.String(), fmt.Sprintf("%d-%d", p.First, p.Last)
		if p.Prefix.IsSingleIP() {
			from = p.Prefix.Addr().String()
		}
		if p.First == p.Last {
			ports = fmt.Sprint(p.First)
		}
		es = append(es, fmt.Sprintf("%q . %s . %d . %s . %s", p.Interface, p.Protocol, p.ExternalPort, from, ports))
	}
	setBlock(SetPeers, "ifname . inet_proto . inet_service . ipv4_addr . inet_service", "interval", es)
	for _, c := range r.Chains {
		block()
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype %s hook %s priority %s; policy accept;\n", c.Name, c.Type, c.Hook, c.Priority)
		for _, rule := range c.Rules {
			parts := make([]string, len(rule))
			for i, t := range rule {
				parts[i] = t.String()
			}
			fmt.Fprintf(&b, "\t\t%s\n", strings.Join(parts, " "))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}
