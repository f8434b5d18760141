package nftfw

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/ipproto"
)

// These tests need no root: the backend talks to a recorder instead of the
// kernel, and the tests read the netlink messages it would have sent. They
// pin the byte layouts that the kernel tests check only as root.

// recorder is a netlink peer that acknowledges every message and keeps
// them; fail, if set, makes it answer the next batch with that error, as
// the kernel refuses one.
type recorder struct {
	msgs []netlink.Message
	fail unix.Errno
}

func (r *recorder) dial(req []netlink.Message) ([]netlink.Message, error) {
	code := int32(0)
	if r.fail != 0 {
		code, r.fail = -int32(r.fail), 0
	} else {
		r.msgs = append(r.msgs, req...)
	}
	var replies []netlink.Message
	for _, m := range req {
		if m.Header.Flags&netlink.Acknowledge != 0 || code != 0 && m.Header.Type != unix.NFNL_MSG_BATCH_BEGIN && m.Header.Type != unix.NFNL_MSG_BATCH_END {
			data := binary.NativeEndian.AppendUint32(nil, uint32(code))
			if code != 0 {
				// An error carries the header of the message it refuses.
				h := make([]byte, 16)
				binary.NativeEndian.PutUint32(h[0:4], m.Header.Length)
				binary.NativeEndian.PutUint16(h[4:6], uint16(m.Header.Type))
				binary.NativeEndian.PutUint16(h[6:8], uint16(m.Header.Flags))
				binary.NativeEndian.PutUint32(h[8:12], m.Header.Sequence)
				binary.NativeEndian.PutUint32(h[12:16], m.Header.PID)
				data = append(data, h...)
			}
			replies = append(replies, netlink.Message{
				Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID},
				Data:   data,
			})
		}
	}
	return replies, nil
}

func newRecorded(t *testing.T) (*Backend, *recorder) {
	t.Helper()
	r := &recorder{}
	c, err := nftables.New(nftables.WithTestDial(r.dial))
	if err != nil {
		t.Fatal(err)
	}
	b := newOn(c, nil, nil)
	t.Cleanup(func() { b.Close() })
	return b, r
}

// msgType returns the nftables message type of m.
func msgType(m netlink.Message) uint16 { return uint16(m.Header.Type) & 0xff }

// element is one map element as sent: its key and value bytes.
type element struct{ key, val []byte }

// setElements returns, in order, the elements of the messages of type
// typ (NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM) for the set named set.
func setElements(t *testing.T, msgs []netlink.Message, typ uint16, set string) []element {
	t.Helper()
	var out []element
	for _, m := range msgs {
		if msgType(m) != typ || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:]) // after the nfgenmsg header
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var list []byte
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_ELEM_LIST_SET:
				name = ad.String()
			case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
				list = ad.Bytes()
			}
		}
		if name != set {
			continue
		}
		ld, err := netlink.NewAttributeDecoder(list)
		if err != nil {
			t.Fatal(err)
		}
		for ld.Next() {
			var e element
			ed, err := netlink.NewAttributeDecoder(ld.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			for ed.Next() {
				switch ed.Type() {
				case unix.NFTA_SET_ELEM_KEY:
					e.key = dataValue(t, ed.Bytes())
				case unix.NFTA_SET_ELEM_DATA:
					e.val = dataValue(t, ed.Bytes())
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// dataValue returns the NFTA_DATA_VALUE inside a nested data attribute.
func dataValue(t *testing.T, b []byte) []byte {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_DATA_VALUE {
			return ad.Bytes()
		}
	}
	return nil
}

func TestMessagesReplace(t *testing.T) {
	b, r := newRecorded(t)
	web := fw.Mapping{Key: fw.Key{Interface: "wan0", Protocol: ipproto.TCP, ExternalPort: 8080}, Target: netip.MustParseAddr("192.168.137.10"), InternalPort: 80}
	cfg := &fw.Config{Public: "wan0", PublicAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.2")}, Private: []string{"lan0"},
		Firewalled: []string{"wan0"}, Mappings: []fw.Mapping{web}}
	if err := b.Replace(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// One batch: begin, the table deleted and made again, ..., end.
	var types []uint16
	for _, m := range r.msgs {
		types = append(types, uint16(m.Header.Type))
	}
	// The batch, then the generation is read.
	end := slices.Index(types, unix.NFNL_MSG_BATCH_END)
	if len(types) < 4 || types[0] != unix.NFNL_MSG_BATCH_BEGIN || end < 0 || slices.Contains(types[1:end], unix.NFNL_MSG_BATCH_BEGIN) || slices.Contains(types[end+1:], unix.NFNL_MSG_BATCH_BEGIN) {
		t.Fatalf("message types %v: want one batch", types)
	}
	if msgType(r.msgs[1]) != unix.NFT_MSG_NEWTABLE || msgType(r.msgs[2]) != unix.NFT_MSG_DELTABLE || msgType(r.msgs[3]) != unix.NFT_MSG_NEWTABLE {
		t.Fatalf("the batch starts with %v; want the table added, deleted and added", types[1:4])
	}
	// The mapping's element: wan0 padded to 16 bytes, tcp and the port in
	// 4-byte registers; the value is the address and the port.
	els := setElements(t, r.msgs, unix.NFT_MSG_NEWSETELEM, fw.MapMappings)
	if len(els) != 1 {
		t.Fatalf("%d elements in map %s, want 1", len(els), fw.MapMappings)
	}
	wantKey := append(append([]byte("wan0"), make([]byte, 12)...), unix.IPPROTO_TCP, 0, 0, 0, 0x1f, 0x90, 0, 0)
	wantVal := []byte{192, 168, 137, 10, 0, 80, 0, 0}
	if !bytes.Equal(els[0].key, wantKey) || !bytes.Equal(els[0].val, wantVal) {
		t.Fatalf("element key %x value %x; want %x %x", els[0].key, els[0].val, wantKey, wantVal)
	}
	// The hairpin element: the public address, tcp, the port.
	hp := setElements(t, r.msgs, unix.NFT_MSG_NEWSETELEM, fw.MapHairpin)
	if len(hp) != 1 || !bytes.Equal(hp[0].key, []byte{198, 51, 100, 2, unix.IPPROTO_TCP, 0, 0, 0, 0x1f, 0x90, 0, 0}) || !bytes.Equal(hp[0].val, wantVal) {
		t.Fatalf("hairpin elements %x", hp)
	}
}

func TestMessagesUpdateMappings(t *testing.T) {
	b, r := newRecorded(t)
	ctx := context.Background()
	mk := func(port uint16, to string) fw.Mapping {
		return fw.Mapping{Key: fw.Key{Interface: "wan0", Protocol: ipproto.UDP, ExternalPort: port}, Target: netip.MustParseAddr(to), InternalPort: port}
	}
	if err := b.Replace(ctx, &fw.Config{Public: "wan0", Mappings: []fw.Mapping{mk(53, "10.0.0.1")}}); err != nil {
		t.Fatal(err)
	}
	r.msgs = nil
	// An edit: the old element goes and the new one comes, in one batch,
	// the delete first.
	if err := b.UpdateMappings(ctx, []fw.Mapping{mk(53, "10.0.0.1")}, []fw.Mapping{mk(53, "10.0.0.2"), mk(5353, "10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	del, add := -1, -1
	for i, m := range r.msgs {
		switch msgType(m) {
		case unix.NFT_MSG_DELSETELEM:
			del = i
		case unix.NFT_MSG_NEWSETELEM:
			if add < 0 {
				add = i
			}
		}
	}
	if del < 0 || add < 0 || del > add {
		t.Fatalf("delete at message %d, add at %d: want the delete first", del, add)
	}
	if n := len(setElements(t, r.msgs, unix.NFT_MSG_DELSETELEM, fw.MapMappings)); n != 1 {
		t.Fatalf("%d elements deleted, want 1", n)
	}
	added := setElements(t, r.msgs, unix.NFT_MSG_NEWSETELEM, fw.MapMappings)
	if len(added) != 2 || added[0].key[16] != unix.IPPROTO_UDP || !bytes.Equal(added[1].key[20:22], []byte{0x14, 0xe9}) {
		t.Fatalf("elements added %x", added)
	}
	// A refused batch is an OpError that names the map and unwraps to the
	// kernel's answer; the backend's view does not move.
	cause := unix.ENOBUFS
	r.fail = cause
	err := b.UpdateMappings(ctx, nil, []fw.Mapping{mk(9999, "10.0.0.3")})
	var oe *fw.OpError
	if !errors.As(err, &oe) || !errors.Is(err, cause) || !strings.Contains(err.Error(), "updating map mappings (-0 +1 elements)") {
		t.Fatalf("a refused batch: %v", err)
	}
	if _, ok := b.mappings[mk(9999, "10.0.0.3").Key]; ok {
		t.Fatal("a refused element is recorded as applied")
	}
	r.fail = cause
	if err := b.Replace(ctx, &fw.Config{}); !errors.As(err, &oe) || oe.Object != "table inet "+fw.TableName || !errors.Is(err, cause) {
		t.Fatalf("a refused replace: %v", err)
	}
}
