package pcp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
)

var (
	client = netip.MustParseAddr("192.168.137.10")
	public = netip.MustParseAddr("198.51.100.1")
	nonce  = [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
)

func mapRequest(mod func(*Request)) []byte {
	r := Request{Opcode: OpMap, Lifetime: 7200, ClientIP: client, Nonce: nonce, Protocol: 17, InternalPort: 41641, SuggestedPort: 41641}
	if mod != nil {
		mod(&r)
	}
	return AppendRequest(nil, r)
}

// withOption appends a raw option (code, length, data padded) to b.
func withOption(b []byte, code byte, data []byte) []byte {
	b = append(b, code, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	b = append(b, data...)
	return append(b, make([]byte, (4-len(data)%4)%4)...)
}

func TestMapRequestBytes(t *testing.T) {
	// RFC 6887 §7.1 and §11.1, written out: the common header, then the
	// MAP data, with the addresses IPv4-mapped.
	want := []byte{
		2, 1, 0, 0, 0, 0, 0x1c, 0x20,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 137, 10,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
		17, 0, 0, 0, 0xa2, 0xa9, 0xa2, 0xa9,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0,
	}
	got := mapRequest(func(r *Request) { r.SuggestedExternal = netip.IPv4Unspecified() })
	if !bytes.Equal(got, want) {
		t.Fatalf("MAP request\n got % x\nwant % x", got, want)
	}
}

func TestParseRequest(t *testing.T) {
	filterData := func(bits byte, port uint16, a string) []byte {
		d := []byte{0, bits}
		d = binary.BigEndian.AppendUint16(d, port)
		a16 := netip.MustParseAddr(a).As16()
		return append(d, a16[:]...)
	}
	third := netip.MustParseAddr("192.168.137.20").As16()
	tests := []struct {
		name string
		in   []byte
		res  ResultCode
		drop bool
		want func(*Request) // checks of the parsed request, when res is Success
	}{
		{"map", mapRequest(nil), Success, false, func(r *Request) {
			if r.ClientIP != client || r.Nonce != nonce || r.Protocol != 17 || r.InternalPort != 41641 || r.Lifetime != 7200 || r.SuggestedExternal != netip.IPv6Unspecified() {
				t.Errorf("parsed %+v", r)
			}
		}},
		{"announce", AppendRequest(nil, Request{Opcode: OpAnnounce, ClientIP: client}), Success, false, nil},
		{"peer", AppendRequest(nil, Request{Opcode: OpPeer, Lifetime: 60, ClientIP: client, Nonce: nonce, Protocol: 6, InternalPort: 5000, RemotePort: 443, RemoteIP: public}), Success, false, func(r *Request) {
			if r.RemotePort != 443 || r.RemoteIP != public {
				t.Errorf("parsed %+v", r)
			}
		}},
		{"delete all of a protocol", mapRequest(func(r *Request) { r.InternalPort, r.Lifetime = 0, 0 }), Success, false, nil},
		{"all protocols", mapRequest(func(r *Request) { r.Protocol, r.InternalPort = 0, 0 }), Success, false, nil},
		{"options", withOption(withOption(withOption(withOption(mapRequest(nil), OptThirdParty, third[:]), OptPreferFailure, nil),
			OptFilter, filterData(120, 443, "::ffff:203.0.113.0")), 200, []byte{1, 2, 3}), Success, false, func(r *Request) {
			want := []Filter{{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Port: 443}}
			if r.ThirdParty != netip.MustParseAddr("192.168.137.20") || !r.PreferFailure || !reflect.DeepEqual(r.Filters, want) {
				t.Errorf("options %v %v %v", r.ThirdParty, r.PreferFailure, r.Filters)
			}
		}},
		{"filter clearing", withOption(mapRequest(nil), OptFilter, filterData(0, 0, "::")), Success, false, func(r *Request) {
			if len(r.Filters) != 1 || r.Filters[0].Prefix.Bits() != 0 {
				t.Errorf("filters %v", r.Filters)
			}
		}},

		{"empty", nil, 0, true, nil},
		{"one byte", []byte{2}, 0, true, nil},
		{"a response", AppendResponse(nil, Response{Opcode: OpMap}), 0, true, nil},
		{"nat-pmp", []byte{0, 0}, UnsuppVersion, false, nil},
		{"version 1", append([]byte{1}, mapRequest(nil)[1:]...), UnsuppVersion, false, nil},
		{"version 3", append([]byte{3}, mapRequest(nil)[1:]...), UnsuppVersion, false, nil},
		{"short", mapRequest(nil)[:20], MalformedRequest, false, nil},
		{"not a multiple of 4", append(mapRequest(nil), 0), MalformedRequest, false, nil},
		{"too long", withOption(mapRequest(nil), 200, make([]byte, 1100)), MalformedRequest, false, nil},
		{"map data short", mapRequest(nil)[:48], MalformedRequest, false, nil},
		{"unknown opcode", append([]byte{2, 9}, mapRequest(nil)[2:]...), UnsuppOpcode, false, nil},
		{"protocol 0 with a port", mapRequest(func(r *Request) { r.Protocol = 0 }), MalformedRequest, false, nil},
		{"port 0, not a delete", mapRequest(func(r *Request) { r.InternalPort = 0 }), MalformedRequest, false, nil},
		{"peer without remote", AppendRequest(nil, Request{Opcode: OpPeer, Lifetime: 60, ClientIP: client, Protocol: 6, InternalPort: 5000}), MalformedRequest, false, nil},
		{"unknown mandatory option", withOption(mapRequest(nil), 99, nil), UnsuppOption, false, nil},
		{"option cut short", append(mapRequest(nil), OptPreferFailure, 0, 0, 8), MalformedOption, false, nil},
		{"third party twice", withOption(withOption(mapRequest(nil), OptThirdParty, third[:]), OptThirdParty, third[:]), MalformedOption, false, nil},
		{"third party of 4 bytes", withOption(mapRequest(nil), OptThirdParty, []byte{192, 168, 137, 20}), MalformedOption, false, nil},
		{"prefer failure twice", withOption(withOption(mapRequest(nil), OptPreferFailure, nil), OptPreferFailure, nil), MalformedOption, false, nil},
		{"prefer failure with data", withOption(mapRequest(nil), OptPreferFailure, []byte{1, 2, 3, 4}), MalformedOption, false, nil},
		{"filter in peer", withOption(AppendRequest(nil, Request{Opcode: OpPeer, Lifetime: 60, ClientIP: client, Protocol: 6, InternalPort: 5000, RemotePort: 443, RemoteIP: public}), OptFilter, filterData(128, 0, "::ffff:203.0.113.1")), MalformedRequest, false, nil},
		{"option in announce", withOption(AppendRequest(nil, Request{Opcode: OpAnnounce}), OptThirdParty, third[:]), MalformedRequest, false, nil},
		{"filter prefix over 128", withOption(mapRequest(nil), OptFilter, filterData(129, 0, "2001:db8::")), MalformedOption, false, nil},
		{"filter v4 prefix under 96", withOption(mapRequest(nil), OptFilter, filterData(64, 0, "::ffff:203.0.113.0")), MalformedOption, false, nil},
		{"filter of 16 bytes", withOption(mapRequest(nil), OptFilter, make([]byte, 16)), MalformedOption, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, res, drop := ParseRequest(tt.in)
			if res != tt.res || drop != tt.drop {
				t.Fatalf("ParseRequest = %v, drop %v; want %v, drop %v", res, drop, tt.res, tt.drop)
			}
			if tt.want != nil {
				tt.want(&req)
			}
		})
	}
}

func TestErrorLifetimes(t *testing.T) {
	for r := ResultCode(0); r <= ExcessiveRemotePeers; r++ {
		want := uint32(LongErrorLifetime)
		switch r {
		case Success:
			want = 0
		case NetworkFailure, NoResources, UserExQuota:
			want = ShortErrorLifetime
		}
		if got := r.ErrorLifetime(); got != want {
			t.Errorf("%v: lifetime %d, want %d", r, got, want)
		}
	}
}

func TestErrorResponse(t *testing.T) {
	req := mapRequest(nil)
	got := AppendErrorResponse(nil, req, NotAuthorized, 42)
	want := append([]byte{2, 0x81, 0, 2, 0, 0, 0x07, 0x08, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, req[HeaderLen:]...)
	if !bytes.Equal(got, want) {
		t.Errorf("NOT_AUTHORIZED\n got % x\nwant % x", got, want)
	}
	r, err := ParseResponse(got)
	if err != nil || r.Result != NotAuthorized || r.Lifetime != LongErrorLifetime || r.Nonce != nonce || r.InternalPort != 41641 {
		t.Errorf("read back as %+v, %v", r, err)
	}
	// A NAT-PMP request: the header alone, naming version 2.
	got = AppendErrorResponse(nil, []byte{0, 1, 0, 0}, UnsuppVersion, 42)
	if len(got) != HeaderLen || got[0] != Version || got[1] != 0x81 || got[3] != byte(UnsuppVersion) {
		t.Errorf("UNSUPP_VERSION % x", got)
	}
	// Bounded and a multiple of 4, whatever came in.
	for _, n := range []int{25, 27, 1100, 1101, 4000} {
		got := AppendErrorResponse(nil, append(mapRequest(nil)[:HeaderLen], make([]byte, n-HeaderLen)...), MalformedRequest, 1)
		if len(got) > MaxLen || len(got)%4 != 0 {
			t.Errorf("a %d-byte request is answered with %d bytes", n, len(got))
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, r := range []Response{
		{Opcode: OpAnnounce, Epoch: 99},
		{Opcode: OpMap, Lifetime: 7200, Epoch: 5, Nonce: nonce, Protocol: 6, InternalPort: 80, ExternalPort: 8080, ExternalIP: public},
		{Opcode: OpMap, Lifetime: 120, Epoch: 5, Nonce: nonce, Protocol: 17, InternalPort: 1, ExternalPort: 1, ExternalIP: public,
			ThirdParty: netip.MustParseAddr("192.168.137.20"), PreferFailure: true,
			Filters: []Filter{{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Port: 443}, {Prefix: netip.MustParsePrefix("2001:db8::/32")}}},
		{Opcode: OpPeer, Lifetime: 60, Epoch: 5, Nonce: nonce, Protocol: 6, InternalPort: 5000, ExternalPort: 5000, ExternalIP: public, RemotePort: 443, RemoteIP: netip.MustParseAddr("203.0.113.7")},
	} {
		t.Run(r.Opcode.String(), func(t *testing.T) {
			b := AppendResponse(nil, r)
			if len(b)%4 != 0 {
				t.Errorf("%d bytes", len(b))
			}
			got, err := ParseResponse(b)
			if err != nil || !reflect.DeepEqual(got, r) {
				t.Errorf("round trip:\n got %+v, %v\nwant %+v", got, err, r)
			}
		})
	}
}

// FuzzParseRequest checks that any bytes parse without panicking, that an
// error's answer is bounded and whole words, and that a request parsed,
// written and parsed again is written the same.
func FuzzParseRequest(f *testing.F) {
	f.Add(mapRequest(nil))
	f.Add(AppendRequest(nil, Request{Opcode: OpAnnounce}))
	f.Add(AppendRequest(nil, Request{Opcode: OpPeer, Lifetime: 60, ClientIP: client, Protocol: 6, InternalPort: 5000, RemotePort: 443, RemoteIP: public}))
	f.Add(withOption(withOption(mapRequest(nil), OptPreferFailure, nil), OptFilter, append([]byte{0, 120, 1, 187}, netip.MustParseAddr("::ffff:203.0.113.0").AsSlice()...)))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, res, drop := ParseRequest(b)
		if drop {
			return
		}
		if res != Success {
			if e := AppendErrorResponse(nil, b, res, 1); len(e) > MaxLen || len(e)%4 != 0 || len(e) < HeaderLen {
				t.Fatalf("error answer of %d bytes", len(e))
			}
			return
		}
		once := AppendRequest(nil, req)
		again, res2, _ := ParseRequest(once)
		if res2 != Success {
			t.Fatalf("% x parsed, written as % x, refused: %v", b, once, res2)
		}
		if twice := AppendRequest(nil, again); !bytes.Equal(once, twice) {
			t.Fatalf("written differently:\n% x\n% x", once, twice)
		}
	})
}
