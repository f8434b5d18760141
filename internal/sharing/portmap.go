package sharing

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/portmap"
)

// PortMapper returns the model as the NAT-PMP and PCP server sees it: the
// keeper of the devices' mappings.
func (m *Manager) PortMapper() portmap.Leaser { return portMapper{m} }

type portMapper struct{ m *Manager }

var _ portmap.Leaser = portMapper{}

func (p portMapper) Map(ctx context.Context, r portmap.Request) (portmap.Grant, error) {
	origin := OriginNATPMP
	if r.Protocol == portmap.PCP {
		origin = OriginPCP
	}
	mp, err := p.m.LeaseMapping(ctx, LeaseRequest{Origin: origin, Client: r.Client, Target: r.Target, Protocol: r.Proto,
		InternalPort: r.InternalPort, SuggestedPort: r.SuggestedPort, PreferFailure: r.PreferFailure, Lifetime: r.Lifetime, Nonce: r.Nonce})
	if err != nil {
		return portmap.Grant{}, portmapErr(err)
	}
	return portmap.Grant{ExternalPort: mp.ExternalPort, Lifetime: r.Lifetime}, nil
}

func (p portMapper) Unmap(ctx context.Context, proto portmap.Protocol, target netip.Addr, ip ipproto.Proto, internalPort uint16, nonce [12]byte) error {
	origin := OriginNATPMP
	if proto == portmap.PCP {
		origin = OriginPCP
	}
	return portmapErr(p.m.ReleaseMapping(ctx, origin, target, ip, internalPort, nonce))
}

func (p portMapper) UnmapAll(ctx context.Context, target netip.Addr, ip ipproto.Proto) error {
	return portmapErr(p.m.ReleaseAll(ctx, target, ip))
}

func (p portMapper) External() (netip.Addr, time.Time, error) {
	epoch := p.m.portMapEpoch()
	for _, a := range p.m.PublicAddrs() {
		if a.Is4() {
			return a, epoch, nil
		}
	}
	return netip.Addr{}, epoch, portmap.ErrNoPublic
}

// portmapErr says, for the server, which of its reasons err is.
func portmapErr(err error) error {
	for _, e := range []struct{ model, server error }{
		{ErrNoPublic, portmap.ErrNoPublic},
		{ErrNotOwner, portmap.ErrNotOwner},
		{ErrPortTaken, portmap.ErrPortTaken},
		{ErrNoPort, portmap.ErrNoPort},
		{ErrQuota, portmap.ErrQuota},
	} {
		if errors.Is(err, e.model) {
			return fmt.Errorf("%w: %w", e.server, err)
		}
	}
	return err
}

// portMapEpoch returns when the devices' mapping state began.
func (m *Manager) portMapEpoch() time.Time {
	m.view.RLock()
	defer m.view.RUnlock()
	return m.pmEpoch
}
