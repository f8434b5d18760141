// Package conntrack reads and changes single entries of the kernel's
// connection tracking table, found by their original tuple, over
// ctnetlink: what a PCP PEER request asks of the gateway's NAT (which
// public port an outbound flow was given, and for how long it is kept).
// It asks for one entry at a time, never for a dump of the table.
package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/netshare/netshare/internal/ipproto"
)

// Tuple is one direction of a flow.
type Tuple struct {
	Proto    ipproto.Proto
	Src, Dst netip.AddrPort
}

func (t Tuple) String() string { return fmt.Sprintf("%v %v -> %v", t.Proto, t.Src, t.Dst) }

// Flow is a conntrack entry: its original direction, its reply direction
// (after NAT: for a masqueraded flow, Reply.Dst is the public address and
// port the flow left with), and the time it has left.
type Flow struct {
	Orig, Reply Tuple
	Timeout     time.Duration
}

// ErrNotFound is returned for a flow the table does not hold.
var ErrNotFound = errors.New("no such flow")

// Table reads and changes flows.
type Table interface {
	Get(orig Tuple) (Flow, error)
	// SetTimeout gives the flow d from now.
	SetTimeout(orig Tuple, d time.Duration) error
}

// Conn is a ctnetlink socket; it is a Table.
type Conn struct{ c *netlink.Conn }

var _ Table = (*Conn)(nil)

// Dial opens a ctnetlink socket in the network namespace whose file
// descriptor is netns (0: the caller's).
func Dial(netns int) (*Conn, error) {
	c, err := netlink.Dial(netfilter, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.c.Close() }

// Netlink numbers (linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h).
const (
	netfilter         = 12 // NETLINK_NETFILTER
	subsysCtnetlink   = 1
	msgNew            = 0
	msgGet            = 1
	ctaTupleOrig      = 1
	ctaTupleReply     = 2
	ctaTimeout        = 7
	ctaTupleIP        = 1
	ctaTupleProto     = 2
	ctaIPv4Src        = 1
	ctaIPv4Dst        = 2
	ctaProtoNum       = 1
	ctaProtoSrcPort   = 2
	ctaProtoDstPort   = 3
	afInet            = 2
	nfnetlinkVersion0 = 0
)

// Get returns the flow whose original direction is orig.
func (c *Conn) Get(orig Tuple) (Flow, error) {
	ae := netlink.NewAttributeEncoder()
	if err := encodeTuple(ae, ctaTupleOrig, orig); err != nil {
		return Flow{}, err
	}
	msgs, err := c.exec(msgGet, netlink.Request|netlink.Acknowledge, ae)
	if err != nil {
		if isNotFound(err) {
			return Flow{}, fmt.Errorf("conntrack: %v: %w", orig, ErrNotFound)
		}
		return Flow{}, fmt.Errorf("conntrack: getting %v: %w", orig, err)
	}
	for _, m := range msgs {
		if f, ok := decodeFlow(m.Data); ok {
			return f, nil
		}
	}
	return Flow{}, fmt.Errorf("conntrack: %v: the kernel answered no flow", orig)
}

// SetTimeout gives the flow whose original direction is orig d from now
// (whole seconds, at least one).
func (c *Conn) SetTimeout(orig Tuple, d time.Duration) error {
	ae := netlink.NewAttributeEncoder()
	if err := encodeTuple(ae, ctaTupleOrig, orig); err != nil {
		return err
	}
	ae.Bytes(ctaTimeout, binary.BigEndian.AppendUint32(nil, uint32(max(d/time.Second, 1))))
	if _, err := c.exec(msgNew, netlink.Request|netlink.Acknowledge, ae); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("conntrack: %v: %w", orig, ErrNotFound)
		}
		return fmt.Errorf("conntrack: setting the timeout of %v: %w", orig, err)
	}
	return nil
}

func (c *Conn) exec(msg uint16, flags netlink.HeaderFlags, ae *netlink.AttributeEncoder) ([]netlink.Message, error) {
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	// nfgenmsg: family, version, resource id (big-endian).
	data := append([]byte{afInet, nfnetlinkVersion0, 0, 0}, attrs...)
	return c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(subsysCtnetlink<<8 | msg), Flags: flags},
		Data:   data,
	})
}

func isNotFound(err error) bool { return errors.Is(err, unix.ENOENT) }

func encodeTuple(ae *netlink.AttributeEncoder, typ uint16, t Tuple) error {
	if !t.Src.Addr().Is4() || !t.Dst.Addr().Is4() || !t.Proto.Valid() {
		return fmt.Errorf("conntrack: %v is not an IPv4 TCP or UDP tuple", t)
	}
	ae.Nested(typ, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(ctaTupleIP, func(ae *netlink.AttributeEncoder) error {
			s, d := t.Src.Addr().As4(), t.Dst.Addr().As4()
			ae.Bytes(ctaIPv4Src, s[:])
			ae.Bytes(ctaIPv4Dst, d[:])
			return nil
		})
		ae.Nested(ctaTupleProto, func(ae *netlink.AttributeEncoder) error {
			ae.Uint8(ctaProtoNum, uint8(t.Proto))
			ae.Bytes(ctaProtoSrcPort, binary.BigEndian.AppendUint16(nil, t.Src.Port()))
			ae.Bytes(ctaProtoDstPort, binary.BigEndian.AppendUint16(nil, t.Dst.Port()))
			return nil
		})
		return nil
	})
	return nil
}

// decodeFlow reads an IPCTNL_MSG_CT_NEW message's payload.
func decodeFlow(b []byte) (Flow, bool) {
	if len(b) < 4 {
		return Flow{}, false
	}
	ad, err := netlink.NewAttributeDecoder(b[4:])
	if err != nil {
		return Flow{}, false
	}
	var f Flow
	var orig, reply bool
	for ad.Next() {
		switch ad.Type() {
		case ctaTupleOrig:
			ad.Nested(func(nd *netlink.AttributeDecoder) error { f.Orig, orig = decodeTuple(nd); return nil })
		case ctaTupleReply:
			ad.Nested(func(nd *netlink.AttributeDecoder) error { f.Reply, reply = decodeTuple(nd); return nil })
		case ctaTimeout:
			if v := ad.Bytes(); len(v) == 4 {
				f.Timeout = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
			}
		}
	}
	return f, ad.Err() == nil && orig && reply
}

func decodeTuple(ad *netlink.AttributeDecoder) (Tuple, bool) {
	var t Tuple
	var src, dst netip.Addr
	var sport, dport uint16
	for ad.Next() {
		switch ad.Type() {
		case ctaTupleIP:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				for nd.Next() {
					v := nd.Bytes()
					if len(v) != 4 {
						continue
					}
					switch nd.Type() {
					case ctaIPv4Src:
						src = netip.AddrFrom4([4]byte(v))
					case ctaIPv4Dst:
						dst = netip.AddrFrom4([4]byte(v))
					}
				}
				return nil
			})
		case ctaTupleProto:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				for nd.Next() {
					switch nd.Type() {
					case ctaProtoNum:
						t.Proto = ipproto.Proto(nd.Uint8())
					case ctaProtoSrcPort:
						if v := nd.Bytes(); len(v) == 2 {
							sport = binary.BigEndian.Uint16(v)
						}
					case ctaProtoDstPort:
						if v := nd.Bytes(); len(v) == 2 {
							dport = binary.BigEndian.Uint16(v)
						}
					}
				}
				return nil
			})
		}
	}
	t.Src, t.Dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	return t, ad.Err() == nil && src.IsValid() && dst.IsValid()
}
