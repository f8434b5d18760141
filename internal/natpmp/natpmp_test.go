package natpmp

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Request
		res  ResultCode
		drop bool
	}{
		{"external address", []byte{0, 0}, Request{Opcode: OpExternalAddress}, Success, false},
		{"external address, trailing bytes", []byte{0, 0, 9, 9}, Request{Opcode: OpExternalAddress}, Success, false},
		{"map tcp", []byte{0, 2, 0, 0, 0x1f, 0x90, 0x00, 0x50, 0, 0, 0x1c, 0x20}, Request{Opcode: OpMapTCP, InternalPort: 8080, SuggestedPort: 80, Lifetime: 7200}, Success, false},
		{"map udp, delete", []byte{0, 1, 0, 0, 0x69, 0x87, 0, 0, 0, 0, 0, 0}, Request{Opcode: OpMapUDP, InternalPort: 27015}, Success, false},
		{"map, reserved bytes set", []byte{0, 1, 0xff, 0xff, 0, 1, 0, 2, 0, 0, 0, 3}, Request{Opcode: OpMapUDP, InternalPort: 1, SuggestedPort: 2, Lifetime: 3}, Success, false},
		{"empty", nil, Request{}, 0, true},
		{"one byte", []byte{0}, Request{}, 0, true},
		{"a response", []byte{0, 128, 0, 0, 0, 0, 0, 1, 198, 51, 100, 1}, Request{}, 0, true},
		{"map cut short", []byte{0, 2, 0, 0, 0x1f, 0x90}, Request{}, 0, true},
		{"pcp's version", []byte{2, 1}, Request{Opcode: OpMapUDP}, UnsupportedVersion, false},
		{"unknown opcode", []byte{0, 3, 0, 0}, Request{Opcode: 3}, UnsupportedOpcode, false},
		{"unknown opcode, 2 bytes", []byte{0, 127}, Request{Opcode: 127}, UnsupportedOpcode, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res, drop := ParseRequest(tt.in)
			if got != tt.want || res != tt.res || drop != tt.drop {
				t.Errorf("ParseRequest(% x) = %+v, %v, drop %v; want %+v, %v, drop %v", tt.in, got, res, drop, tt.want, tt.res, tt.drop)
			}
		})
	}
}

func TestRequestKinds(t *testing.T) {
	for _, tt := range []struct {
		r                 Request
		delete, deleteAll bool
	}{
		{Request{Opcode: OpExternalAddress}, false, false},
		{Request{Opcode: OpMapTCP, InternalPort: 80, Lifetime: 60}, false, false},
		{Request{Opcode: OpMapTCP, InternalPort: 80}, true, false},
		{Request{Opcode: OpMapUDP}, true, true},
	} {
		if tt.r.Delete() != tt.delete || tt.r.DeleteAll() != tt.deleteAll {
			t.Errorf("%+v: Delete %v, DeleteAll %v", tt.r, tt.r.Delete(), tt.r.DeleteAll())
		}
	}
}

// TestResponseBytes holds the responses to RFC 6886's layouts (§3.2, §3.3,
// §3.5), byte by byte.
func TestResponseBytes(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"address", AppendAddressResponse(nil, Success, 3600, netip.MustParseAddr("198.51.100.1")),
			[]byte{0, 128, 0, 0, 0, 0, 0x0e, 0x10, 198, 51, 100, 1}},
		{"address, no public address yet", AppendAddressResponse(nil, NetworkFailure, 1, netip.MustParseAddr("198.51.100.1")),
			[]byte{0, 128, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"map tcp", AppendMapResponse(nil, OpMapTCP, Success, 7, 8080, 80, 7200),
			[]byte{0, 130, 0, 0, 0, 0, 0, 7, 0x1f, 0x90, 0, 0x50, 0, 0, 0x1c, 0x20}},
		{"map udp refused", AppendMapResponse(nil, OpMapUDP, NotAuthorized, 7, 80, 0, 0),
			[]byte{0, 129, 0, 2, 0, 0, 0, 7, 0, 0x50, 0, 0, 0, 0, 0, 0}},
		{"version", AppendVersionResponse(nil, OpMapUDP, 9),
			[]byte{0, 129, 0, 1, 0, 0, 0, 9}},
		{"opcode", AppendOpcodeResponse(nil, []byte{0, 3, 0, 0, 1, 2, 3, 4}),
			[]byte{0, 131, 0, 5, 1, 2, 3, 4}},
		{"opcode, 2 bytes", AppendOpcodeResponse(nil, []byte{0, 99}),
			[]byte{0, 227, 0, 5}},
		{"opcode, appended", AppendOpcodeResponse([]byte{7}, []byte{0, 99}),
			[]byte{7, 0, 227, 0, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Errorf("got  % x\nwant % x", tt.got, tt.want)
			}
		})
	}
	if n := len(AppendOpcodeResponse(nil, make([]byte, 4000))); n != maxEcho {
		t.Errorf("the answer to a 4,000-byte request is %d bytes, want %d", n, maxEcho)
	}
}

func TestParseResponse(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.1")
	tests := []struct {
		name    string
		in      []byte
		want    Response
		wantErr bool
	}{
		{"address", AppendAddressResponse(nil, Success, 5, addr), Response{Opcode: OpExternalAddress, Epoch: 5, Address: addr}, false},
		{"map", AppendMapResponse(nil, OpMapUDP, Success, 5, 1, 2, 3), Response{Opcode: OpMapUDP, Epoch: 5, InternalPort: 1, MappedPort: 2, Lifetime: 3}, false},
		{"version error", AppendVersionResponse(nil, OpMapTCP, 5), Response{Opcode: OpMapTCP, Result: UnsupportedVersion, Epoch: 5}, false},
		{"short", []byte{0, 128, 0, 0}, Response{}, true},
		{"a request", AppendRequest(nil, Request{Opcode: OpMapTCP, InternalPort: 1, Lifetime: 1}), Response{}, true},
		{"success cut short", AppendMapResponse(nil, OpMapUDP, Success, 5, 1, 2, 3)[:12], Response{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseResponse(% x) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzParseRequest checks that any bytes parse without panicking, and that
// a map request parsed and written again parses to the same.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte{0, 0})
	f.Add(AppendRequest(nil, Request{Opcode: OpMapTCP, InternalPort: 8080, SuggestedPort: 80, Lifetime: 7200}))
	f.Add([]byte{2, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, res, drop := ParseRequest(b)
		if drop || res != Success {
			if res == UnsupportedOpcode && len(AppendOpcodeResponse(nil, b)) < 4 {
				t.Fatal("opcode response under 4 bytes")
			}
			return
		}
		again, res2, drop2 := ParseRequest(AppendRequest(nil, req))
		if again != req || res2 != Success || drop2 {
			t.Fatalf("% x parsed as %+v, written and parsed again as %+v (%v, %v)", b, req, again, res2, drop2)
		}
	})
}
