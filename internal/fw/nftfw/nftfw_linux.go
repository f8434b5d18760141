package nftfw

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
)

// Backend is a fw.Backend on one network namespace.
type Backend struct {
	conn  *nftables.Conn
	nl    *netlink.Handle // for conntrack
	table *nftables.Table
	log   *slog.Logger

	mu       sync.Mutex // serialises batches on conn; guards the fields below
	cfg      *fw.Config // the last Config applied, without its mappings
	mappings map[fw.Key]fw.Mapping
	gen      uint32 // the ruleset generation after our last batch

	flows     chan []flowCut // removed mappings whose flows the flusher deletes
	flowsDone chan struct{}
}

var _ fw.Backend = (*Backend)(nil)

// New returns a Backend on the namespace ns; a closed handle (netns.None())
// means the namespace of the calling process. It keeps one netlink socket
// open: closing a socket after each batch makes every element delete wait
// for an RCU grace period (about 14 ms). log may be nil.
func New(ns netns.NsHandle, log *slog.Logger) (*Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(ns)))
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return nil, fmt.Errorf("opening netlink for conntrack: %w", err)
	}
	c, err := nftables.New(opts...)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return newOn(c, h, log), nil
}

// newOn returns a Backend on an nftables connection; h, for
// conntrack, may be nil (tests that record netlink messages).
func newOn(c *nftables.Conn, h *netlink.Handle, log *slog.Logger) *Backend {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{
		conn:      c,
		nl:        h,
		table:     &nftables.Table{Family: nftables.TableFamilyINet, Name: fw.TableName},
		log:       log,
		cfg:       &fw.Config{},
		mappings:  map[fw.Key]fw.Mapping{},
		flows:     make(chan []flowCut, 1024),
		flowsDone: make(chan struct{}),
	}
	go b.flusher()
	return b
}

// flusher deletes the conntrack entries of removed mappings, off the path
// of the change: a conntrack dump walks the kernel's whole connection hash
// table (about 7 ms here, even when it is empty), while the element change
// that stops new flows takes tens of microseconds. Requests that queue up
// meanwhile go in one dump.
func (b *Backend) flusher() {
	defer close(b.flowsDone)
	for ms := range b.flows {
		for more := true; more; {
			select {
			case next, ok := <-b.flows:
				if !ok {
					more = false
					break
				}
				ms = append(ms, next...)
			default:
				more = false
			}
		}
		b.flushFlows(ms)
	}
}

// queueFlows hands the flows of removed mappings to the flusher; with a
// full queue it flushes at once rather than drop the request. now finds
// the mapping that holds a removed one's key now, if any.
func (b *Backend) queueFlows(gone []fw.Mapping, now func(fw.Key) (fw.Mapping, bool)) {
	if len(gone) == 0 {
		return
	}
	cuts := make([]flowCut, len(gone))
	for i, m := range gone {
		cuts[i] = flowCut{Mapping: m}
		if by, ok := now(m.Key); ok && by.Target == m.Target && by.InternalPort == m.InternalPort {
			cuts[i].by = &by
		}
	}
	select {
	case b.flows <- cuts:
	default:
		b.flushFlows(cuts)
	}
}

// flowCut is a removed mapping whose flows are to be deleted: all of them,
// or, when a mapping to the same target and port replaced it (a device's
// PCP FILTER changed), those of the remote peers the new one refuses. A
// flow that goes on where it went needs no cut: it is counted, not broken.
type flowCut struct {
	fw.Mapping
	by *fw.Mapping
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter: a flow the
// mapping made (its external port, DNATed to its target) that must end.
func (c flowCut) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	if f.Forward.Protocol != uint8(c.Protocol) || f.Forward.DstPort != c.ExternalPort || !f.Reverse.SrcIP.Equal(c.Target.AsSlice()) {
		return false
	}
	if c.by == nil {
		return true
	}
	peer, ok := netip.AddrFromSlice(f.Forward.SrcIP)
	return !ok || !c.by.Peers.Allows(peer.Unmap(), f.Forward.SrcPort)
}

// Close closes the netlink sockets; the table stays, so that sharing goes
// on while the daemon restarts.
func (b *Backend) Close() error {
	close(b.flows)
	<-b.flowsDone
	if b.nl != nil {
		b.nl.Close()
	}
	return b.conn.CloseLasting()
}

// Remove deletes the table.
func (b *Backend) Remove(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn.AddTable(b.table)
	b.conn.DelTable(b.table)
	if err := b.conn.Flush(); err != nil {
		return &fw.OpError{Op: "deleting", Object: "table inet " + fw.TableName, Err: err}
	}
	return nil
}

// mapSet describes the mappings map; SetID is not needed to change
// elements of an existing map.
func (b *Backend) mapSet() *nftables.Set {
	return &nftables.Set{
		Table:         b.table,
		Name:          fw.MapMappings,
		IsMap:         true,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeInetProto, nftables.TypeInetService),
		DataType:      nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
	}
}

// hairpinSet describes the hairpin map.
func (b *Backend) hairpinSet() *nftables.Set {
	return &nftables.Set{
		Table:         b.table,
		Name:          fw.MapHairpin,
		IsMap:         true,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService),
		DataType:      nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
	}
}

// filteredSet describes the set of mappings with remote peer filters.
func (b *Backend) filteredSet() *nftables.Set {
	return &nftables.Set{
		Table:         b.table,
		Name:          fw.SetFiltered,
		Concatenation: true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeInetProto, nftables.TypeInetService),
	}
}

// peersSet describes the set of the ranges those filters allow: an
// interval set of concatenations (the kernel's pipapo).
func (b *Backend) peersSet() *nftables.Set {
	return &nftables.Set{
		Table:         b.table,
		Name:          fw.SetPeers,
		Concatenation: true,
		Interval:      true,
		KeyType:       nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeIPAddr, nftables.TypeInetService),
	}
}

// Replace implements fw.Backend: it deletes the table and creates it anew
// from cfg in one batch, so that no packet sees a half-built table.
func (b *Backend) Replace(ctx context.Context, cfg *fw.Config) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.replaceLocked(cfg)
}

func (b *Backend) replaceLocked(cfg *fw.Config) error {
	rs := fw.Compile(cfg)
	c := b.conn
	// Adding first makes the delete succeed when the table is absent.
	c.AddTable(b.table)
	c.DelTable(b.table)
	c.AddTable(b.table)
	sets := map[string]*nftables.Set{}
	for _, s := range rs.Sets {
		// nft reads a set's key byte order from its userdata; interface
		// names are host-order strings, and nft lists them as "" unless
		// the set says so.
		set := &nftables.Set{Table: b.table, Name: s.Name, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
		elems := make([]nftables.SetElement, len(s.Elements))
		for i, e := range s.Elements {
			elems[i] = nftables.SetElement{Key: ifname(e)}
		}
		if err := c.AddSet(set, elems); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		sets[s.Name] = set
	}
	m := b.mapSet()
	if err := c.AddSet(m, elements(rs.Mappings)); err != nil {
		return fmt.Errorf("map %s: %w", fw.MapMappings, err)
	}
	sets[m.Name] = m
	hp := b.hairpinSet()
	if err := c.AddSet(hp, hairpinElements(rs.Hairpin)); err != nil {
		return fmt.Errorf("map %s: %w", fw.MapHairpin, err)
	}
	sets[hp.Name] = hp
	fs, ps := b.filteredSet(), b.peersSet()
	if err := c.AddSet(fs, filteredElements(rs.Filtered)); err != nil {
		return fmt.Errorf("set %s: %w", fw.SetFiltered, err)
	}
	if err := c.AddSet(ps, peerElements(rs.Peers)); err != nil {
		return fmt.Errorf("set %s: %w", fw.SetPeers, err)
	}
	sets[fs.Name], sets[ps.Name] = fs, ps
	for _, ch := range rs.Chains {
		chain := c.AddChain(&nftables.Chain{
			Name:     ch.Name,
			Table:    b.table,
			Type:     chainTypes[ch.Type],
			Hooknum:  hooks[ch.Hook],
			Priority: priorities[ch.Priority],
			Policy:   new(nftables.ChainPolicyAccept),
		})
		for i, r := range ch.Rules {
			exprs, err := ruleExprs(r, sets)
			if err != nil {
				return fmt.Errorf("chain %s rule %d (%v): %w", ch.Name, i, r, err)
			}
			c.AddRule(&nftables.Rule{Table: b.table, Chain: chain, Exprs: exprs})
		}
	}
	if err := c.Flush(); err != nil {
		return &fw.OpError{Op: "replacing", Object: "table inet " + fw.TableName, Err: err}
	}
	var gone []fw.Mapping
	next := make(map[fw.Key]fw.Mapping, len(rs.Mappings))
	for _, m := range rs.Mappings {
		next[m.Key] = m
	}
	for k, m := range b.mappings {
		if next[k] != m {
			gone = append(gone, m)
		}
	}
	b.cfg = cfg.Clone()
	b.cfg.Mappings = nil
	b.mappings = next
	b.queueFlows(gone, func(k fw.Key) (fw.Mapping, bool) { m, ok := next[k]; return m, ok })
	b.gen = b.genLocked()
	return nil
}

// UpdateMappings implements fw.Backend.
func (b *Backend) UpdateMappings(ctx context.Context, del, add []fw.Mapping) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, hp, fs, ps := b.mapSet(), b.hairpinSet(), b.filteredSet(), b.peersSet()
	var hdel, hadd []fw.Hairpin
	var fdel, fadd []fw.Key
	var pdel, padd []fw.PeerRange
	for _, x := range del {
		hdel = append(hdel, fw.HairpinsOf(b.cfg, x)...)
		if x.Peers.Len() > 0 {
			fdel = append(fdel, x.Key)
			pdel = append(pdel, fw.PeerRangesOf(x)...)
		}
	}
	for _, x := range add {
		hadd = append(hadd, fw.HairpinsOf(b.cfg, x)...)
		if x.Peers.Len() > 0 {
			fadd = append(fadd, x.Key)
			padd = append(padd, fw.PeerRangesOf(x)...)
		}
	}
	// Deletes before adds: an edit deletes and adds the same key.
	for _, step := range []struct {
		op    func(*nftables.Set, []nftables.SetElement) error
		set   *nftables.Set
		elems []nftables.SetElement
	}{
		{b.conn.SetDeleteElements, m, elements(del)},
		{b.conn.SetDeleteElements, hp, hairpinElements(hdel)},
		{b.conn.SetDeleteElements, ps, peerElements(pdel)},
		{b.conn.SetDeleteElements, fs, filteredElements(fdel)},
		// The filter comes before the mapping it guards: no packet sees
		// the mapping open to every peer.
		{b.conn.SetAddElements, ps, peerElements(padd)},
		{b.conn.SetAddElements, fs, filteredElements(fadd)},
		{b.conn.SetAddElements, m, elements(add)},
		{b.conn.SetAddElements, hp, hairpinElements(hadd)},
	} {
		if len(step.elems) == 0 {
			continue
		}
		if err := step.op(step.set, step.elems); err != nil {
			return &fw.OpError{Op: "updating", Object: fmt.Sprintf("map %s", step.set.Name), Err: err}
		}
	}
	if err := b.conn.Flush(); err != nil {
		return &fw.OpError{Op: "updating", Object: fmt.Sprintf("map %s (-%d +%d elements)", fw.MapMappings, len(del), len(add)), Err: err}
	}
	for _, m := range del {
		delete(b.mappings, m.Key)
	}
	for _, m := range add {
		b.mappings[m.Key] = m
	}
	b.queueFlows(del, func(k fw.Key) (fw.Mapping, bool) { m, ok := b.mappings[k]; return m, ok })
	b.gen = b.genLocked()
	return nil
}

// flushFlows deletes the conntrack entries of flows that mappings created,
// so that their traffic stops at once instead of when the entries expire
// (UDP flows would otherwise go on as long as packets keep coming). A
// failure is logged: the mapping itself is already gone.
func (b *Backend) flushFlows(ms []flowCut) {
	if len(ms) == 0 || b.nl == nil {
		return
	}
	filters := make([]netlink.CustomConntrackFilter, len(ms))
	for i, m := range ms {
		filters[i] = m
	}
	n, err := b.nl.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		b.log.Warn("deleting the conntrack entries of removed mappings", "mappings", len(ms), "err", err)
		return
	}
	if n > 0 {
		b.log.Info("deleted the flows of removed mappings", "flows", n, "mappings", len(ms))
	}
}

// genLocked returns the ruleset generation, which every change to any
// table in the namespace moves on; 0 if it cannot be read.
func (b *Backend) genLocked() uint32 {
	g, err := b.conn.GetGen()
	if err != nil {
		return 0
	}
	return g.ID
}

// Check compares the table in the kernel with the state last applied and,
// if another program deleted or changed it, puts it back. It reports
// whether it did. It is cheap while nothing in the namespace's ruleset
// changed; otherwise it compares the table's sets and chains (not the
// elements of the mappings map, which would cost a dump of every element).
func (b *Backend) Check(ctx context.Context) (restored bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	gen := b.genLocked()
	if gen != 0 && gen == b.gen {
		return false, nil
	}
	why := b.differsLocked()
	if why == "" {
		b.gen = gen
		return false, nil
	}
	b.log.Warn("table inet "+fw.TableName+" was changed by another program; putting it back", "change", why)
	cfg := b.cfg.Clone()
	for _, m := range b.mappings {
		cfg.Mappings = append(cfg.Mappings, m)
	}
	if err := b.replaceLocked(cfg); err != nil {
		return false, err
	}
	return true, nil
}

// differsLocked says how the kernel's table differs from the compiled
// state, or "" if it does not.
func (b *Backend) differsLocked() string {
	if _, err := b.conn.ListTableOfFamily(fw.TableName, nftables.TableFamilyINet); err != nil {
		return "the table is gone"
	}
	want := fw.Compile(b.cfg)
	sets, err := b.conn.GetSets(b.table)
	if err != nil {
		return "listing its sets failed: " + err.Error()
	}
	have := map[string]*nftables.Set{}
	for _, s := range sets {
		have[s.Name] = s
	}
	if have[fw.MapMappings] == nil || have[fw.MapHairpin] == nil || have[fw.SetFiltered] == nil || have[fw.SetPeers] == nil {
		return "a map or a set of the mappings is gone"
	}
	for _, s := range want.Sets {
		set := have[s.Name]
		if set == nil {
			return "set " + s.Name + " is gone"
		}
		elems, err := b.conn.GetSetElements(set)
		if err != nil || len(elems) != len(s.Elements) {
			return "set " + s.Name + " has other elements"
		}
		for _, e := range elems {
			if !slices.Contains(s.Elements, unix.ByteSliceToString(e.Key)) {
				return "set " + s.Name + " has other elements"
			}
		}
	}
	chains, err := b.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return "listing its chains failed: " + err.Error()
	}
	byName := map[string]*nftables.Chain{}
	for _, c := range chains {
		if c.Table.Name == fw.TableName {
			byName[c.Name] = c
		}
	}
	if len(byName) != len(want.Chains) {
		return "it has other chains"
	}
	for _, wc := range want.Chains {
		c := byName[wc.Name]
		if c == nil {
			return "chain " + wc.Name + " is gone"
		}
		rules, err := b.conn.GetRules(b.table, c)
		if err != nil || len(rules) != len(wc.Rules) {
			return "chain " + wc.Name + " has other rules"
		}
	}
	return ""
}

var (
	chainTypes = map[string]nftables.ChainType{"nat": nftables.ChainTypeNAT, "filter": nftables.ChainTypeFilter}
	hooks      = map[string]*nftables.ChainHook{
		"prerouting":  nftables.ChainHookPrerouting,
		"input":       nftables.ChainHookInput,
		"forward":     nftables.ChainHookForward,
		"postrouting": nftables.ChainHookPostrouting,
	}
	priorities = map[string]*nftables.ChainPriority{
		"dstnat": nftables.ChainPriorityNATDest,
		"filter": nftables.ChainPriorityFilter,
		"srcnat": nftables.ChainPriorityNATSource,
		"raw":    nftables.ChainPriorityRaw,
	}
)

// ifname encodes an interface name as the kernel compares it: NUL-padded
// to IFNAMSIZ.
func ifname(s string) []byte { return appendIfname(nil, s) }

// appendIfname appends s as the kernel keys an interface name: IFNAMSIZ
// bytes, padded with zeros.
func appendIfname(b []byte, s string) []byte {
	n := len(b)
	b = append(b, make([]byte, unix.IFNAMSIZ)...)
	copy(b[n:], s)
	return b
}

// elements encodes mappings as map elements: the key is ifname (16 bytes)
// . protocol . port, the value the target. The keys and values of all the
// elements share one buffer: a restore encodes tens of thousands.
func elements(ms []fw.Mapping) []nftables.SetElement {
	out := make([]nftables.SetElement, len(ms))
	buf := make([]byte, 0, len(ms)*(unix.IFNAMSIZ+8+8))
	for i, m := range ms {
		k := len(buf)
		buf = appendIfname(buf, m.Interface)
		buf = protoPort(buf, m.Protocol, m.ExternalPort)
		v := len(buf)
		buf = appendTarget(buf, m.Target, m.InternalPort)
		out[i] = nftables.SetElement{Key: buf[k:v:v], Val: buf[v:len(buf):len(buf)]}
	}
	return out
}

// hairpinElements encodes hairpin elements: the key is the IPv4 address
// (4 bytes) . protocol . port, the value the target; one buffer holds them
// all, as in elements.
func hairpinElements(hs []fw.Hairpin) []nftables.SetElement {
	out := make([]nftables.SetElement, len(hs))
	buf := make([]byte, 0, len(hs)*(4+8+8))
	for i, h := range hs {
		k := len(buf)
		a := h.Addr.As4()
		buf = append(buf, a[:]...)
		buf = protoPort(buf, h.Protocol, h.Port)
		v := len(buf)
		buf = appendTarget(buf, h.Target, h.InternalPort)
		out[i] = nftables.SetElement{Key: buf[k:v:v], Val: buf[v:len(buf):len(buf)]}
	}
	return out
}

// filteredElements encodes the keys of filtered mappings as the mappings
// map's keys.
func filteredElements(ks []fw.Key) []nftables.SetElement {
	out := make([]nftables.SetElement, len(ks))
	for i, k := range ks {
		key := appendIfname(make([]byte, 0, unix.IFNAMSIZ+8), k.Interface)
		out[i] = nftables.SetElement{Key: protoPort(key, k.Protocol, k.ExternalPort)}
	}
	return out
}

// peerElements encodes peer ranges as elements of the interval set: the
// key is the start of the range (ifname . protocol . port . first address
// . first port), KeyEnd its inclusive end.
func peerElements(ps []fw.PeerRange) []nftables.SetElement {
	out := make([]nftables.SetElement, len(ps))
	for i, p := range ps {
		key := func(a netip.Addr, port uint16) []byte {
			b := appendIfname(make([]byte, 0, unix.IFNAMSIZ+16), p.Interface)
			b = protoPort(b, p.Protocol, p.ExternalPort)
			a4 := a.As4()
			b = append(b, a4[:]...)
			b = binary.BigEndian.AppendUint16(b, port)
			return append(b, 0, 0)
		}
		out[i] = nftables.SetElement{Key: key(p.Prefix.Masked().Addr(), p.First), KeyEnd: key(fw.LastAddr(p.Prefix), p.Last)}
	}
	return out
}

// protoPort appends to key the protocol (1 byte + 3 padding) and the port
// (2 bytes big-endian + 2 padding), as nftables lays out concatenations.
func protoPort(key []byte, p ipproto.Proto, port uint16) []byte {
	key = append(key, byte(p), 0, 0, 0)
	key = binary.BigEndian.AppendUint16(key, port)
	return append(key, 0, 0)
}

// appendTarget appends a map value: the IPv4 address and the port (2
// bytes + 2 padding).
func appendTarget(b []byte, addr netip.Addr, port uint16) []byte {
	a := addr.As4()
	b = append(b, a[:]...)
	b = binary.BigEndian.AppendUint16(b, port)
	return append(b, 0, 0)
}

// ruleExprs turns a rule's terms into netlink expressions.
func ruleExprs(r fw.Rule, sets map[string]*nftables.Set) ([]expr.Any, error) {
	var out []expr.Any
	lookup := func(key expr.MetaKey, name string, not bool) error {
		s := sets[name]
		if s == nil {
			return fmt.Errorf("no set %q", name)
		}
		out = append(out,
			&expr.Meta{Key: key, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: not})
		return nil
	}
	cmp := func(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }
	ctBits := func(key expr.CtKey, mask uint32) {
		out = append(out,
			&expr.Ct{Register: 1, Key: key},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	transport := func(offset, n uint32) *expr.Payload {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: n}
	}
	for _, t := range r {
		switch t := t.(type) {
		case fw.IIFSet:
			if err := lookup(expr.MetaKeyIIFNAME, t.Set, t.Not); err != nil {
				return nil, err
			}
		case fw.OIFSet:
			if err := lookup(expr.MetaKeyOIFNAME, t.Set, t.Not); err != nil {
				return nil, err
			}
		case fw.CtState:
			ctBits(expr.CtKeySTATE, uint32(t))
		case fw.CtStatusDNAT:
			ctBits(expr.CtKeySTATUS, 0x20) // IPS_DST_NAT
		case fw.ICMPType:
			family, proto := byte(unix.NFPROTO_IPV4), byte(unix.IPPROTO_ICMP)
			if t.V6 {
				family, proto = unix.NFPROTO_IPV6, unix.IPPROTO_ICMPV6
			}
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp([]byte{family}),
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp([]byte{proto}),
				transport(0, 1), cmp([]byte{t.Type}))
		case fw.UDPPorts:
			out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp([]byte{unix.IPPROTO_UDP}))
			if t.Sport != 0 {
				out = append(out, transport(0, 2), cmp(binaryutil.BigEndian.PutUint16(t.Sport)))
			}
			if t.Dport != 0 {
				out = append(out, transport(2, 2), cmp(binaryutil.BigEndian.PutUint16(t.Dport)))
			}
		case fw.FibSaddrIIFMissing:
			out = append(out,
				&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, FlagPRESENT: true, ResultOIF: true},
				cmp(make([]byte, 4)))
		case fw.FibSaddrLocal:
			out = append(out,
				&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
				cmp(binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)))
		case fw.SocketListens:
			out = append(out,
				&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1},
				cmp([]byte{0}))
		case fw.TCPNotSYN:
			const fin, syn, rst, ack = 0x01, 0x02, 0x04, 0x10
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp([]byte{unix.IPPROTO_TCP}),
				transport(13, 1),
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{fin | syn | rst | ack}, Xor: []byte{0}},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{syn}})
		case fw.Verdict:
			kind := expr.VerdictAccept
			if t == fw.Drop {
				kind = expr.VerdictDrop
			}
			out = append(out, &expr.Verdict{Kind: kind})
		case fw.HairpinDNAT:
			s := sets[t.Map]
			if s == nil {
				return nil, fmt.Errorf("no map %q", t.Map)
			}
			// The key: the destination address in register 8 (1), the
			// protocol in 9, the port in 10.
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp([]byte{unix.NFPROTO_IPV4}),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
				&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: s.Name, SetID: s.ID},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 9, RegProtoMax: 9, Specified: true})
		case fw.PeerDenied:
			f, p := sets[t.Filtered], sets[t.Peers]
			if f == nil || p == nil {
				return nil, fmt.Errorf("no sets %q and %q", t.Filtered, t.Peers)
			}
			// As DNATMap's key in registers 8 to 13, then the source
			// address in 14 and port in 15 for the peers set.
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 12},
				&expr.Payload{DestRegister: 13, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, SetName: f.Name, SetID: f.ID},
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 14}, &expr.Cmp{Op: expr.CmpOpEq, Register: 14, Data: []byte{unix.NFPROTO_IPV4}},
				&expr.Payload{DestRegister: 14, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Payload{DestRegister: 15, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
				&expr.Lookup{SourceRegister: 1, SetName: p.Name, SetID: p.ID, Invert: true})
		case fw.Masquerade:
			out = append(out, &expr.Masq{})
		case fw.DNATMap:
			s := sets[t.Map]
			if s == nil {
				return nil, fmt.Errorf("no map %q", t.Map)
			}
			// The key is concatenated in 32-bit registers: the ifname in
			// 8..11 (register 1), the protocol in 12, the port in 13.
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 12},
				&expr.Payload{DestRegister: 13, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: s.Name, SetID: s.ID},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 9, RegProtoMax: 9, Specified: true})
		default:
			return nil, fmt.Errorf("term %T has no netlink form", t)
		}
	}
	return out, nil
}
