package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/fw/nftfw"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/lab"
)

// nftIn opens an nftables connection in the lab's gateway.
func nftIn(l *lab.Lab) (*nftables.Conn, func(), error) {
	ns, err := netns.GetFromName(l.GW)
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting())
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return c, func() { c.CloseLasting(); ns.Close() }, nil
}

// checkElements checks that the kernel's mappings map holds what n
// mappings compile to.
func checkElements(l *lab.Lab, n int) error {
	c, done, err := nftIn(l)
	if err != nil {
		return err
	}
	defer done()
	set, err := c.GetSetByName(&nftables.Table{Family: nftables.TableFamilyINet, Name: fw.TableName}, fw.MapMappings)
	if err != nil {
		return err
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		return err
	}
	want := 0
	if n > 0 {
		want = n + 1 // the traffic mapping is tcp and udp
	}
	if len(elems) != want {
		return fmt.Errorf("the kernel holds %d mapping elements, want %d", len(elems), want)
	}
	return nil
}

// The comparator: one DNAT rule per mapping in a chain of its own table,
// as firewalld, miniupnpd and fw4 do, changed over netlink with a lasting
// socket and the rule handles kept (the fastest way for that design).
var (
	rpmTable = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: rpmTableName}
	rpmChain = &nftables.Chain{Name: "prerouting", Table: rpmTable, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}
)

func dnatRule(proto byte, port uint16) *nftables.Rule {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, "wan0")
	target := []byte{192, 168, 137, 10}
	return &nftables.Rule{Table: rpmTable, Chain: rpmChain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.Immediate{Register: 1, Data: target},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, serverPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}}
}

// buildRules makes the comparator's chain hold n mappings, the traffic
// mapping last (the newest rule, where the peers append it).
func buildRules(c *nftables.Conn, n int) error {
	c.AddTable(rpmTable)
	c.DelTable(rpmTable)
	c.AddTable(rpmTable)
	c.AddChain(rpmChain)
	for i := range max(n-1, 0) {
		c.AddRule(dnatRule(unix.IPPROTO_TCP, uint16(fillPort+i)))
		if i%2000 == 1999 {
			if err := c.Flush(); err != nil {
				return err
			}
		}
	}
	if n > 0 {
		c.AddRule(dnatRule(unix.IPPROTO_TCP, testPort))
		c.AddRule(dnatRule(unix.IPPROTO_UDP, testPort))
	}
	return c.Flush()
}

// rulesTurn stops netshare, removes its table, and builds the
// comparator's chain with n mappings; done removes it.
func rulesTurn(l *lab.Lab, n int) (*changes, func() error, error) {
	if err := l.StopDaemon(); err != nil {
		return nil, nil, err
	}
	if err := dropTable(l); err != nil {
		return nil, nil, err
	}
	c, closeConn, err := nftIn(l)
	if err != nil {
		return nil, nil, err
	}
	if err := buildRules(c, n); err != nil {
		closeConn()
		return nil, nil, fmt.Errorf("building %d rules: %w", n, err)
	}
	var rule *nftables.Rule
	var port uint16
	addRule := func() error {
		rule = c.AddRule(dnatRule(unix.IPPROTO_TCP, port))
		return c.Flush()
	}
	delRule := func() error {
		if err := c.DelRule(rule); err != nil {
			return err
		}
		return c.Flush()
	}
	ch := &changes{
		add:     func(i int) error { port = uint16(opPort + i%1000); return addRule() },
		disable: delRule,
		enable:  addRule,
		remove:  delRule,
	}
	done := func() error {
		c.AddTable(rpmTable)
		c.DelTable(rpmTable)
		err := c.Flush()
		closeConn()
		return err
	}
	return ch, done, nil
}

// tableTurn stops netshare and drives its table with n mappings through
// its nftables backend, without the API and the store: the kernel part
// of netshare's changes, timed as the comparator's rules are.
func tableTurn(l *lab.Lab, n int) (*changes, func() error, error) {
	if err := l.StopDaemon(); err != nil {
		return nil, nil, err
	}
	ns, err := netns.GetFromName(l.GW)
	if err != nil {
		return nil, nil, err
	}
	be, err := nftfw.New(ns, nil)
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	target := netip.MustParseAddr(lab.LANHost)
	mk := func(port int) fw.Mapping {
		return fw.Mapping{Key: fw.Key{Interface: "wan0", Protocol: ipproto.TCP, ExternalPort: uint16(port)}, Target: target, InternalPort: serverPort}
	}
	cfg := &fw.Config{Public: "wan0", PublicAddrs: []netip.Addr{netip.MustParseAddr(lab.GatewayWAN)}, Private: []string{"lan0"}, Firewalled: []string{"wan0"}}
	for i := range n {
		cfg.Mappings = append(cfg.Mappings, mk(fillPort+i))
	}
	ctx := context.Background()
	done := func() error {
		err := be.Remove(ctx)
		be.Close()
		ns.Close()
		return err
	}
	if err := be.Replace(ctx, cfg); err != nil {
		done()
		return nil, nil, err
	}
	var m []fw.Mapping
	return &changes{
		add: func(i int) error {
			m = []fw.Mapping{mk(opPort + i%1000)}
			return be.UpdateMappings(ctx, nil, m)
		},
		disable: func() error { return be.UpdateMappings(ctx, m, nil) },
		enable:  func() error { return be.UpdateMappings(ctx, nil, m) },
		remove:  func() error { return be.UpdateMappings(ctx, m, nil) },
	}, done, nil
}
