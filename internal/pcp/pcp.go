// Package pcp holds the messages of the Port Control Protocol (RFC 6887):
// a device on a private network asks the gateway for inbound mappings (MAP),
// for an outbound one towards a known peer (PEER), or whether the gateway
// lost its state (ANNOUNCE), over UDP to port 5351, which it shares with
// NAT-PMP (package natpmp, version byte 0; PCP's is 2). It parses requests
// and writes responses; it keeps no state and does no I/O. What a request
// may do (whose address, which ports, how long) is the server's to decide.
package pcp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Version is the PCP version this package speaks. Version 1 was an
// incompatible draft that must not be used (RFC 6887 §9).
const Version = 2

// MaxLen is the largest PCP message; HeaderLen the common header's size.
const (
	MaxLen    = 1100
	HeaderLen = 24
	mapLen    = 36
	peerLen   = 56
)

// Opcode is a request's operation.
type Opcode uint8

// The opcodes of RFC 6887.
const (
	OpAnnounce Opcode = 0
	OpMap      Opcode = 1
	OpPeer     Opcode = 2
)

func (o Opcode) String() string {
	switch o {
	case OpAnnounce:
		return "ANNOUNCE"
	case OpMap:
		return "MAP"
	case OpPeer:
		return "PEER"
	}
	return fmt.Sprintf("opcode-%d", uint8(o))
}

// ResultCode is a response's result.
type ResultCode uint8

// The result codes of RFC 6887 §7.4.
const (
	Success               ResultCode = 0
	UnsuppVersion         ResultCode = 1
	NotAuthorized         ResultCode = 2
	MalformedRequest      ResultCode = 3
	UnsuppOpcode          ResultCode = 4
	UnsuppOption          ResultCode = 5
	MalformedOption       ResultCode = 6
	NetworkFailure        ResultCode = 7
	NoResources           ResultCode = 8
	UnsuppProtocol        ResultCode = 9
	UserExQuota           ResultCode = 10
	CannotProvideExternal ResultCode = 11
	AddressMismatch       ResultCode = 12
	ExcessiveRemotePeers  ResultCode = 13
)

var resultNames = [...]string{"SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST", "UNSUPP_OPCODE",
	"UNSUPP_OPTION", "MALFORMED_OPTION", "NETWORK_FAILURE", "NO_RESOURCES", "UNSUPP_PROTOCOL", "USER_EX_QUOTA",
	"CANNOT_PROVIDE_EXTERNAL", "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS"}

func (r ResultCode) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("result-%d", uint8(r))
}

// Error lifetimes: how long a client should take an error to hold.
const (
	ShortErrorLifetime = 30   // seconds
	LongErrorLifetime  = 1800 // seconds
)

// ErrorLifetime is the lifetime an error response carries: short for the
// errors that may clear soon (NETWORK_FAILURE, NO_RESOURCES,
// USER_EX_QUOTA), long for the others (RFC 6887 §7.2). Success has none.
func (r ResultCode) ErrorLifetime() uint32 {
	switch r {
	case Success:
		return 0
	case NetworkFailure, NoResources, UserExQuota:
		return ShortErrorLifetime
	}
	return LongErrorLifetime
}

// Option codes. Codes under 128 must be understood by the server.
const (
	OptThirdParty    = 1
	OptPreferFailure = 2
	OptFilter        = 3
)

// Filter is a FILTER option: only remote peers in Prefix (and from Port,
// unless 0) may use the mapping. A zero-length prefix allows every peer
// and clears the mapping's filters.
type Filter struct {
	Prefix netip.Prefix
	Port   uint16
}

// Request is a parsed request.
type Request struct {
	Opcode Opcode
	// Lifetime is the lifetime asked for, in seconds (0 deletes).
	Lifetime uint32
	// ClientIP is the address the client put in the header; the server
	// compares it with the packet's source (ADDRESS_MISMATCH).
	ClientIP netip.Addr

	// For MAP and PEER. Protocol 0 means all protocols (and then
	// InternalPort must be 0); InternalPort 0 means all ports (only to
	// delete, or with protocol 0). The suggested external port and address
	// are hints (0 and the unspecified address: no hint).
	Nonce             [12]byte
	Protocol          uint8
	InternalPort      uint16
	SuggestedPort     uint16
	SuggestedExternal netip.Addr

	// For PEER: the remote peer.
	RemotePort uint16
	RemoteIP   netip.Addr

	// Options. ThirdParty is the internal host a mapping is asked for on
	// another's behalf (invalid when absent); PreferFailure asks for the
	// suggested port or nothing; Filters (MAP only) restrict the peers.
	ThirdParty    netip.Addr
	PreferFailure bool
	Filters       []Filter
}

// ParseRequest parses a request. res is the result code to answer with
// when it is not Success (with AppendErrorResponse); drop is set when
// nothing should be answered: a message under 2 bytes, or a response.
// The checks follow RFC 6887 §8.3 in its order: the version first (so that
// a client of another version learns which one this server speaks), then
// the opcode, the size, the opcode's data and the options.
func ParseRequest(b []byte) (req Request, res ResultCode, drop bool) {
	if len(b) < 2 || b[1]&0x80 != 0 {
		return Request{}, 0, true
	}
	req.Opcode = Opcode(b[1] & 0x7f)
	if b[0] != Version {
		return req, UnsuppVersion, false
	}
	if len(b) < HeaderLen || len(b) > MaxLen || len(b)%4 != 0 {
		return req, MalformedRequest, false
	}
	req.Lifetime = binary.BigEndian.Uint32(b[4:8])
	req.ClientIP = addr16(b[8:24])
	rest := b[HeaderLen:]
	switch req.Opcode {
	case OpAnnounce:
	case OpMap, OpPeer:
		d, n, ok := readOpData(req.Opcode, rest)
		if !ok {
			return req, MalformedRequest, false
		}
		req.Nonce, req.Protocol, req.InternalPort, req.SuggestedPort, req.SuggestedExternal = d.nonce, d.protocol, d.internal, d.external, d.extIP
		req.RemotePort, req.RemoteIP = d.remotePort, d.remoteIP
		if res := req.checkPorts(); res != Success {
			return req, res, false
		}
		rest = rest[n:]
	default:
		return req, UnsuppOpcode, false
	}
	return req, req.parseOptions(rest), false
}

// checkPorts refuses the port combinations RFC 6887 §11.1 and §12.1 rule
// out: protocol 0 (all) with a port, internal port 0 (all) in a MAP that
// is not a delete, and a PEER without its ports or protocol.
func (r *Request) checkPorts() ResultCode {
	switch {
	case r.Protocol == 0 && r.InternalPort != 0:
		return MalformedRequest
	case r.Opcode == OpMap && r.InternalPort == 0 && r.Protocol != 0 && r.Lifetime != 0:
		return MalformedRequest
	case r.Opcode == OpPeer && (r.Protocol == 0 || r.InternalPort == 0 || r.RemotePort == 0 || !r.RemoteIP.IsValid() || r.RemoteIP.IsUnspecified()):
		return MalformedRequest
	}
	return Success
}

// parseOptions reads the options after the opcode's data: each a 4-byte
// header (code, reserved, length) and its data padded to 4 bytes.
func (r *Request) parseOptions(b []byte) ResultCode {
	third := false
	for len(b) > 0 {
		if len(b) < 4 {
			return MalformedOption
		}
		code, n := b[0], int(binary.BigEndian.Uint16(b[2:4]))
		padded := 4 + (n+3)&^3
		if padded > len(b) {
			return MalformedOption
		}
		data := b[4 : 4+n]
		b = b[padded:]
		switch code {
		case OptThirdParty:
			if r.Opcode == OpAnnounce {
				return MalformedRequest
			}
			if n != 16 || third {
				return MalformedOption
			}
			third = true
			r.ThirdParty = addr16(data)
		case OptPreferFailure:
			if r.Opcode != OpMap {
				return MalformedRequest
			}
			if n != 0 || r.PreferFailure {
				return MalformedOption
			}
			r.PreferFailure = true
		case OptFilter:
			if r.Opcode != OpMap {
				return MalformedRequest
			}
			f, ok := parseFilter(data)
			if !ok {
				return MalformedOption
			}
			r.Filters = append(r.Filters, f)
		default:
			if code < 128 {
				return UnsuppOption
			}
			// An optional option this server does not know is skipped.
		}
	}
	return Success
}

// parseFilter reads a FILTER option's data: reserved, prefix length (of
// the 128-bit address; 96 and more for an IPv4-mapped one, or 0), remote
// port, remote address.
func parseFilter(d []byte) (Filter, bool) {
	if len(d) != 20 {
		return Filter{}, false
	}
	bits := int(d[1])
	a := netip.AddrFrom16([16]byte(d[4:20]))
	if bits > 128 {
		return Filter{}, false
	}
	if a.Is4In6() {
		if bits != 0 && bits < 96 {
			return Filter{}, false
		}
		a = a.Unmap()
		bits = max(bits-96, 0)
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return Filter{}, false
	}
	return Filter{Prefix: p, Port: binary.BigEndian.Uint16(d[2:4])}, true
}

// addr16 reads a 16-byte address field, IPv4 being IPv4-mapped.
func addr16(b []byte) netip.Addr { return netip.AddrFrom16([16]byte(b)).Unmap() }

// appendAddr16 appends a as a 16-byte field (IPv4-mapped for IPv4; zeros
// for no address).
func appendAddr16(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, make([]byte, 16)...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

// Response is what a server answers to a request it could parse: for MAP
// and PEER the request's nonce, protocol and ports with the external port
// and address assigned, and the options it honoured (PREFER_FAILURE,
// FILTER and THIRD_PARTY are echoed).
type Response struct {
	Opcode   Opcode
	Result   ResultCode
	Lifetime uint32
	Epoch    uint32

	Nonce        [12]byte
	Protocol     uint8
	InternalPort uint16
	ExternalPort uint16
	ExternalIP   netip.Addr
	RemotePort   uint16
	RemoteIP     netip.Addr

	ThirdParty    netip.Addr
	PreferFailure bool
	Filters       []Filter
}

// header appends a response's common header.
func header(b []byte, op Opcode, res ResultCode, lifetime, epoch uint32) []byte {
	b = append(b, Version, 0x80|byte(op), 0, byte(res))
	b = binary.BigEndian.AppendUint32(b, lifetime)
	b = binary.BigEndian.AppendUint32(b, epoch)
	return append(b, make([]byte, 12)...)
}

// AppendResponse appends r.
func AppendResponse(b []byte, r Response) []byte {
	b = header(b, r.Opcode, r.Result, r.Lifetime, r.Epoch)
	return appendOpData(b, r.Opcode, r.Nonce, r.Protocol, r.InternalPort, r.ExternalPort, r.ExternalIP, r.RemotePort, r.RemoteIP,
		r.ThirdParty, r.PreferFailure, r.Filters)
}

// opData is what follows the common header of a MAP or PEER message.
type opData struct {
	nonce              [12]byte
	protocol           uint8
	internal, external uint16
	extIP              netip.Addr
	remotePort         uint16
	remoteIP           netip.Addr
}

// readOpData reads a MAP or PEER message's data from b and returns its
// length; ok is false when b is too short for it.
func readOpData(op Opcode, b []byte) (d opData, n int, ok bool) {
	n = mapLen
	if op == OpPeer {
		n = peerLen
	}
	if len(b) < n {
		return opData{}, 0, false
	}
	d = opData{nonce: [12]byte(b[0:12]), protocol: b[12], internal: binary.BigEndian.Uint16(b[16:18]),
		external: binary.BigEndian.Uint16(b[18:20]), extIP: addr16(b[20:36])}
	if op == OpPeer {
		d.remotePort, d.remoteIP = binary.BigEndian.Uint16(b[36:38]), addr16(b[40:56])
	}
	return d, n, true
}

// appendOpData appends what follows the common header of a MAP or PEER
// message (request or response: the external port and address are the
// suggested ones or the assigned ones), then its options; nothing for
// another opcode.
func appendOpData(b []byte, op Opcode, nonce [12]byte, proto uint8, internal, external uint16, extIP netip.Addr,
	remotePort uint16, remoteIP netip.Addr, third netip.Addr, preferFailure bool, filters []Filter) []byte {
	if op != OpMap && op != OpPeer {
		return b
	}
	b = append(b, nonce[:]...)
	b = append(b, proto, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, internal)
	b = binary.BigEndian.AppendUint16(b, external)
	b = appendAddr16(b, extIP)
	if op == OpPeer {
		b = binary.BigEndian.AppendUint16(b, remotePort)
		b = append(b, 0, 0)
		b = appendAddr16(b, remoteIP)
	}
	return appendOptions(b, third, preferFailure, filters)
}

func appendOptions(b []byte, third netip.Addr, preferFailure bool, filters []Filter) []byte {
	if third.IsValid() {
		b = append(b, OptThirdParty, 0, 0, 16)
		b = appendAddr16(b, third)
	}
	if preferFailure {
		b = append(b, OptPreferFailure, 0, 0, 0)
	}
	for _, f := range filters {
		b = append(b, OptFilter, 0, 0, 20, 0)
		bits := f.Prefix.Bits()
		if f.Prefix.Addr().Is4() && bits > 0 {
			bits += 96
		}
		b = append(b, byte(bits))
		b = binary.BigEndian.AppendUint16(b, f.Port)
		b = appendAddr16(b, f.Prefix.Addr())
	}
	return b
}

// AppendErrorResponse appends the error response to request: the common
// header with res and its error lifetime, then what followed the
// request's header (its opcode's data and options) copied, so that the
// client can match the answer to its request (RFC 6887 §7.2, §8.3). A
// request that could not be read that far (UNSUPP_VERSION, a short
// MALFORMED_REQUEST) gets the header alone.
func AppendErrorResponse(b []byte, request []byte, res ResultCode, epoch uint32) []byte {
	op := Opcode(0)
	if len(request) > 1 {
		op = Opcode(request[1] & 0x7f)
	}
	b = header(b, op, res, res.ErrorLifetime(), epoch)
	if res == UnsuppVersion || len(request) <= HeaderLen {
		return b
	}
	rest := request[HeaderLen:min(len(request), MaxLen)]
	b = append(b, rest...)
	return append(b, make([]byte, (4-len(rest)%4)%4)...)
}

// AppendRequest appends r as a client sends it (for tests and tools).
func AppendRequest(b []byte, r Request) []byte {
	b = append(b, Version, byte(r.Opcode)&0x7f, 0, 0)
	b = binary.BigEndian.AppendUint32(b, r.Lifetime)
	b = appendAddr16(b, r.ClientIP)
	return appendOpData(b, r.Opcode, r.Nonce, r.Protocol, r.InternalPort, r.SuggestedPort, r.SuggestedExternal, r.RemotePort, r.RemoteIP,
		r.ThirdParty, r.PreferFailure, r.Filters)
}

// ParseResponse parses a response (what a client reads; for tests and
// tools). An error response's opcode data, being a copy of the request's,
// is read as a success's would be.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < HeaderLen {
		return Response{}, fmt.Errorf("pcp: response of %d bytes, want %d or more", len(b), HeaderLen)
	}
	if b[1]&0x80 == 0 {
		return Response{}, fmt.Errorf("pcp: not a response (R bit clear)")
	}
	r := Response{Opcode: Opcode(b[1] & 0x7f), Result: ResultCode(b[3]),
		Lifetime: binary.BigEndian.Uint32(b[4:8]), Epoch: binary.BigEndian.Uint32(b[8:12])}
	if b[0] != Version {
		if r.Result == UnsuppVersion {
			return r, nil
		}
		return Response{}, fmt.Errorf("pcp: response of version %d", b[0])
	}
	rest := b[HeaderLen:]
	if r.Opcode != OpMap && r.Opcode != OpPeer {
		return r, nil
	}
	d, n, ok := readOpData(r.Opcode, rest)
	if !ok {
		if r.Result != Success {
			return r, nil
		}
		return Response{}, fmt.Errorf("pcp: %v response of %d bytes is cut short", r.Opcode, len(b))
	}
	r.Nonce, r.Protocol, r.InternalPort, r.ExternalPort, r.ExternalIP = d.nonce, d.protocol, d.internal, d.external, d.extIP
	r.RemotePort, r.RemoteIP = d.remotePort, d.remoteIP
	opts := Request{Opcode: r.Opcode}
	if res := opts.parseOptions(rest[n:]); res != Success {
		return Response{}, fmt.Errorf("pcp: response options: %v", res)
	}
	r.ThirdParty, r.PreferFailure, r.Filters = opts.ThirdParty, opts.PreferFailure, opts.Filters
	return r, nil
}
