package store

import (
	"fmt"
	"net"
	"net/netip"
)

// The checks below run when a record is decoded, so that the model never
// holds an address it cannot use: a record that fails one is refused
// with its key, not replaced by a default. They check what a record must
// be to be read at all; what it means against the rest of the state (a
// pool inside its subnet, a port not used twice) is the model's to check.

func (c *Connection) check() error {
	if c.Interface == "" {
		return fmt.Errorf("no interface")
	}
	switch c.Role {
	case RoleNone, RolePublic, RolePrivate:
	default:
		return fmt.Errorf("role %q", c.Role)
	}
	if p := c.PrivateAddress; p.IsValid() && !p.Addr().Is4() {
		return fmt.Errorf("private address %s is not IPv4", p)
	}
	for _, p := range c.SavedAddrs {
		if !p.Addr().Is4() {
			return fmt.Errorf("saved address %s is not IPv4", p)
		}
	}
	if d := c.DHCP; d != nil {
		for _, a := range []struct {
			name string
			addr netip.Addr
		}{{"pool start", d.PoolStart}, {"pool end", d.PoolEnd}, {"router", d.Router}, {"DNS server", d.DNSServer}} {
			if a.addr.IsValid() && !a.addr.Is4() {
				return fmt.Errorf("DHCP %s %s is not IPv4", a.name, a.addr)
			}
		}
		if d.LeaseSeconds < 0 {
			return fmt.Errorf("DHCP lease time %d s", d.LeaseSeconds)
		}
		for _, r := range d.Reservations {
			if _, err := net.ParseMAC(r.MAC); err != nil {
				return fmt.Errorf("DHCP reservation: %w", err)
			}
			if !r.IP.Is4() {
				return fmt.Errorf("DHCP reservation for %s: address %v is not IPv4", r.MAC, r.IP)
			}
		}
	}
	return nil
}

func (l *Lease) check() error {
	if l.Connection == "" {
		return fmt.Errorf("no connection")
	}
	if !l.IP.Is4() {
		return fmt.Errorf("address %v is not IPv4", l.IP)
	}
	if !l.Declined {
		if _, err := net.ParseMAC(l.MAC); err != nil {
			return err
		}
	}
	return nil
}

func (s *Settings) check() error {
	for _, u := range s.Upstreams {
		if _, err := ParseUpstream(u); err != nil {
			return err
		}
	}
	for name, a := range s.Hosts {
		if !a.Is4() {
			return fmt.Errorf("host %q: address %v is not IPv4", name, a)
		}
	}
	if p := s.PortMap; p != nil {
		for i, r := range p.Rules {
			if r.Clients.IsValid() && !r.Clients.Addr().Is4() {
				return fmt.Errorf("port mapping rule %d: clients %s are not IPv4", i, r.Clients)
			}
			for _, pr := range []PortRange{r.External, r.Internal} {
				if pr.First == 0 || pr.First > pr.Last {
					return fmt.Errorf("port mapping rule %d: ports %d-%d", i, pr.First, pr.Last)
				}
			}
		}
		if p.MinLifetime <= 0 || p.MaxLifetime < p.MinLifetime || p.Quota < 1 || !(p.Rate > 0) {
			return fmt.Errorf("port mapping policy: lifetimes %d-%d s, quota %d, rate %v", p.MinLifetime, p.MaxLifetime, p.Quota, p.Rate)
		}
	}
	return nil
}

// ParseUpstream parses a DNS server: an IP address, with or without a
// port (53 when none is given).
func ParseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("DNS server %q: port 0", s)
		}
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("DNS server %q is not an IP address, with or without a port", s)
	}
	return netip.AddrPortFrom(a, 53), nil
}
