// Package portmap answers the devices of a private network that ask the
// gateway for port mappings of their own: NAT-PMP (RFC 6886) and PCP (RFC
// 6887), both on UDP port 5351, told apart by their version byte. It
// decides what each protocol's request means and answers with its result
// codes; what a device may have (which host, which ports, how long, how
// many) is the Leaser's to decide, and the Leaser (the model) keeps the
// mappings. Handler is the protocol logic on bytes, without sockets;
// Server serves it on a private network's address.
package portmap

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/natpmp"
	"github.com/netshare/netshare/internal/pcp"
	"github.com/netshare/netshare/internal/peers"
)

// Port is the server's UDP port, for NAT-PMP and PCP alike.
const Port = natpmp.ServerPort

// Protocol is the protocol a device asked with.
type Protocol uint8

// The protocols.
const (
	NATPMP Protocol = iota + 1
	PCP
)

func (p Protocol) String() string {
	switch p {
	case NATPMP:
		return "natpmp"
	case PCP:
		return "pcp"
	}
	return "unknown"
}

// Request asks for a mapping, or renews one: the external port of
// Target's Protocol and InternalPort.
type Request struct {
	Protocol Protocol
	// Client sent the request; Target is the host to map to (the client,
	// unless PCP's THIRD_PARTY names another and the policy allows it).
	Client, Target netip.Addr
	Proto          ipproto.Proto
	InternalPort   uint16
	// SuggestedPort is the external port asked for (0: any); with
	// PreferFailure, that port or none.
	SuggestedPort uint16
	PreferFailure bool
	Lifetime      time.Duration
	// Nonce is the PCP client's: it owns the mapping.
	Nonce [12]byte
	// Peers are PCP FILTER options: the remote peers that may use the
	// mapping, added to those it has (a /0 from any port clears them).
	Peers []peers.Filter
}

// Grant is a mapping given: its external port and how long it lasts.
type Grant struct {
	ExternalPort uint16
	Lifetime     time.Duration
}

// PeerRequest is a PCP PEER request: Target's outbound flow from
// InternalPort to Remote, whose mapping the client wants to learn and keep
// for Lifetime (0: to learn it only).
type PeerRequest struct {
	Client, Target netip.Addr
	Proto          ipproto.Proto
	InternalPort   uint16
	Remote         netip.AddrPort
	Lifetime       time.Duration
}

// PeerGrant is an outbound flow's mapping: the public address and port it
// leaves from, and how long it is kept without traffic.
type PeerGrant struct {
	External netip.AddrPort
	Lifetime time.Duration
}

// Leaser keeps the devices' mappings; the model implements it.
type Leaser interface {
	// Map creates or renews the mapping r asks for.
	Map(ctx context.Context, r Request) (Grant, error)
	// Unmap ends target's mapping of proto and internal port (nothing to
	// end is no error); a PCP mapping only with its nonce.
	Unmap(ctx context.Context, p Protocol, target netip.Addr, proto ipproto.Proto, internalPort uint16, nonce [12]byte) error
	// UnmapAll ends every mapping of target for proto.
	UnmapAll(ctx context.Context, target netip.Addr, proto ipproto.Proto) error
	// Peer returns the mapping of an outbound flow, kept for the lifetime
	// asked for (within the policy's).
	Peer(ctx context.Context, r PeerRequest) (PeerGrant, error)
	// External returns the public address mappings are made on, and when
	// the current mapping state began (the epoch the protocols report).
	// An error wrapping ErrNoPublic says there is none.
	External() (addr netip.Addr, epoch time.Time, err error)
}

// The reasons a Leaser refuses, which each protocol answers with its own
// result code. A Leaser's errors wrap them.
var (
	// ErrNoPublic: no public connection or address (NAT-PMP 3, PCP
	// NETWORK_FAILURE).
	ErrNoPublic = errors.New("no public address")
	// ErrNotAllowed: the policy does not allow it (NAT-PMP 2, PCP
	// NOT_AUTHORIZED).
	ErrNotAllowed = errors.New("not allowed")
	// ErrNotOwner: the mapping is another PCP client's (NOT_AUTHORIZED).
	ErrNotOwner = errors.New("another client's mapping")
	// ErrPortTaken: the port asked for with PreferFailure is not free
	// (PCP CANNOT_PROVIDE_EXTERNAL).
	ErrPortTaken = errors.New("port taken")
	// ErrNoPort: no port is free (NAT-PMP 4, PCP NO_RESOURCES).
	ErrNoPort = errors.New("no port free")
	// ErrQuota: the client has all the mappings it may have (NAT-PMP 4,
	// PCP USER_EX_QUOTA).
	ErrQuota = errors.New("over quota")
	// ErrTooManyPeers: the mapping would have more remote peer filters
	// than a mapping may (PCP EXCESSIVE_REMOTE_PEERS).
	ErrTooManyPeers = errors.New("too many remote peer filters")
	// ErrNoFlow: no outbound flow for a PEER request, yet (PCP
	// NO_RESOURCES, a short error: the NAT makes the mapping when the
	// flow's first packet leaves).
	ErrNoFlow = errors.New("no such outbound flow")
)

// Handler answers requests. It is safe for concurrent use. The Leaser's
// policy decides the lifetime granted (the one asked for is passed on),
// and whether a PCP client may map for another host (THIRD_PARTY).
type Handler struct {
	Leaser Leaser
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// seconds returns a lifetime asked for as a Duration.
func seconds(s uint32) time.Duration { return time.Duration(s) * time.Second }

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// Handle answers req, which came from src; it returns nil when nothing is
// to be answered.
func (h *Handler) Handle(ctx context.Context, req []byte, src netip.Addr) []byte {
	if len(req) == 0 {
		return nil
	}
	if req[0] == natpmp.Version {
		return h.natpmp(ctx, req, src)
	}
	return h.pcp(ctx, req, src)
}

// epoch returns the seconds since the mapping state began.
func (h *Handler) epoch() (netip.Addr, uint32, error) {
	addr, began, err := h.Leaser.External()
	secs := h.now().Sub(began) / time.Second
	return addr, uint32(max(secs, 0)), err
}

func (h *Handler) natpmp(ctx context.Context, b []byte, src netip.Addr) []byte {
	req, res, drop := natpmp.ParseRequest(b)
	if drop {
		return nil
	}
	addr, epoch, extErr := h.epoch()
	switch res {
	case natpmp.UnsupportedOpcode:
		return natpmp.AppendOpcodeResponse(nil, b)
	case natpmp.UnsupportedVersion:
		return natpmp.AppendVersionResponse(nil, req.Opcode, epoch)
	}
	if req.Opcode == natpmp.OpExternalAddress {
		if extErr != nil {
			return natpmp.AppendAddressResponse(nil, natpmp.NetworkFailure, epoch, netip.Addr{})
		}
		return natpmp.AppendAddressResponse(nil, natpmp.Success, epoch, addr)
	}
	proto := ipproto.UDP
	if req.Opcode == natpmp.OpMapTCP {
		proto = ipproto.TCP
	}
	if req.Delete() {
		var err error
		if req.DeleteAll() {
			err = h.Leaser.UnmapAll(ctx, src, proto)
		} else {
			err = h.Leaser.Unmap(ctx, NATPMP, src, proto, req.InternalPort, [12]byte{})
		}
		return natpmp.AppendMapResponse(nil, req.Opcode, natpmpResult(err), epoch, req.InternalPort, 0, 0)
	}
	if req.InternalPort == 0 {
		// A mapping of "all ports" only exists to be deleted.
		return natpmp.AppendMapResponse(nil, req.Opcode, natpmp.NotAuthorized, epoch, 0, 0, 0)
	}
	g, err := h.Leaser.Map(ctx, Request{Protocol: NATPMP, Client: src, Target: src, Proto: proto, InternalPort: req.InternalPort,
		SuggestedPort: req.SuggestedPort, Lifetime: seconds(req.Lifetime)})
	if err != nil {
		return natpmp.AppendMapResponse(nil, req.Opcode, natpmpResult(err), epoch, req.InternalPort, 0, 0)
	}
	return natpmp.AppendMapResponse(nil, req.Opcode, natpmp.Success, epoch, req.InternalPort, g.ExternalPort, uint32(g.Lifetime/time.Second))
}

func natpmpResult(err error) natpmp.ResultCode {
	switch {
	case err == nil:
		return natpmp.Success
	case errors.Is(err, ErrNotAllowed), errors.Is(err, ErrNotOwner):
		return natpmp.NotAuthorized
	case errors.Is(err, ErrNoPort), errors.Is(err, ErrQuota), errors.Is(err, ErrPortTaken):
		return natpmp.OutOfResources
	}
	return natpmp.NetworkFailure
}

func (h *Handler) pcp(ctx context.Context, b []byte, src netip.Addr) []byte {
	req, res, drop := pcp.ParseRequest(b)
	if drop {
		return nil
	}
	addr, epoch, extErr := h.epoch()
	fail := func(res pcp.ResultCode) []byte { return pcp.AppendErrorResponse(nil, b, res, epoch) }
	if res != pcp.Success {
		return fail(res)
	}
	if req.ClientIP != src {
		return fail(pcp.AddressMismatch)
	}
	switch req.Opcode {
	case pcp.OpAnnounce:
		return pcp.AppendResponse(nil, pcp.Response{Opcode: pcp.OpAnnounce, Epoch: epoch})
	case pcp.OpPeer:
		if extErr != nil {
			return fail(pcp.NetworkFailure)
		}
		return h.peer(ctx, req, src, epoch, fail)
	}
	target := src
	if req.ThirdParty.IsValid() {
		target = req.ThirdParty
	}
	// FILTER options: IPv4 prefixes (the mappings are IPv4), never with a
	// delete (RFC 6887 §13.3).
	var filters []peers.Filter
	for _, f := range req.Filters {
		if !f.Prefix.Addr().Is4() || req.Lifetime == 0 {
			return fail(pcp.MalformedOption)
		}
		filters = append(filters, peers.Filter{Prefix: f.Prefix, Port: f.Port})
	}
	if extErr != nil {
		return fail(pcp.NetworkFailure)
	}
	resp := pcp.Response{Opcode: pcp.OpMap, Epoch: epoch, Nonce: req.Nonce, Protocol: req.Protocol, InternalPort: req.InternalPort,
		ExternalIP: addr, ThirdParty: req.ThirdParty, PreferFailure: req.PreferFailure, Filters: req.Filters}
	if req.Lifetime == 0 {
		var err error
		switch {
		case req.Protocol == 0:
			err = errors.Join(h.Leaser.UnmapAll(ctx, target, ipproto.TCP), h.Leaser.UnmapAll(ctx, target, ipproto.UDP))
		case !ipproto.Proto(req.Protocol).Valid():
			return fail(pcp.UnsuppProtocol)
		case req.InternalPort == 0:
			err = h.Leaser.UnmapAll(ctx, target, ipproto.Proto(req.Protocol))
		default:
			err = h.Leaser.Unmap(ctx, PCP, target, ipproto.Proto(req.Protocol), req.InternalPort, req.Nonce)
		}
		if err != nil {
			return fail(pcpResult(err))
		}
		resp.ExternalPort = req.SuggestedPort
		return pcp.AppendResponse(nil, resp)
	}
	if !ipproto.Proto(req.Protocol).Valid() {
		return fail(pcp.UnsuppProtocol)
	}
	if ext := req.SuggestedExternal; req.PreferFailure && !ext.IsUnspecified() && ext != addr {
		return fail(pcp.CannotProvideExternal)
	}
	g, err := h.Leaser.Map(ctx, Request{Protocol: PCP, Client: src, Target: target, Proto: ipproto.Proto(req.Protocol), InternalPort: req.InternalPort,
		SuggestedPort: req.SuggestedPort, PreferFailure: req.PreferFailure, Lifetime: seconds(req.Lifetime), Nonce: req.Nonce, Peers: filters})
	if err != nil {
		return fail(pcpResult(err))
	}
	resp.ExternalPort, resp.Lifetime = g.ExternalPort, uint32(g.Lifetime/time.Second)
	return pcp.AppendResponse(nil, resp)
}

func pcpResult(err error) pcp.ResultCode {
	switch {
	case errors.Is(err, ErrNotAllowed), errors.Is(err, ErrNotOwner):
		return pcp.NotAuthorized
	case errors.Is(err, ErrPortTaken):
		return pcp.CannotProvideExternal
	case errors.Is(err, ErrNoPort):
		return pcp.NoResources
	case errors.Is(err, ErrQuota):
		return pcp.UserExQuota
	case errors.Is(err, ErrTooManyPeers):
		return pcp.ExcessiveRemotePeers
	case errors.Is(err, ErrNoFlow):
		return pcp.NoResources
	}
	return pcp.NetworkFailure
}

// peer answers a PEER request: the mapping the NAT gave the client's
// outbound flow to one remote peer, kept for the lifetime asked for. The
// gateway does not make one before the flow's first packet leaves (the
// NAT picks its port then): until then the answer is NO_RESOURCES, which
// a client retries.
func (h *Handler) peer(ctx context.Context, req pcp.Request, src netip.Addr, epoch uint32, fail func(pcp.ResultCode) []byte) []byte {
	target := src
	if req.ThirdParty.IsValid() {
		target = req.ThirdParty
	}
	proto := ipproto.Proto(req.Protocol)
	switch {
	case !proto.Valid():
		return fail(pcp.UnsuppProtocol)
	case req.InternalPort == 0 || req.RemotePort == 0 || !req.RemoteIP.Is4() || req.RemoteIP.IsUnspecified():
		return fail(pcp.MalformedRequest)
	}
	g, err := h.Leaser.Peer(ctx, PeerRequest{Client: src, Target: target, Proto: proto, InternalPort: req.InternalPort,
		Remote: netip.AddrPortFrom(req.RemoteIP, req.RemotePort), Lifetime: seconds(req.Lifetime)})
	if err != nil {
		return fail(pcpResult(err))
	}
	return pcp.AppendResponse(nil, pcp.Response{Opcode: pcp.OpPeer, Lifetime: uint32(g.Lifetime / time.Second), Epoch: epoch, Nonce: req.Nonce,
		Protocol: req.Protocol, InternalPort: req.InternalPort, ExternalPort: g.External.Port(), ExternalIP: g.External.Addr(),
		RemotePort: req.RemotePort, RemoteIP: req.RemoteIP, ThirdParty: req.ThirdParty})
}
