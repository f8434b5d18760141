package api

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/sharing"
)

// The conversions between the wire types of hnetcfg and the model's.
// Parsing a request checks what the wire can get wrong (a string that is
// not an address, a port out of range, a word that is not a protocol)
// and names the field; what a value means against the state (a pool
// inside its subnet, a port not used twice) is the model's to check.

// Wire names of the model's enums, indexed by the enum.
var (
	statusNames = [...]hnetcfg.Status{
		sharing.StatusDisconnected:       hnetcfg.NCS_DISCONNECTED,
		sharing.StatusConnected:          hnetcfg.NCS_CONNECTED,
		sharing.StatusHardwareNotPresent: hnetcfg.NCS_HARDWARE_NOT_PRESENT,
		sharing.StatusHardwareDisabled:   hnetcfg.NCS_HARDWARE_DISABLED,
		sharing.StatusMediaDisconnected:  hnetcfg.NCS_MEDIA_DISCONNECTED,
		sharing.StatusInvalidAddress:     hnetcfg.NCS_INVALID_ADDRESS,
	}
	mediaNames = [...]hnetcfg.MediaType{
		sharing.MediaNone:   hnetcfg.NCM_NONE,
		sharing.MediaLAN:    hnetcfg.NCM_LAN,
		sharing.MediaTunnel: hnetcfg.NCM_TUNNEL,
		sharing.MediaPPPoE:  hnetcfg.NCM_PPPOE,
		sharing.MediaBridge: hnetcfg.NCM_BRIDGE,
	}
	characteristicNames = []struct {
		flag sharing.Characteristics
		name hnetcfg.Characteristic
	}{
		{sharing.CharAllUsers, hnetcfg.NCCF_ALL_USERS},
		{sharing.CharAllowRename, hnetcfg.NCCF_ALLOW_RENAME},
		{sharing.CharShared, hnetcfg.NCCF_SHARED},
		{sharing.CharSharedPrivate, hnetcfg.NCCF_SHARED_PRIVATE},
		{sharing.CharFirewalled, hnetcfg.NCCF_FIREWALLED},
	}
)

func connectionProps(c sharing.Connection) hnetcfg.ConnectionProps {
	p := hnetcfg.ConnectionProps{
		ID:              c.ID,
		Name:            c.Name,
		Interface:       c.Interface,
		DeviceName:      c.Device,
		Status:          statusNames[c.Status],
		MediaType:       mediaNames[c.Media],
		Characteristics: []hnetcfg.Characteristic{},
		FirewallEnabled: c.Firewall,
		AllowPing:       c.AllowPing,
		NATTraversal:    c.NATTraversal,
	}
	for _, ch := range characteristicNames {
		if c.Characteristics&ch.flag != 0 {
			p.Characteristics = append(p.Characteristics, ch.name)
		}
	}
	if c.Role != sharing.RoleNone {
		p.Sharing = hnetcfg.SharingState{Enabled: true, Type: hnetcfg.SharingConnectionType(c.Role), Address: prefixText(c.PrivateAddress)}
	}
	return p
}

func connectionList(cs []sharing.Connection) []hnetcfg.ConnectionProps {
	out := make([]hnetcfg.ConnectionProps, len(cs))
	for i, c := range cs {
		out[i] = connectionProps(c)
	}
	return out
}

func overview(o sharing.Overview) hnetcfg.SharingOverview {
	return hnetcfg.SharingOverview{Installed: true, Public: connectionList(o.Public), Private: connectionList(o.Private),
		PublicAddress: addrText(o.PublicAddress), BehindNAT: o.BehindNAT}
}

// sharingRole parses the role of a request to share; "" is not one.
func sharingRole(field string, t hnetcfg.SharingConnectionType) (sharing.Role, error) {
	switch t {
	case hnetcfg.ICSSHARINGTYPE_PUBLIC:
		return sharing.RolePublic, nil
	case hnetcfg.ICSSHARINGTYPE_PRIVATE:
		return sharing.RolePrivate, nil
	}
	return sharing.RoleNone, hresult.Invalid(field, "%q is not a sharing type; use public or private", t)
}

// privateAddress parses a private connection's address; "" is the zero
// Prefix.
func privateAddress(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, hresult.Invalid("address", "%q is not an address with a prefix length; give one such as 192.168.137.1/24", s)
	}
	return p, nil
}

// mappingProps is a mapping as the wire has it. The answers are written by
// appendMapping, without reflection; the tests hold it to encoding/json's
// encoding of this.
func mappingProps(m sharing.Mapping) hnetcfg.PortMappingProps {
	p := hnetcfg.PortMappingProps{
		ID:                m.ID.String(),
		Name:              m.Name,
		Protocol:          hnetcfg.Protocol(m.Protocol.String()),
		ExternalPort:      int(m.ExternalPort),
		InternalPort:      int(m.InternalPort),
		TargetName:        m.Target.Name,
		TargetIPAddress:   addrText(m.Target.IP),
		Enabled:           m.Enabled,
		Options:           int(m.Options),
		ResolvedIPAddress: addrText(m.Resolved),
		Unresolved:        m.Unresolved,
	}
	if m.ApplyError != nil {
		p.ApplyError = m.ApplyError.Error()
	}
	p.Origin = hnetcfg.MappingOrigin(m.Origin.String())
	p.Client = addrText(m.Client)
	if !m.Expires.IsZero() {
		p.Expires = m.Expires.UTC().Format(time.RFC3339)
	}
	for _, f := range m.Peers.All() {
		p.RemotePeers = append(p.RemotePeers, f.String())
	}
	return p
}

// maxPage bounds a page of mappings.
const maxPage = 10000

// mappingFilter parses the query of a mapping list: enabled=true,
// origin=user|natpmp|pcp|upnp, client=ADDRESS, q=TEXT, after=ID, limit=N.
func mappingFilter(q url.Values) (sharing.MappingFilter, error) {
	var f sharing.MappingFilter
	switch v := q.Get("enabled"); v {
	case "", "false":
	case "true":
		f.EnabledOnly = true
	default:
		return f, hresult.Invalid("enabled", "%q is not allowed; use true or false", v)
	}
	if v := q.Get("origin"); v != "" {
		o, ok := origins[hnetcfg.MappingOrigin(v)]
		if !ok {
			return f, hresult.Invalid("origin", "%q is not allowed; use user, natpmp, pcp or upnp", v)
		}
		f.Origin = &o
	}
	if v := q.Get("client"); v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return f, hresult.Invalid("client", "%q is not an IP address", v)
		}
		f.Client = a
	}
	if v := q.Get("q"); v != "" {
		if len(v) > 256 {
			return f, hresult.Invalid("q", "%d bytes; at most 256", len(v))
		}
		f.Text = v
	}
	if v := q.Get("after"); v != "" {
		id, ok := sharing.ParseMappingID(v)
		if !ok {
			return f, hresult.Invalid("after", "%q is not a mapping id", v)
		}
		f.After = id
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return f, hresult.Invalid("limit", "%q is not allowed; give 1 to %d", v, maxPage)
		}
		f.Limit = n
	}
	return f, nil
}

var origins = map[hnetcfg.MappingOrigin]sharing.Origin{
	hnetcfg.OriginUser: sharing.OriginUser, hnetcfg.OriginNATPMP: sharing.OriginNATPMP,
	hnetcfg.OriginPCP: sharing.OriginPCP, hnetcfg.OriginUPnP: sharing.OriginUPnP,
}

// mappingID parses a mapping id of a request's path.
func mappingID(s string) (sharing.MappingID, error) {
	id, ok := sharing.ParseMappingID(s)
	if !ok {
		return 0, hresult.Invalid("id", "%q is not a mapping id; ids are numbers, as 'netshare mapping list' shows them", s)
	}
	return id, nil
}

func protocol(p hnetcfg.Protocol) (ipproto.Proto, error) {
	if p == "" {
		return 0, hresult.Invalid("protocol", "is missing; use tcp or udp")
	}
	v, err := ipproto.Parse(strings.ToLower(string(p)))
	if err != nil {
		return 0, hresult.Invalid("protocol", "%q is not allowed; use tcp or udp", p)
	}
	return v, nil
}

func port(field string, n int) (uint16, error) {
	if n < 1 || n > math.MaxUint16 {
		return 0, hresult.Invalid(field, "%d is out of range; a port is 1 to 65535", n)
	}
	return uint16(n), nil
}

func options(n int) (uint32, error) {
	if n < 0 || n > math.MaxUint32 {
		return 0, hresult.Invalid("options", "%d is not allowed; options are reserved and must be 0", n)
	}
	return uint32(n), nil
}

// addr parses an address of a request; "" is the zero Addr.
func addr(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, hresult.Invalid(field, "%q is not an IP address; give a dotted IPv4 address such as 192.168.137.10", s)
	}
	return a, nil
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// mappingSpec parses the description of a mapping.
func mappingSpec(name string, proto hnetcfg.Protocol, ext, in, opts int, targetName, targetIP string) (sharing.MappingSpec, error) {
	s := sharing.MappingSpec{Name: name, Target: sharing.Target{Name: targetName}}
	var err error
	if s.Protocol, err = protocol(proto); err != nil {
		return s, err
	}
	if s.ExternalPort, err = port("externalPort", ext); err != nil {
		return s, err
	}
	if s.InternalPort, err = port("internalPort", in); err != nil {
		return s, err
	}
	if s.Options, err = options(opts); err != nil {
		return s, err
	}
	if s.Target.IP, err = addr("targetIPAddress", targetIP); err != nil {
		return s, err
	}
	return s, nil
}

func mappingEdit(e hnetcfg.PortMappingEdit) (sharing.MappingEdit, error) {
	out := sharing.MappingEdit{Name: e.Name, TargetName: e.TargetName, Enabled: e.Enabled}
	if e.Protocol != nil {
		p, err := protocol(*e.Protocol)
		if err != nil {
			return out, err
		}
		out.Protocol = &p
	}
	for _, f := range []struct {
		name string
		in   *int
		out  **uint16
	}{{"externalPort", e.ExternalPort, &out.ExternalPort}, {"internalPort", e.InternalPort, &out.InternalPort}} {
		if f.in != nil {
			p, err := port(f.name, *f.in)
			if err != nil {
				return out, err
			}
			*f.out = &p
		}
	}
	if e.Options != nil {
		o, err := options(*e.Options)
		if err != nil {
			return out, err
		}
		out.Options = &o
	}
	if e.TargetIPAddress != nil {
		a, err := addr("targetIPAddress", *e.TargetIPAddress)
		if err != nil {
			return out, err
		}
		out.TargetIP = &a
	}
	return out, nil
}

func dhcpSettings(d sharing.DHCPSettings) hnetcfg.DHCPSettings {
	return hnetcfg.DHCPSettings{
		Connection:   d.Connection,
		Active:       d.Active,
		Subnet:       prefixText(d.Subnet),
		PoolStart:    addrText(d.PoolStart),
		PoolEnd:      addrText(d.PoolEnd),
		LeaseTime:    d.LeaseTime.String(),
		Domain:       d.Domain,
		Router:       addrText(d.Router),
		DNSServer:    addrText(d.DNSServer),
		Reservations: reservations(d.Reservations),
	}
}

func reservations(rs []sharing.Reservation) []hnetcfg.Reservation {
	out := []hnetcfg.Reservation{}
	for _, r := range rs {
		out = append(out, hnetcfg.Reservation{MAC: r.MAC, IP: addrText(r.IP), Name: r.Name})
	}
	return out
}

func reservation(r hnetcfg.Reservation) (sharing.Reservation, error) {
	a, err := addr("ip", r.IP)
	if err == nil && !a.IsValid() {
		err = hresult.Invalid("ip", "is missing; give the address to reserve")
	}
	return sharing.Reservation{MAC: r.MAC, IP: a, Name: r.Name}, err
}

// leaseTime parses a lease time; "" is 0, the default.
func leaseTime(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, hresult.Invalid("leaseTime", "%q is not a duration such as 30m, 12h or 168h", s)
	}
	if d <= 0 {
		return 0, hresult.Invalid("leaseTime", "%q is out of range; a lease lasts a minute or more", s)
	}
	return d, nil
}

func dhcpEdit(e hnetcfg.DHCPEdit) (sharing.DHCPEdit, error) {
	out := sharing.DHCPEdit{Domain: e.Domain}
	for _, f := range []struct {
		name string
		in   *string
		out  **netip.Addr
	}{
		{"poolStart", e.PoolStart, &out.PoolStart},
		{"poolEnd", e.PoolEnd, &out.PoolEnd},
		{"router", e.Router, &out.Router},
		{"dnsServer", e.DNSServer, &out.DNSServer},
	} {
		if f.in != nil {
			a, err := addr(f.name, *f.in)
			if err != nil {
				return out, err
			}
			*f.out = &a
		}
	}
	if e.LeaseTime != nil {
		d, err := leaseTime(*e.LeaseTime)
		if err != nil {
			return out, err
		}
		out.LeaseTime = &d
	}
	return out, nil
}

func leaseList(ls []sharing.LeaseInfo) []hnetcfg.LeaseInfo {
	out := make([]hnetcfg.LeaseInfo, len(ls))
	for i, l := range ls {
		out[i] = hnetcfg.LeaseInfo{Connection: l.Connection, Interface: l.Interface, MAC: l.MAC, IP: addrText(l.IP),
			Hostname: l.Hostname, Expiry: l.Expiry.UTC().Format(time.RFC3339), Active: l.Active}
	}
	return out
}

func addrPorts(as []netip.AddrPort) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func dnsHosts(hs []sharing.DNSHost) []hnetcfg.DNSHost {
	out := make([]hnetcfg.DNSHost, len(hs))
	for i, h := range hs {
		out[i] = hnetcfg.DNSHost{Name: h.Name, IP: addrText(h.IP)}
	}
	return out
}

func dnsSettings(s sharing.DNSSettings) hnetcfg.DNSSettings {
	return hnetcfg.DNSSettings{Upstreams: addrPorts(s.Upstreams), Effective: addrPorts(s.Effective), Hosts: dnsHosts(s.Hosts)}
}

// upstreams parses DNS servers: IP addresses, with a port or without
// (53).
func upstreams(us []string) ([]netip.AddrPort, error) {
	out := []netip.AddrPort{}
	for _, u := range us {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(u))
		if err != nil {
			a, errA := netip.ParseAddr(strings.TrimSpace(u))
			if errA != nil {
				return nil, hresult.Invalid("upstream", "%q is not a DNS server address such as 192.0.2.53 or [2001:db8::53]:53", u)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		out = append(out, ap)
	}
	return out, nil
}

func dnsHost(h hnetcfg.DNSHost) (sharing.DNSHost, error) {
	a, err := netip.ParseAddr(h.IP)
	if err != nil {
		return sharing.DNSHost{}, hresult.Invalid("ip", "%q is not an IPv4 unicast address", h.IP)
	}
	return sharing.DNSHost{Name: h.Name, IP: a}, nil
}

func configDoc(c sharing.Config) hnetcfg.Config {
	doc := hnetcfg.Config{Revision: c.Revision, Connections: []hnetcfg.ConnectionConfig{}}
	for _, cc := range c.Connections {
		w := hnetcfg.ConnectionConfig{ID: cc.ID, Interface: cc.Interface, Name: cc.Name, Sharing: hnetcfg.SharingConnectionType(cc.Role),
			Address: prefixText(cc.Address), Firewall: cc.Firewall, AllowPing: cc.AllowPing, NATTraversal: cc.NATTraversal}
		if d := cc.DHCP; d != nil {
			w.DHCP = &hnetcfg.DHCPConfig{PoolStart: addrText(d.PoolStart), PoolEnd: addrText(d.PoolEnd), Domain: d.Domain,
				Router: addrText(d.Router), DNSServer: addrText(d.DNSServer)}
			if d.LeaseTime != 0 {
				w.DHCP.LeaseTime = d.LeaseTime.String()
			}
			if len(d.Reservations) > 0 {
				w.DHCP.Reservations = reservations(d.Reservations)
			}
		}
		for _, mc := range cc.Mappings {
			w.Mappings = append(w.Mappings, hnetcfg.MappingConfig{ID: mc.ID.String(), Name: mc.Name,
				Protocol: hnetcfg.Protocol(mc.Protocol.String()), ExternalPort: int(mc.ExternalPort), InternalPort: int(mc.InternalPort),
				TargetName: mc.Target.Name, TargetIPAddress: addrText(mc.Target.IP), Enabled: mc.Enabled})
		}
		doc.Connections = append(doc.Connections, w)
	}
	if len(c.DNS.Upstreams) > 0 {
		doc.DNS.Upstreams = addrPorts(c.DNS.Upstreams)
	}
	if len(c.DNS.Hosts) > 0 {
		doc.DNS.Hosts = dnsHosts(c.DNS.Hosts)
	}
	if c.PortMapPolicy != nil {
		p := policyWire(*c.PortMapPolicy)
		doc.PortMapPolicy = &p
	}
	return doc
}

func policyWire(p sharing.PortMapPolicy) hnetcfg.PortMapPolicy {
	w := hnetcfg.PortMapPolicy{Rules: []hnetcfg.PortMapRule{}, MinLifetime: p.MinLifetime.String(), MaxLifetime: p.MaxLifetime.String(),
		Quota: p.Quota, Rate: p.Rate, AllowThirdParty: p.AllowThirdParty}
	for _, r := range p.Rules {
		wr := hnetcfg.PortMapRule{Action: "deny", Clients: prefixText(r.Clients), External: rangeText(r.External), Internal: rangeText(r.Internal)}
		if r.Allow {
			wr.Action = "allow"
		}
		w.Rules = append(w.Rules, wr)
	}
	return w
}

func rangeText(r sharing.PortRange) string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// policyFrom parses a port mapping policy; an error names the field (such
// as rules[1].external).
func policyFrom(w hnetcfg.PortMapPolicy) (sharing.PortMapPolicy, error) {
	p := sharing.PortMapPolicy{Quota: w.Quota, Rate: w.Rate, AllowThirdParty: w.AllowThirdParty}
	for i, wr := range w.Rules {
		at := func(err error) error { return hresult.Within(fmtIndex("rules", i), err) }
		var r sharing.PortMapRule
		switch wr.Action {
		case "allow":
			r.Allow = true
		case "deny":
		default:
			return p, at(hresult.Invalid("action", "%q is not allowed; use allow or deny", wr.Action))
		}
		if wr.Clients != "" {
			pre, err := netip.ParsePrefix(wr.Clients)
			if err != nil {
				a, aerr := netip.ParseAddr(wr.Clients)
				if aerr != nil || !a.Is4() {
					return p, at(hresult.Invalid("clients", "%q is not an IPv4 prefix or address; give one such as 192.168.137.0/24", wr.Clients))
				}
				pre = netip.PrefixFrom(a, 32)
			}
			if !pre.Addr().Is4() {
				return p, at(hresult.Invalid("clients", "%q is not an IPv4 prefix", wr.Clients))
			}
			r.Clients = pre.Masked()
		}
		var err error
		if r.External, err = portRange("external", wr.External); err != nil {
			return p, at(err)
		}
		if r.Internal, err = portRange("internal", wr.Internal); err != nil {
			return p, at(err)
		}
		p.Rules = append(p.Rules, r)
	}
	for _, l := range []struct {
		field string
		text  string
		dst   *time.Duration
	}{{"minLifetime", w.MinLifetime, &p.MinLifetime}, {"maxLifetime", w.MaxLifetime, &p.MaxLifetime}} {
		d, err := time.ParseDuration(l.text)
		if err != nil {
			return p, hresult.Invalid(l.field, "%q is not a duration; give one such as 2m or 24h", l.text)
		}
		*l.dst = d
	}
	return p, nil
}

// portRange parses "FIRST-LAST" or one port.
func portRange(field, s string) (sharing.PortRange, error) {
	first, last, isRange := strings.Cut(s, "-")
	if !isRange {
		last = first
	}
	a, aerr := strconv.ParseUint(first, 10, 16)
	b, berr := strconv.ParseUint(last, 10, 16)
	if aerr != nil || berr != nil || a == 0 || a > b {
		return sharing.PortRange{}, hresult.Invalid(field, "%q is not a port or a range of ports; give one such as 1024-65535", s)
	}
	return sharing.PortRange{First: uint16(a), Last: uint16(b)}, nil
}

// configFrom parses a document; an error says where in it (such as
// connections[2].mappings[0].externalPort).
func configFrom(doc hnetcfg.Config) (sharing.Config, error) {
	c := sharing.Config{Revision: doc.Revision}
	for i, w := range doc.Connections {
		at := func(err error) error { return hresult.Within(fmtIndex("connections", i), err) }
		cc := sharing.ConnectionConfig{ID: w.ID, Interface: w.Interface, Name: w.Name, Firewall: w.Firewall, AllowPing: w.AllowPing, NATTraversal: w.NATTraversal}
		if w.Sharing != "" {
			r, err := sharingRole("sharing", w.Sharing)
			if err != nil {
				return c, at(hresult.Invalid("sharing", "%q is not a sharing type; use public, private, or leave it out", w.Sharing))
			}
			cc.Role = r
		}
		var err error
		if cc.Address, err = privateAddress(w.Address); err != nil {
			return c, at(err)
		}
		if d := w.DHCP; d != nil {
			dc, err := dhcpConfigFrom(d)
			if err != nil {
				return c, at(hresult.Within("dhcp", err))
			}
			cc.DHCP = dc
		}
		for k, m := range w.Mappings {
			at := func(err error) error { return at(hresult.Within(fmtIndex("mappings", k), err)) }
			mc := sharing.MappingConfig{Enabled: m.Enabled}
			if m.ID != "" {
				id, ok := sharing.ParseMappingID(m.ID)
				if !ok {
					return c, at(hresult.Invalid("id", "%q is not a mapping id; leave it out for a new mapping", m.ID))
				}
				mc.ID = id
			}
			if mc.MappingSpec, err = mappingSpec(m.Name, m.Protocol, m.ExternalPort, m.InternalPort, 0, m.TargetName, m.TargetIPAddress); err != nil {
				return c, at(err)
			}
			cc.Mappings = append(cc.Mappings, mc)
		}
		c.Connections = append(c.Connections, cc)
	}
	var err error
	if c.DNS.Upstreams, err = upstreams(doc.DNS.Upstreams); err != nil {
		return c, hresult.Within("dns", err)
	}
	for i, h := range doc.DNS.Hosts {
		mh, err := dnsHost(h)
		if err != nil {
			return c, hresult.Within(fmtIndex("dns.hosts", i), err)
		}
		c.DNS.Hosts = append(c.DNS.Hosts, mh)
	}
	if w := doc.PortMapPolicy; w != nil {
		p, err := policyFrom(*w)
		if err != nil {
			return c, hresult.Within("portMapPolicy", err)
		}
		c.PortMapPolicy = &p
	}
	return c, nil
}

func dhcpConfigFrom(d *hnetcfg.DHCPConfig) (*sharing.DHCPConfig, error) {
	out := &sharing.DHCPConfig{Domain: d.Domain}
	var err error
	for _, f := range []struct {
		name string
		in   string
		out  *netip.Addr
	}{
		{"poolStart", d.PoolStart, &out.PoolStart},
		{"poolEnd", d.PoolEnd, &out.PoolEnd},
		{"router", d.Router, &out.Router},
		{"dnsServer", d.DNSServer, &out.DNSServer},
	} {
		if *f.out, err = addr(f.name, f.in); err != nil {
			return nil, err
		}
	}
	if out.LeaseTime, err = leaseTime(d.LeaseTime); err != nil {
		return nil, err
	}
	for i, r := range d.Reservations {
		res, err := reservation(r)
		if err != nil {
			return nil, hresult.Within(fmtIndex("reservations", i), err)
		}
		out.Reservations = append(out.Reservations, res)
	}
	return out, nil
}

func configResult(r sharing.ConfigResult) hnetcfg.ConfigResult {
	return hnetcfg.ConfigResult{DryRun: r.DryRun, Changes: r.Changes, Config: configDoc(r.Config)}
}

func fmtIndex(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }
