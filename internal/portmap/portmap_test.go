package portmap

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/natpmp"
	"github.com/netshare/netshare/internal/pcp"
)

var (
	ctx    = context.Background()
	public = netip.MustParseAddr("198.51.100.1")
	client = netip.MustParseAddr("192.168.137.10")
	other  = netip.MustParseAddr("192.168.137.20")
	began  = time.Unix(1_800_000_000, 0)
	now    = began.Add(3600 * time.Second)
)

type mapKey struct {
	target netip.Addr
	proto  ipproto.Proto
	port   uint16
}

// fakeLeaser keeps mappings in a map, giving each its internal port (or
// the suggested one) as external port; err, when set, refuses everything.
type fakeLeaser struct {
	maps       map[mapKey]Request
	err        error
	noPublic   bool
	thirdParty bool // allows a client to map for another host
	calls      []string
}

func newLeaser() *fakeLeaser { return &fakeLeaser{maps: map[mapKey]Request{}} }

// Peer knows one outbound flow: client's UDP 41641 to 203.0.113.5:3478,
// leaving from the public address's port 61000.
func (f *fakeLeaser) Peer(_ context.Context, r PeerRequest) (PeerGrant, error) {
	f.calls = append(f.calls, fmt.Sprintf("peer %s %v/%d %v %v", r.Target, r.Proto, r.InternalPort, r.Remote, r.Lifetime))
	if r.Target != r.Client && !f.thirdParty {
		return PeerGrant{}, fmt.Errorf("third party: %w", ErrNotAllowed)
	}
	if r.Target != client || r.Proto != ipproto.UDP || r.InternalPort != 41641 || r.Remote != netip.MustParseAddrPort("203.0.113.5:3478") {
		return PeerGrant{}, fmt.Errorf("flow: %w", ErrNoFlow)
	}
	life := r.Lifetime
	if life == 0 {
		life = 25 * time.Second
	}
	return PeerGrant{External: netip.AddrPortFrom(public, 61000), Lifetime: life}, nil
}

func (f *fakeLeaser) Map(_ context.Context, r Request) (Grant, error) {
	f.calls = append(f.calls, fmt.Sprintf("map %v %s %v/%d %v", r.Protocol, r.Target, r.Proto, r.InternalPort, r.Lifetime))
	if f.err != nil {
		return Grant{}, f.err
	}
	if r.Target != r.Client && !f.thirdParty {
		return Grant{}, fmt.Errorf("third party: %w", ErrNotAllowed)
	}
	k := mapKey{r.Target, r.Proto, r.InternalPort}
	if old, ok := f.maps[k]; ok && old.Protocol == PCP && r.Protocol == PCP && old.Nonce != r.Nonce {
		return Grant{}, fmt.Errorf("mapping: %w", ErrNotOwner)
	}
	f.maps[k] = r
	port := r.InternalPort
	if r.SuggestedPort != 0 {
		port = r.SuggestedPort
	}
	return Grant{ExternalPort: port, Lifetime: r.Lifetime}, nil
}

func (f *fakeLeaser) Unmap(_ context.Context, p Protocol, target netip.Addr, proto ipproto.Proto, port uint16, nonce [12]byte) error {
	f.calls = append(f.calls, fmt.Sprintf("unmap %v %s %v/%d", p, target, proto, port))
	k := mapKey{target, proto, port}
	if old, ok := f.maps[k]; ok && old.Protocol == PCP && p == PCP && old.Nonce != nonce {
		return ErrNotOwner
	}
	delete(f.maps, k)
	return f.err
}

func (f *fakeLeaser) UnmapAll(_ context.Context, target netip.Addr, proto ipproto.Proto) error {
	f.calls = append(f.calls, fmt.Sprintf("unmap all %s %v", target, proto))
	for k := range f.maps {
		if k.target == target && k.proto == proto {
			delete(f.maps, k)
		}
	}
	return f.err
}

func (f *fakeLeaser) External() (netip.Addr, time.Time, error) {
	if f.noPublic {
		return netip.Addr{}, began, fmt.Errorf("wan0: %w", ErrNoPublic)
	}
	return public, began, nil
}

func handler(l *fakeLeaser) *Handler {
	return &Handler{Leaser: l, Now: func() time.Time { return now }}
}

func natpmpResp(t *testing.T, b []byte) natpmp.Response {
	t.Helper()
	r, err := natpmp.ParseResponse(b)
	if err != nil {
		t.Fatalf("% x: %v", b, err)
	}
	return r
}

func TestNATPMP(t *testing.T) {
	l := newLeaser()
	h := handler(l)
	mapReq := func(op natpmp.Opcode, internal, suggested uint16, life uint32) []byte {
		return natpmp.AppendRequest(nil, natpmp.Request{Opcode: op, InternalPort: internal, SuggestedPort: suggested, Lifetime: life})
	}
	tests := []struct {
		name string
		req  []byte
		want natpmp.Response
		call string
	}{
		{"external address", natpmp.AppendRequest(nil, natpmp.Request{}), natpmp.Response{Epoch: 3600, Address: public}, ""},
		{"map udp", mapReq(natpmp.OpMapUDP, 41641, 0, 7200), natpmp.Response{Opcode: natpmp.OpMapUDP, Epoch: 3600, InternalPort: 41641, MappedPort: 41641, Lifetime: 7200},
			"map natpmp 192.168.137.10 udp/41641 2h0m0s"},
		{"map tcp, suggested", mapReq(natpmp.OpMapTCP, 8080, 80, 3600), natpmp.Response{Opcode: natpmp.OpMapTCP, Epoch: 3600, InternalPort: 8080, MappedPort: 80, Lifetime: 3600},
			"map natpmp 192.168.137.10 tcp/8080 1h0m0s"},
		{"the lifetime the leaser grants", mapReq(natpmp.OpMapTCP, 1, 0, 5), natpmp.Response{Opcode: natpmp.OpMapTCP, Epoch: 3600, InternalPort: 1, MappedPort: 1, Lifetime: 5},
			"map natpmp 192.168.137.10 tcp/1 5s"},
		{"delete", mapReq(natpmp.OpMapUDP, 41641, 0, 0), natpmp.Response{Opcode: natpmp.OpMapUDP, Epoch: 3600, InternalPort: 41641},
			"unmap natpmp 192.168.137.10 udp/41641"},
		{"delete all", mapReq(natpmp.OpMapTCP, 0, 0, 0), natpmp.Response{Opcode: natpmp.OpMapTCP, Epoch: 3600},
			"unmap all 192.168.137.10 tcp"},
		{"all ports, not a delete", mapReq(natpmp.OpMapTCP, 0, 0, 60), natpmp.Response{Opcode: natpmp.OpMapTCP, Result: natpmp.NotAuthorized, Epoch: 3600}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l.calls = nil
			got := natpmpResp(t, h.Handle(ctx, tt.req, client))
			if got != tt.want {
				t.Errorf("answer %+v\nwant   %+v", got, tt.want)
			}
			if call := fmt.Sprint(l.calls); (tt.call == "" && len(l.calls) != 0) || (tt.call != "" && call != "["+tt.call+"]") {
				t.Errorf("leaser calls %s, want [%s]", call, tt.call)
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			err  error
			want natpmp.ResultCode
		}{
			{fmt.Errorf("x: %w", ErrNotAllowed), natpmp.NotAuthorized},
			{fmt.Errorf("x: %w", ErrQuota), natpmp.OutOfResources},
			{fmt.Errorf("x: %w", ErrNoPort), natpmp.OutOfResources},
			{fmt.Errorf("x: %w", ErrNoPublic), natpmp.NetworkFailure},
			{fmt.Errorf("disk full"), natpmp.NetworkFailure},
		} {
			l.err = tt.err
			got := natpmpResp(t, h.Handle(ctx, mapReq(natpmp.OpMapUDP, 5000, 0, 60), client))
			if got.Result != tt.want || got.MappedPort != 0 || got.Lifetime != 0 || got.InternalPort != 5000 {
				t.Errorf("%v: answer %+v, want result %v", tt.err, got, tt.want)
			}
		}
		l.err = nil
	})
	t.Run("no public address", func(t *testing.T) {
		l.noPublic = true
		defer func() { l.noPublic = false }()
		if got := natpmpResp(t, h.Handle(ctx, natpmp.AppendRequest(nil, natpmp.Request{}), client)); got.Result != natpmp.NetworkFailure || got.Address.IsValid() && !got.Address.IsUnspecified() {
			t.Errorf("answer %+v", got)
		}
	})
	t.Run("unknown opcode", func(t *testing.T) {
		got := h.Handle(ctx, []byte{0, 9, 0, 0, 1, 2}, client)
		if want := []byte{0, 137, 0, 5, 1, 2}; string(got) != string(want) {
			t.Errorf("answer % x, want % x", got, want)
		}
	})
	t.Run("nothing to answer", func(t *testing.T) {
		for _, b := range [][]byte{nil, {0}, {0, 128, 0, 0}, {0, 1, 0, 0}} {
			if got := h.Handle(ctx, b, client); got != nil {
				t.Errorf("% x answered with % x", b, got)
			}
		}
	})
}

func pcpResp(t *testing.T, b []byte) pcp.Response {
	t.Helper()
	r, err := pcp.ParseResponse(b)
	if err != nil {
		t.Fatalf("% x: %v", b, err)
	}
	return r
}

func TestPCP(t *testing.T) {
	l := newLeaser()
	h := handler(l)
	nonce := [12]byte{7, 7, 7}
	mapReq := func(mod func(*pcp.Request)) []byte {
		r := pcp.Request{Opcode: pcp.OpMap, Lifetime: 7200, ClientIP: client, Nonce: nonce, Protocol: 17, InternalPort: 41641, SuggestedPort: 41641}
		if mod != nil {
			mod(&r)
		}
		return pcp.AppendRequest(nil, r)
	}
	t.Run("map", func(t *testing.T) {
		got := pcpResp(t, h.Handle(ctx, mapReq(nil), client))
		want := pcp.Response{Opcode: pcp.OpMap, Lifetime: 7200, Epoch: 3600, Nonce: nonce, Protocol: 17, InternalPort: 41641, ExternalPort: 41641, ExternalIP: public}
		if got.Opcode != want.Opcode || got.Result != pcp.Success || got.Lifetime != want.Lifetime || got.Epoch != want.Epoch || got.Nonce != nonce ||
			got.ExternalPort != 41641 || got.ExternalIP != public || got.InternalPort != 41641 {
			t.Errorf("answer %+v\nwant   %+v", got, want)
		}
	})
	t.Run("announce", func(t *testing.T) {
		got := pcpResp(t, h.Handle(ctx, pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpAnnounce, ClientIP: client}), client))
		if got.Opcode != pcp.OpAnnounce || got.Result != pcp.Success || got.Epoch != 3600 || got.Lifetime != 0 {
			t.Errorf("answer %+v", got)
		}
	})
	for _, tt := range []struct {
		name string
		req  []byte
		src  netip.Addr
		want pcp.ResultCode
	}{
		{"another nonce", mapReq(func(r *pcp.Request) { r.Nonce = [12]byte{9} }), client, pcp.NotAuthorized},
		{"client field is not the sender", mapReq(nil), other, pcp.AddressMismatch},
		{"third party", mapReq(func(r *pcp.Request) { r.ThirdParty = other }), client, pcp.NotAuthorized},
		{"IPv6 filter", mapReq(func(r *pcp.Request) { r.Filters = []pcp.Filter{{Prefix: netip.MustParsePrefix("2001:db8::/32")}} }), client, pcp.MalformedOption},
		{"filter with a delete", mapReq(func(r *pcp.Request) {
			r.Lifetime, r.Filters = 0, []pcp.Filter{{Prefix: netip.MustParsePrefix("203.0.113.0/24")}}
		}), client, pcp.MalformedOption},
		{"peer without a flow", pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpPeer, Lifetime: 60, ClientIP: client, Protocol: 6, InternalPort: 5000, RemotePort: 443, RemoteIP: public}), client, pcp.NoResources},
		{"peer without a remote port", pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpPeer, Lifetime: 60, ClientIP: client, Protocol: 17, InternalPort: 41641, RemoteIP: public}), client, pcp.MalformedRequest},
		{"peer without a remote address", pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpPeer, Lifetime: 60, ClientIP: client, Protocol: 17, InternalPort: 41641, RemotePort: 3478, RemoteIP: netip.IPv4Unspecified()}), client, pcp.MalformedRequest},
		{"peer for all protocols", pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpPeer, Lifetime: 60, ClientIP: client, RemotePort: 3478, RemoteIP: public}), client, pcp.MalformedRequest},
		{"peer over SCTP", pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpPeer, Lifetime: 60, ClientIP: client, Protocol: 132, InternalPort: 1, RemotePort: 3478, RemoteIP: public}), client, pcp.UnsuppProtocol},
		{"peer for another host", pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpPeer, Lifetime: 60, ClientIP: client, Protocol: 17, InternalPort: 41641, RemotePort: 3478,
			RemoteIP: netip.MustParseAddr("203.0.113.5"), ThirdParty: other}), client, pcp.NotAuthorized},
		{"sctp", mapReq(func(r *pcp.Request) { r.Protocol = 132 }), client, pcp.UnsuppProtocol},
		{"all protocols", mapReq(func(r *pcp.Request) { r.Protocol, r.InternalPort = 0, 0 }), client, pcp.UnsuppProtocol},
		{"another address, prefer failure", mapReq(func(r *pcp.Request) {
			r.SuggestedExternal, r.PreferFailure = netip.MustParseAddr("203.0.113.9"), true
		}), client, pcp.CannotProvideExternal},
		{"version 1", append([]byte{1}, mapReq(nil)[1:]...), client, pcp.UnsuppVersion},
		{"malformed", mapReq(nil)[:30], client, pcp.MalformedRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := h.Handle(ctx, tt.req, tt.src)
			got := pcpResp(t, b)
			if got.Result != tt.want || got.Lifetime != tt.want.ErrorLifetime() || got.Epoch != 3600 || b[0] != pcp.Version {
				t.Errorf("answer %+v (version %d), want %v with lifetime %d", got, b[0], tt.want, tt.want.ErrorLifetime())
			}
		})
	}
	t.Run("peer", func(t *testing.T) {
		remote := netip.MustParseAddr("203.0.113.5")
		for _, life := range []uint32{600, 0} {
			req := pcp.Request{Opcode: pcp.OpPeer, Lifetime: life, ClientIP: client, Nonce: nonce, Protocol: 17, InternalPort: 41641, RemotePort: 3478, RemoteIP: remote}
			got := pcpResp(t, h.Handle(ctx, pcp.AppendRequest(nil, req), client))
			wantLife := life
			if life == 0 {
				wantLife = 25 // the flow's own time left, not extended
			}
			if got.Opcode != pcp.OpPeer || got.Result != pcp.Success || got.Lifetime != wantLife || got.Nonce != nonce || got.ExternalIP != public ||
				got.ExternalPort != 61000 || got.RemoteIP != remote || got.RemotePort != 3478 || got.InternalPort != 41641 {
				t.Errorf("lifetime %d: answer %+v", life, got)
			}
		}
	})
	t.Run("filters", func(t *testing.T) {
		filters := []pcp.Filter{{Prefix: netip.MustParsePrefix("203.0.113.0/24")}, {Prefix: netip.MustParsePrefix("198.51.100.7/32"), Port: 3478}}
		got := pcpResp(t, h.Handle(ctx, mapReq(func(r *pcp.Request) { r.Filters = filters }), client))
		if got.Result != pcp.Success || len(got.Filters) != 2 || got.Filters[1] != filters[1] {
			t.Errorf("answer %+v, want success with the filters echoed", got)
		}
		r := l.maps[mapKey{client, ipproto.UDP, 41641}]
		if len(r.Peers) != 2 || r.Peers[0].Prefix != filters[0].Prefix || r.Peers[1].Port != 3478 {
			t.Errorf("the leaser was asked for peers %v", r.Peers)
		}
	})
	t.Run("third party allowed", func(t *testing.T) {
		l.thirdParty = true
		defer func() { l.thirdParty = false }()
		got := pcpResp(t, h.Handle(ctx, mapReq(func(r *pcp.Request) { r.ThirdParty, r.InternalPort = other, 80 }), client))
		if got.Result != pcp.Success || got.ThirdParty != other {
			t.Errorf("answer %+v", got)
		}
		if _, ok := l.maps[mapKey{other, ipproto.UDP, 80}]; !ok {
			t.Errorf("mapped %v", l.maps)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			err  error
			want pcp.ResultCode
		}{
			{ErrNotAllowed, pcp.NotAuthorized},
			{ErrQuota, pcp.UserExQuota},
			{ErrNoPort, pcp.NoResources},
			{ErrPortTaken, pcp.CannotProvideExternal},
			{ErrTooManyPeers, pcp.ExcessiveRemotePeers},
			{fmt.Errorf("disk full"), pcp.NetworkFailure},
		} {
			l.err = tt.err
			if got := pcpResp(t, h.Handle(ctx, mapReq(func(r *pcp.Request) { r.InternalPort = 6000 }), client)); got.Result != tt.want || got.Lifetime != tt.want.ErrorLifetime() {
				t.Errorf("%v: answer %+v, want %v", tt.err, got, tt.want)
			}
		}
		l.err = nil
	})
	t.Run("delete", func(t *testing.T) {
		got := pcpResp(t, h.Handle(ctx, mapReq(func(r *pcp.Request) { r.Lifetime = 0 }), client))
		if got.Result != pcp.Success || got.Lifetime != 0 {
			t.Errorf("answer %+v", got)
		}
		if _, ok := l.maps[mapKey{client, ipproto.UDP, 41641}]; ok {
			t.Error("not deleted")
		}
	})
	t.Run("no public address", func(t *testing.T) {
		l.noPublic = true
		defer func() { l.noPublic = false }()
		if got := pcpResp(t, h.Handle(ctx, mapReq(nil), client)); got.Result != pcp.NetworkFailure || got.Lifetime != pcp.ShortErrorLifetime {
			t.Errorf("answer %+v", got)
		}
	})
}

// FuzzHandle feeds the handler any bytes: it never panics, and what it
// answers is at most PCP's largest message.
func FuzzHandle(f *testing.F) {
	f.Add(natpmp.AppendRequest(nil, natpmp.Request{Opcode: natpmp.OpMapTCP, InternalPort: 80, Lifetime: 60}))
	f.Add(pcp.AppendRequest(nil, pcp.Request{Opcode: pcp.OpMap, Lifetime: 60, ClientIP: client, Protocol: 6, InternalPort: 80}))
	f.Add([]byte{2, 0})
	h := handler(newLeaser())
	f.Fuzz(func(t *testing.T, b []byte) {
		if out := h.Handle(ctx, b, client); len(out) > pcp.MaxLen {
			t.Fatalf("a %d-byte answer", len(out))
		}
	})
}
