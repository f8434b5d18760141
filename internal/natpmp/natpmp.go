// Package natpmp holds the messages of NAT-PMP (RFC 6886): a device on a
// private network asks the gateway for its public address and for inbound
// port mappings, over UDP to the gateway's port 5351. It parses requests
// and writes responses and announcements; it keeps no state and does no
// I/O. PCP (RFC 6887, package pcp) shares the port and tells itself apart
// by its version byte, 2 where NAT-PMP's is 0.
package natpmp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Version is NAT-PMP's version byte.
const Version = 0

// ServerPort is where a gateway takes requests; ClientPort is where
// clients hear announcements (sent to 224.0.0.1).
const (
	ServerPort = 5351
	ClientPort = 5350
)

// Opcode is a request's operation.
type Opcode uint8

// The operations: the public address, and mappings of UDP or TCP.
const (
	OpExternalAddress Opcode = 0
	OpMapUDP          Opcode = 1
	OpMapTCP          Opcode = 2
)

func (o Opcode) String() string {
	switch o {
	case OpExternalAddress:
		return "external-address"
	case OpMapUDP:
		return "map-udp"
	case OpMapTCP:
		return "map-tcp"
	}
	return fmt.Sprintf("opcode-%d", uint8(o))
}

// ResultCode is a response's result.
type ResultCode uint16

// The result codes of RFC 6886 §3.5.
const (
	Success            ResultCode = 0
	UnsupportedVersion ResultCode = 1
	NotAuthorized      ResultCode = 2 // refused, or the gateway does not map
	NetworkFailure     ResultCode = 3 // e.g. no public address yet
	OutOfResources     ResultCode = 4 // no port, or the client's quota is used
	UnsupportedOpcode  ResultCode = 5
)

func (r ResultCode) String() string {
	switch r {
	case Success:
		return "success"
	case UnsupportedVersion:
		return "unsupported version"
	case NotAuthorized:
		return "not authorized"
	case NetworkFailure:
		return "network failure"
	case OutOfResources:
		return "out of resources"
	case UnsupportedOpcode:
		return "unsupported opcode"
	}
	return fmt.Sprintf("result %d", uint16(r))
}

// Request is a parsed request.
type Request struct {
	Opcode Opcode
	// For the map opcodes: the client's port, the public port it would
	// like (0: any; ignored when deleting), and the lifetime it asks for in
	// seconds (0 deletes: with InternalPort 0, every mapping of the
	// client for that protocol).
	InternalPort  uint16
	SuggestedPort uint16
	Lifetime      uint32
}

// Delete reports whether r deletes a mapping (lifetime 0).
func (r Request) Delete() bool { return r.Opcode != OpExternalAddress && r.Lifetime == 0 }

// DeleteAll reports whether r deletes all the client's mappings of its
// protocol (lifetime 0 and internal port 0).
func (r Request) DeleteAll() bool { return r.Delete() && r.InternalPort == 0 }

// Request sizes: the external-address request is the 2-byte header, a map
// request 12 bytes.
const (
	addressRequestLen = 2
	mapRequestLen     = 12
)

// ParseRequest parses a request. When it cannot be served, it returns the
// result code the gateway answers with (UnsupportedVersion, with
// AppendVersionResponse; UnsupportedOpcode, with AppendOpcodeResponse);
// drop is set when nothing should be answered at all:
// a packet too short to name its version and opcode, a response (opcode
// 128 and up: a gateway never answers one), or a map request cut short.
func ParseRequest(b []byte) (req Request, res ResultCode, drop bool) {
	if len(b) < addressRequestLen {
		return Request{}, 0, true
	}
	req.Opcode = Opcode(b[1])
	if req.Opcode >= 128 {
		return Request{}, 0, true
	}
	if b[0] != Version {
		return req, UnsupportedVersion, false
	}
	switch req.Opcode {
	case OpExternalAddress:
		return req, Success, false
	case OpMapUDP, OpMapTCP:
		if len(b) < mapRequestLen {
			return Request{}, 0, true
		}
		// Bytes 2-3 are reserved: RFC 6886 says to set them to 0 and says
		// nothing of refusing them, so they are not checked.
		req.InternalPort = binary.BigEndian.Uint16(b[4:6])
		req.SuggestedPort = binary.BigEndian.Uint16(b[6:8])
		req.Lifetime = binary.BigEndian.Uint32(b[8:12])
		return req, Success, false
	}
	return req, UnsupportedOpcode, false
}

// AppendRequest appends r as a client sends it (for tests and tools).
func AppendRequest(b []byte, r Request) []byte {
	b = append(b, Version, byte(r.Opcode))
	if r.Opcode == OpExternalAddress {
		return b
	}
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, r.InternalPort)
	b = binary.BigEndian.AppendUint16(b, r.SuggestedPort)
	return binary.BigEndian.AppendUint32(b, r.Lifetime)
}

// header appends a response's header: version, 128 + opcode, result and
// the seconds since the epoch of the gateway's mapping state began.
func header(b []byte, op Opcode, res ResultCode, epoch uint32) []byte {
	b = append(b, Version, 128+byte(op))
	b = binary.BigEndian.AppendUint16(b, uint16(res))
	return binary.BigEndian.AppendUint32(b, epoch)
}

// AppendAddressResponse appends the answer to an external-address request
// (also the announcement sent when the address changes). addr must be an
// IPv4 address on success; an error response carries 0.0.0.0.
func AppendAddressResponse(b []byte, res ResultCode, epoch uint32, addr netip.Addr) []byte {
	b = header(b, OpExternalAddress, res, epoch)
	var a [4]byte
	if res == Success && addr.Is4() {
		a = addr.As4()
	}
	return append(b, a[:]...)
}

// AppendMapResponse appends the answer to a map request: the client's
// port, the public port mapped to it and the lifetime granted (on an
// error, the request's ports and 0).
func AppendMapResponse(b []byte, op Opcode, res ResultCode, epoch uint32, internal, external uint16, lifetime uint32) []byte {
	b = header(b, op, res, epoch)
	b = binary.BigEndian.AppendUint16(b, internal)
	b = binary.BigEndian.AppendUint16(b, external)
	return binary.BigEndian.AppendUint32(b, lifetime)
}

// AppendVersionResponse appends the answer to a request of another
// version: the 8-byte header with UnsupportedVersion (RFC 6886 §3.5).
func AppendVersionResponse(b []byte, op Opcode, epoch uint32) []byte {
	return header(b, op&127, UnsupportedVersion, epoch)
}

// maxEcho bounds what AppendOpcodeResponse returns of a request.
const maxEcho = 1100

// AppendOpcodeResponse appends the answer to a request with an opcode
// NAT-PMP does not have: the request itself with the opcode's top bit set
// and UnsupportedOpcode in the result field (RFC 6886 §3.5), at least the
// 4 bytes that field needs and at most 1,100, PCP's largest message.
func AppendOpcodeResponse(b []byte, request []byte) []byte {
	n := len(b)
	b = append(b, request[:min(len(request), maxEcho)]...)
	for len(b)-n < 4 {
		b = append(b, 0)
	}
	b[n+1] |= 128
	binary.BigEndian.PutUint16(b[n+2:n+4], uint16(UnsupportedOpcode))
	return b
}

// Response is a parsed response (what a client reads; for tests and
// tools).
type Response struct {
	Opcode Opcode
	Result ResultCode
	Epoch  uint32
	// Address is the public address of an external-address response.
	Address netip.Addr
	// InternalPort, MappedPort and Lifetime are a map response's.
	InternalPort uint16
	MappedPort   uint16
	Lifetime     uint32
}

// ParseResponse parses a response.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 8 {
		return Response{}, fmt.Errorf("natpmp: response of %d bytes, want 8 or more", len(b))
	}
	if b[0] != Version || b[1] < 128 {
		return Response{}, fmt.Errorf("natpmp: not a NAT-PMP response (version %d, opcode %d)", b[0], b[1])
	}
	r := Response{Opcode: Opcode(b[1] - 128), Result: ResultCode(binary.BigEndian.Uint16(b[2:4])), Epoch: binary.BigEndian.Uint32(b[4:8])}
	switch {
	case r.Opcode == OpExternalAddress && len(b) >= 12:
		r.Address = netip.AddrFrom4([4]byte(b[8:12]))
	case (r.Opcode == OpMapUDP || r.Opcode == OpMapTCP) && len(b) >= 16:
		r.InternalPort = binary.BigEndian.Uint16(b[8:10])
		r.MappedPort = binary.BigEndian.Uint16(b[10:12])
		r.Lifetime = binary.BigEndian.Uint32(b[12:16])
	case r.Result == Success:
		return Response{}, fmt.Errorf("natpmp: %v response of %d bytes is cut short", r.Opcode, len(b))
	}
	return r, nil
}
