package sharing

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/store"
)

// PortRange is the ports First to Last.
type PortRange struct{ First, Last uint16 }

// Contains reports whether p is in r.
func (r PortRange) Contains(p uint16) bool { return r.First <= p && p <= r.Last }

// PortMapRule allows or denies the mappings of Clients (any when the
// prefix is zero) from External ports to Internal ones.
type PortMapRule struct {
	Allow              bool
	Clients            netip.Prefix
	External, Internal PortRange
}

// PortMapPolicy is what devices may map for themselves: one policy for
// every device-made mapping, whatever protocol asked.
type PortMapPolicy struct {
	// Rules are tried in order; the first that matches decides, and a
	// request no rule matches is refused.
	Rules []PortMapRule
	// Lifetimes asked for are clamped to [MinLifetime, MaxLifetime].
	MinLifetime, MaxLifetime time.Duration
	// Quota is how many mappings one host may have; Rate how many
	// requests a second one client may send.
	Quota int
	Rate  float64
	// AllowThirdParty lets a PCP client map for another host of the
	// private networks.
	AllowThirdParty bool
}

// DefaultPortMapPolicy lets any device of the private networks map
// external ports 1024 and up (the well-known ports are the
// administrator's to publish) to any of its own, for 2 minutes to 24 hours,
// 64 mappings a host, 20 requests a second.
var DefaultPortMapPolicy = PortMapPolicy{
	Rules:       []PortMapRule{{Allow: true, External: PortRange{1024, 65535}, Internal: PortRange{1, 65535}}},
	MinLifetime: 2 * time.Minute, MaxLifetime: 24 * time.Hour, Quota: 64, Rate: 20,
}

// allows reports whether the first rule that matches client, ext and in
// allows it; no rule matching is a denial.
func (p *PortMapPolicy) allows(client netip.Addr, ext, in uint16) bool {
	for _, r := range p.Rules {
		if (!r.Clients.IsValid() || r.Clients.Contains(client)) && r.External.Contains(ext) && r.Internal.Contains(in) {
			return r.Allow
		}
	}
	return false
}

// clamp returns the lifetime granted for one asked for.
func (p *PortMapPolicy) clamp(d time.Duration) time.Duration {
	return min(max(d, p.MinLifetime), p.MaxLifetime)
}

// maxRules bounds a policy's rules.
const maxRules = 256

func checkPolicy(p PortMapPolicy) error {
	if len(p.Rules) > maxRules {
		return hresult.Invalid("rules", "%d rules; at most %d", len(p.Rules), maxRules)
	}
	for i, r := range p.Rules {
		at := func(err error) error { return hresult.Within(fmt.Sprintf("rules[%d]", i), err) }
		if r.Clients.IsValid() && !r.Clients.Addr().Is4() {
			return at(hresult.Invalid("clients", "%s is not an IPv4 prefix", r.Clients))
		}
		for _, pr := range []struct {
			field string
			r     PortRange
		}{{"external", r.External}, {"internal", r.Internal}} {
			if pr.r.First == 0 || pr.r.First > pr.r.Last {
				return at(hresult.Invalid(pr.field, "%d-%d is not a range of ports; give FIRST-LAST, 1 to 65535", pr.r.First, pr.r.Last))
			}
		}
	}
	switch {
	case p.MinLifetime < time.Second || p.MinLifetime%time.Second != 0:
		return hresult.Invalid("minLifetime", "%v; give whole seconds, 1s or more", p.MinLifetime)
	case p.MaxLifetime < p.MinLifetime || p.MaxLifetime%time.Second != 0 || p.MaxLifetime > 365*24*time.Hour:
		return hresult.Invalid("maxLifetime", "%v; give whole seconds, from minLifetime (%v) to a year", p.MaxLifetime, p.MinLifetime)
	case p.Quota < 1 || p.Quota > 65535:
		return hresult.Invalid("quota", "%d; a host may have 1 to 65535 mappings", p.Quota)
	case !(p.Rate > 0) || p.Rate > 10000:
		return hresult.Invalid("rate", "%v; give more than 0 and at most 10000 requests a second", p.Rate)
	}
	return nil
}

// policyOf returns the stored policy as the model's, the defaults for nil.
func policyOf(s *store.PortMapPolicy) PortMapPolicy {
	if s == nil {
		return DefaultPortMapPolicy
	}
	p := PortMapPolicy{MinLifetime: time.Duration(s.MinLifetime) * time.Second, MaxLifetime: time.Duration(s.MaxLifetime) * time.Second,
		Quota: s.Quota, Rate: s.Rate, AllowThirdParty: s.AllowThirdParty}
	for _, r := range s.Rules {
		p.Rules = append(p.Rules, PortMapRule{Allow: r.Allow, Clients: r.Clients,
			External: PortRange(r.External), Internal: PortRange(r.Internal)})
	}
	return p
}

// recordOf returns p as stored.
func recordOf(p PortMapPolicy) *store.PortMapPolicy {
	s := &store.PortMapPolicy{Rules: []store.PortMapRule{}, MinLifetime: int64(p.MinLifetime / time.Second), MaxLifetime: int64(p.MaxLifetime / time.Second),
		Quota: p.Quota, Rate: p.Rate, AllowThirdParty: p.AllowThirdParty}
	for _, r := range p.Rules {
		s.Rules = append(s.Rules, store.PortMapRule{Allow: r.Allow, Clients: r.Clients,
			External: store.PortRange(r.External), Internal: store.PortRange(r.Internal)})
	}
	return s
}

// policyLocked returns the policy in force; mu or view is held.
func (m *Manager) policyLocked() PortMapPolicy { return policyOf(m.settings.PortMap) }

// PortMapPolicy returns what devices may map for themselves.
func (m *Manager) PortMapPolicy(ctx context.Context) PortMapPolicy {
	m.view.RLock()
	defer m.view.RUnlock()
	return m.policyLocked()
}

// SetPortMapPolicy replaces what devices may map for themselves. It
// applies to requests from now on; the mappings made stay until they end.
func (m *Manager) SetPortMapPolicy(ctx context.Context, p PortMapPolicy) (PortMapPolicy, error) {
	if err := checkPolicy(p); err != nil {
		return PortMapPolicy{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.settings
	set.PortMap = recordOf(p)
	if err := m.commitLocked(ctx, &change{settings: &set}); err != nil {
		return PortMapPolicy{}, err
	}
	m.log.Info("port mapping policy", "rules", len(p.Rules), "minLifetime", p.MinLifetime, "maxLifetime", p.MaxLifetime,
		"quota", p.Quota, "rate", p.Rate, "thirdParty", p.AllowThirdParty)
	return m.policyLocked(), nil
}
