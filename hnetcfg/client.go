// Package hnetcfg is the Go client of the netshare daemon. Its types and
// methods follow Windows' HNetCfg sharing API (netcon.h): a SharingManager
// enumerates Connections, hands out the SharingConfiguration of a
// connection, and a configuration holds PortMappings.
//
// Every method takes a context and talks to the daemon over its unix
// socket; errors are *hresult.Error values carrying an HNetCfg code such as
// E_INVALIDARG.
//
//	m := hnetcfg.NewSharingManager("")
//	wan, err := m.Connection(ctx, "eth0")
//	cfg := m.INetSharingConfigurationForINetConnection(wan)
//	err = cfg.EnableSharing(ctx, hnetcfg.ICSSHARINGTYPE_PUBLIC)
//	pm, err := cfg.AddPortMapping(ctx, "web", hnetcfg.NAT_PROTOCOL_TCP, 80, 8080, 0, "192.168.137.10", hnetcfg.ICSTT_IPADDRESS)
//	err = pm.Enable(ctx)
package hnetcfg

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/netshare/netshare/hresult"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/netshare/netshare.sock"

// SharingManager is the entry point (INetSharingManager).
type SharingManager struct {
	socket string
	hc     *http.Client
}

// NewSharingManager returns a manager that talks to the daemon on socket;
// "" means DefaultSocket.
func NewSharingManager(socket string) *SharingManager {
	if socket == "" {
		socket = DefaultSocket
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return &SharingManager{
		socket: socket,
		hc: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConnsPerHost: 16,
		}},
	}
}

// Socket returns the path of the daemon's socket.
func (m *SharingManager) Socket() string { return m.socket }

// do sends a request with an optional JSON body and decodes the answer into
// out, if out is not nil.
func (m *SharingManager) do(ctx context.Context, method, path string, in, out any) error {
	var decode func([]byte, http.Header) error
	if out != nil {
		decode = func(data []byte, _ http.Header) error { return json.Unmarshal(data, out) }
	}
	return m.call(ctx, method, path, in, decode)
}

// call is do with the decoding of a successful answer (its body and
// header) left to decode; a nil decode, or an answer without a body,
// decodes nothing.
func (m *SharingManager) call(ctx context.Context, method, path string, in any, decode func([]byte, http.Header) error) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return hresult.New(hresult.InvalidArg, "encoding the request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://netshare"+path, body)
	if err != nil {
		return hresult.New(hresult.InvalidArg, "building the request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return hresult.New(hresult.Abort, "%s %s: %w", method, path, ctx.Err())
		}
		return hresult.New(hresult.Fail, "cannot reach the netshare daemon at %s: %w (is 'netshare serve' running? --socket or NETSHARE_SOCKET chooses the socket)", m.socket, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := readAnswer(resp)
	if err != nil {
		return hresult.New(hresult.Fail, "reading the daemon's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e hresult.Error
		if json.Unmarshal(data, &e) != nil || !e.Code.Valid() {
			return hresult.New(hresult.Unexpected, "the daemon answered %s with %q", resp.Status, bytes.TrimSpace(data))
		}
		return &e
	}
	if decode == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := decode(data, resp.Header); err != nil {
		return hresult.New(hresult.Unexpected, "decoding the daemon's answer: %w", err)
	}
	return nil
}

// maxAnswer bounds what the client reads of one answer.
const maxAnswer = 64 << 20

// readAnswer reads an answer's body, in one buffer of its length when the
// daemon gave one.
func readAnswer(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= maxAnswer {
		data := make([]byte, n)
		_, err := io.ReadFull(resp.Body, data)
		return data, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
}

func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func connPath(ref string) string { return "/v1/connections/" + url.PathEscape(ref) }

func mappingPath(conn, id string) string {
	return connPath(conn) + "/mappings/" + url.PathEscape(id)
}

// SharingInstalled reports whether sharing is available.
func (m *SharingManager) SharingInstalled(ctx context.Context) (bool, error) {
	o, err := m.Sharing(ctx)
	return o.Installed, err
}

// WebUI says where the daemon's web UI answers, with a login link. It is
// not an HNetCfg call: Windows has no web UI.
func (m *SharingManager) WebUI(ctx context.Context) (WebUIInfo, error) {
	var info WebUIInfo
	err := m.do(ctx, "GET", "/v1/ui", nil, &info)
	return info, err
}

// Sharing returns whether sharing is installed and the public and private
// connections, in one call.
func (m *SharingManager) Sharing(ctx context.Context) (SharingOverview, error) {
	var o SharingOverview
	err := m.do(ctx, "GET", "/v1/sharing", nil, &o)
	return o, err
}

// EnumEveryConnection returns every connection.
func (m *SharingManager) EnumEveryConnection(ctx context.Context) ([]*Connection, error) {
	var ps []ConnectionProps
	if err := m.do(ctx, "GET", "/v1/connections", nil, &ps); err != nil {
		return nil, err
	}
	return m.connections(ps), nil
}

// EnumPublicConnections returns the connection shared as public, if any.
func (m *SharingManager) EnumPublicConnections(ctx context.Context, flags EnumFlags) ([]*Connection, error) {
	if flags != ICSSC_DEFAULT {
		return nil, hresult.Invalid("flags", "%d is not allowed; use ICSSC_DEFAULT", flags)
	}
	o, err := m.Sharing(ctx)
	if err != nil {
		return nil, err
	}
	return m.connections(o.Public), nil
}

// EnumPrivateConnections returns the connections shared as private.
func (m *SharingManager) EnumPrivateConnections(ctx context.Context, flags EnumFlags) ([]*Connection, error) {
	if flags != ICSSC_DEFAULT {
		return nil, hresult.Invalid("flags", "%d is not allowed; use ICSSC_DEFAULT", flags)
	}
	o, err := m.Sharing(ctx)
	if err != nil {
		return nil, err
	}
	return m.connections(o.Private), nil
}

func (m *SharingManager) connections(ps []ConnectionProps) []*Connection {
	out := make([]*Connection, len(ps))
	for i, p := range ps {
		out[i] = &Connection{m: m, props: p}
	}
	return out
}

// Connection returns the connection ref names: an id, an interface name
// or a friendly name.
func (m *SharingManager) Connection(ctx context.Context, ref string) (*Connection, error) {
	var p ConnectionProps
	if err := m.do(ctx, "GET", connPath(ref), nil, &p); err != nil {
		return nil, err
	}
	return &Connection{m: m, props: p}, nil
}

// NetConnectionProps returns the current properties of c.
func (m *SharingManager) NetConnectionProps(ctx context.Context, c *Connection) (ConnectionProps, error) {
	return c.GetProperties(ctx)
}

// INetSharingConfigurationForINetConnection returns the sharing
// configuration of c.
func (m *SharingManager) INetSharingConfigurationForINetConnection(c *Connection) *SharingConfiguration {
	return &SharingConfiguration{m: m, id: c.props.ID}
}

// Connection is one network interface (INetConnection).
type Connection struct {
	m     *SharingManager
	props ConnectionProps
}

// ID returns the connection's GUID.
func (c *Connection) ID() string { return c.props.ID }

// Props returns the properties as they were when c was retrieved or last
// changed through c.
func (c *Connection) Props() ConnectionProps { return c.props }

// GetProperties fetches the current properties.
func (c *Connection) GetProperties(ctx context.Context) (ConnectionProps, error) {
	err := c.update(ctx, "GET", connPath(c.props.ID), nil)
	return c.props, err
}

// Connect brings the interface up.
func (c *Connection) Connect(ctx context.Context) error {
	return c.update(ctx, "POST", connPath(c.props.ID)+"/connect", nil)
}

// Disconnect takes the interface down.
func (c *Connection) Disconnect(ctx context.Context) error {
	return c.update(ctx, "POST", connPath(c.props.ID)+"/disconnect", nil)
}

// Rename sets the friendly name.
func (c *Connection) Rename(ctx context.Context, name string) error {
	return c.update(ctx, "POST", connPath(c.props.ID)+"/rename", NameRequest{Name: name})
}

// update makes a call whose answer is the connection's properties, and
// replaces c's with them whole (a field the answer leaves out is empty).
func (c *Connection) update(ctx context.Context, method, path string, in any) error {
	var p ConnectionProps
	if err := c.m.do(ctx, method, path, in, &p); err != nil {
		return err
	}
	c.props = p
	return nil
}

// Delete answers E_NOTIMPL: netshare does not delete interfaces.
func (c *Connection) Delete(ctx context.Context) error {
	return c.m.do(ctx, "DELETE", connPath(c.props.ID), nil, nil)
}

// Duplicate answers E_NOTIMPL: interfaces cannot be duplicated.
func (c *Connection) Duplicate(ctx context.Context, name string) (*Connection, error) {
	return nil, c.m.do(ctx, "POST", connPath(c.props.ID)+"/duplicate", NameRequest{Name: name}, nil)
}

// SharingConfiguration is the sharing and firewall configuration of a
// connection (INetSharingConfiguration).
type SharingConfiguration struct {
	m  *SharingManager
	id string
}

func (s *SharingConfiguration) props(ctx context.Context) (ConnectionProps, error) {
	var p ConnectionProps
	err := s.m.do(ctx, "GET", connPath(s.id), nil, &p)
	return p, err
}

func (s *SharingConfiguration) post(ctx context.Context, verb string, in any) error {
	return s.m.do(ctx, "POST", connPath(s.id)+"/"+verb, in, nil)
}

// SharingEnabled reports whether the connection is shared, in either role.
func (s *SharingConfiguration) SharingEnabled(ctx context.Context) (bool, error) {
	p, err := s.props(ctx)
	return p.Sharing.Enabled, err
}

// SharingConnectionType returns the connection's role; "" when not shared.
func (s *SharingConfiguration) SharingConnectionType(ctx context.Context) (SharingConnectionType, error) {
	p, err := s.props(ctx)
	return p.Sharing.Type, err
}

// EnableSharing shares the connection as public or private. Enabling a
// public connection unshares the previous public one and switches the
// firewall on.
func (s *SharingConfiguration) EnableSharing(ctx context.Context, t SharingConnectionType) error {
	return s.EnableSharingRequest(ctx, SharingRequest{Type: t})
}

// EnableSharingRequest is EnableSharing with the options of req: the
// address of a private connection.
func (s *SharingConfiguration) EnableSharingRequest(ctx context.Context, req SharingRequest) error {
	return s.post(ctx, "sharing/enable", req)
}

// DisableSharing unshares the connection and disables its port mappings.
func (s *SharingConfiguration) DisableSharing(ctx context.Context) error {
	return s.post(ctx, "sharing/disable", nil)
}

// InternetFirewallEnabled reports whether the firewall is on.
func (s *SharingConfiguration) InternetFirewallEnabled(ctx context.Context) (bool, error) {
	p, err := s.props(ctx)
	return p.FirewallEnabled, err
}

// EnableInternetFirewall switches the firewall on.
func (s *SharingConfiguration) EnableInternetFirewall(ctx context.Context) error {
	return s.post(ctx, "firewall/enable", nil)
}

// EnableInternetFirewallRequest switches the firewall on with the options
// of req: whether the connection answers ping.
func (s *SharingConfiguration) EnableInternetFirewallRequest(ctx context.Context, req FirewallRequest) error {
	return s.post(ctx, "firewall/enable", req)
}

// DisableInternetFirewall switches the firewall off.
func (s *SharingConfiguration) DisableInternetFirewall(ctx context.Context) error {
	return s.post(ctx, "firewall/disable", nil)
}

// EnableNATTraversal lets the connection's devices ask for port mappings
// of their own (NAT-PMP and PCP) while it is shared as private. netshare's
// addition: Windows ICS did this with UPnP, always on.
func (s *SharingConfiguration) EnableNATTraversal(ctx context.Context) error {
	return s.post(ctx, "nat-traversal/enable", nil)
}

// DisableNATTraversal stops answering the connection's devices' requests
// for port mappings; the mappings they made end at their expiry.
func (s *SharingConfiguration) DisableNATTraversal(ctx context.Context) error {
	return s.post(ctx, "nat-traversal/disable", nil)
}

// EnumPortMappings returns the connection's port mappings; with
// ICSSC_ENABLED, the enabled ones only.
func (s *SharingConfiguration) EnumPortMappings(ctx context.Context, flags EnumFlags) ([]*PortMapping, error) {
	switch flags {
	case ICSSC_DEFAULT:
		return s.QueryPortMappings(ctx, MappingQuery{})
	case ICSSC_ENABLED:
		return s.QueryPortMappings(ctx, MappingQuery{EnabledOnly: true})
	}
	return nil, hresult.Invalid("flags", "%d is not allowed; use ICSSC_DEFAULT or ICSSC_ENABLED", flags)
}

// MappingQuery selects port mappings: the enabled ones only, those of one
// origin, those of one device (its address).
type MappingQuery struct {
	EnabledOnly bool
	Origin      MappingOrigin
	Client      string
}

// pageSize is how many mappings the client asks for at a time.
const pageSize = 2000

// QueryPortMappings returns the connection's port mappings that q
// selects, in the order they were added, reading them a page at a time.
func (s *SharingConfiguration) QueryPortMappings(ctx context.Context, q MappingQuery) ([]*PortMapping, error) {
	v := url.Values{"limit": {strconv.Itoa(pageSize)}}
	if q.EnabledOnly {
		v.Set("enabled", "true")
	}
	if q.Origin != "" {
		v.Set("origin", string(q.Origin))
	}
	if q.Client != "" {
		v.Set("client", q.Client)
	}
	var out []*PortMapping
	next := connPath(s.id) + "/mappings?" + v.Encode()
	for next != "" {
		var ps []PortMappingProps
		decode := func(data []byte, h http.Header) (err error) {
			next = nextPage(h.Get("Link"))
			ps, err = decodeMappings(data)
			return err
		}
		if err := s.m.call(ctx, "GET", next, nil, decode); err != nil {
			return nil, err
		}
		for _, p := range ps {
			out = append(out, &PortMapping{m: s.m, conn: s.id, props: p})
		}
	}
	if out == nil {
		out = []*PortMapping{}
	}
	return out, nil
}

// nextPage returns the path of a Link header's rel="next", or "".
func nextPage(link string) string {
	for _, l := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(l), ";")
		if ok && strings.TrimSpace(params) == `rel="next"` && strings.HasPrefix(target, "</") && strings.HasSuffix(target, ">") {
			return target[1 : len(target)-1]
		}
	}
	return ""
}

// AddPortMapping adds a port mapping, disabled. target is a host name or
// an IPv4 address, as targetType says; options must be 0.
func (s *SharingConfiguration) AddPortMapping(ctx context.Context, name string, protocol Protocol, externalPort, internalPort, options int, target string, targetType TargetType) (*PortMapping, error) {
	spec := PortMappingSpec{Name: name, Protocol: protocol, ExternalPort: externalPort, InternalPort: internalPort, Options: options}
	switch targetType {
	case ICSTT_NAME:
		spec.TargetName = target
	case ICSTT_IPADDRESS:
		spec.TargetIPAddress = target
	default:
		return nil, hresult.Invalid("targetType", "%d is not allowed; use ICSTT_NAME or ICSTT_IPADDRESS", targetType)
	}
	return s.AddPortMappingSpec(ctx, spec)
}

// AddPortMappingSpec adds the port mapping spec describes, disabled.
func (s *SharingConfiguration) AddPortMappingSpec(ctx context.Context, spec PortMappingSpec) (*PortMapping, error) {
	pm := &PortMapping{m: s.m, conn: s.id}
	if err := pm.update(ctx, "POST", connPath(s.id)+"/mappings", spec); err != nil {
		return nil, err
	}
	return pm, nil
}

// PortMapping returns the mapping with the given id.
func (s *SharingConfiguration) PortMapping(ctx context.Context, id string) (*PortMapping, error) {
	pm := &PortMapping{m: s.m, conn: s.id}
	if err := pm.update(ctx, "GET", mappingPath(s.id, id), nil); err != nil {
		return nil, err
	}
	return pm, nil
}

// RemovePortMapping removes pm.
func (s *SharingConfiguration) RemovePortMapping(ctx context.Context, pm *PortMapping) error {
	return pm.Delete(ctx)
}

// PortMapping is one port mapping of a connection (INetSharingPortMapping).
type PortMapping struct {
	m     *SharingManager
	conn  string
	props PortMappingProps
}

// ID returns the mapping's id.
func (p *PortMapping) ID() string { return p.props.ID }

// Props returns the properties as they were when p was retrieved or last
// changed through p.
func (p *PortMapping) Props() PortMappingProps { return p.props }

// Properties fetches the current properties.
func (p *PortMapping) Properties(ctx context.Context) (PortMappingProps, error) {
	err := p.update(ctx, "GET", mappingPath(p.conn, p.props.ID), nil)
	return p.props, err
}

// Enable enables the mapping.
func (p *PortMapping) Enable(ctx context.Context) error {
	return p.update(ctx, "POST", mappingPath(p.conn, p.props.ID)+"/enable", nil)
}

// Disable disables the mapping.
func (p *PortMapping) Disable(ctx context.Context) error {
	return p.update(ctx, "POST", mappingPath(p.conn, p.props.ID)+"/disable", nil)
}

// Edit changes the fields e sets, keeping the mapping's id.
func (p *PortMapping) Edit(ctx context.Context, e PortMappingEdit) error {
	return p.update(ctx, "PATCH", mappingPath(p.conn, p.props.ID), e)
}

// update makes a call whose answer is the mapping's properties, and
// replaces p's with them whole (a field the answer leaves out is empty).
func (p *PortMapping) update(ctx context.Context, method, path string, in any) error {
	var props PortMappingProps
	decode := func(data []byte, _ http.Header) (err error) {
		props, err = decodeMapping(data)
		return err
	}
	if err := p.m.call(ctx, method, path, in, decode); err != nil {
		return err
	}
	p.props = props
	return nil
}

// Delete removes the mapping.
func (p *PortMapping) Delete(ctx context.Context) error {
	return p.m.do(ctx, "DELETE", mappingPath(p.conn, p.props.ID), nil, nil)
}

// String describes the mapping for people.
func (p *PortMapping) String() string {
	t := p.props.TargetIPAddress
	if t == "" {
		t = p.props.TargetName
	}
	return fmt.Sprintf("%s %s %s/%d -> %s:%d", p.props.ID, p.props.Name, p.props.Protocol, p.props.ExternalPort, t, p.props.InternalPort)
}

// DHCP returns the DHCP settings of the connection.
func (s *SharingConfiguration) DHCP(ctx context.Context) (DHCPSettings, error) {
	var d DHCPSettings
	err := s.m.do(ctx, "GET", connPath(s.id)+"/dhcp", nil, &d)
	return d, err
}

// SetDHCP changes the DHCP settings that e sets.
func (s *SharingConfiguration) SetDHCP(ctx context.Context, e DHCPEdit) (DHCPSettings, error) {
	var d DHCPSettings
	err := s.m.do(ctx, "PATCH", connPath(s.id)+"/dhcp", e, &d)
	return d, err
}

// Reserve gives a MAC address a fixed address and name.
func (s *SharingConfiguration) Reserve(ctx context.Context, r Reservation) (DHCPSettings, error) {
	var d DHCPSettings
	err := s.m.do(ctx, "POST", connPath(s.id)+"/dhcp/reservations", r, &d)
	return d, err
}

// Unreserve removes the reservation of a MAC address.
func (s *SharingConfiguration) Unreserve(ctx context.Context, mac string) (DHCPSettings, error) {
	var d DHCPSettings
	err := s.m.do(ctx, "DELETE", connPath(s.id)+"/dhcp/reservations/"+url.PathEscape(mac), nil, &d)
	return d, err
}

// Leases returns the DHCP leases of every private connection.
func (m *SharingManager) Leases(ctx context.Context) ([]LeaseInfo, error) {
	var ls []LeaseInfo
	err := m.do(ctx, "GET", "/v1/leases", nil, &ls)
	return ls, err
}

// DNS returns the DNS forwarder's settings.
func (m *SharingManager) DNS(ctx context.Context) (DNSSettings, error) {
	var d DNSSettings
	err := m.do(ctx, "GET", "/v1/dns", nil, &d)
	return d, err
}

// SetDNS sets the DNS upstream servers; none means those of resolv.conf.
func (m *SharingManager) SetDNS(ctx context.Context, e DNSEdit) (DNSSettings, error) {
	var d DNSSettings
	err := m.do(ctx, "PATCH", "/v1/dns", e, &d)
	return d, err
}

// PortMapPolicy returns what devices may map for themselves (NAT-PMP,
// PCP).
func (m *SharingManager) PortMapPolicy(ctx context.Context) (PortMapPolicy, error) {
	var p PortMapPolicy
	err := m.do(ctx, "GET", "/v1/nat-traversal/policy", nil, &p)
	return p, err
}

// SetPortMapPolicy replaces what devices may map for themselves.
func (m *SharingManager) SetPortMapPolicy(ctx context.Context, p PortMapPolicy) (PortMapPolicy, error) {
	var out PortMapPolicy
	err := m.do(ctx, "PUT", "/v1/nat-traversal/policy", p, &out)
	return out, err
}

// AddDNSHost adds or replaces a static name.
func (m *SharingManager) AddDNSHost(ctx context.Context, h DNSHost) (DNSSettings, error) {
	var d DNSSettings
	err := m.do(ctx, "POST", "/v1/dns/hosts", h, &d)
	return d, err
}

// RemoveDNSHost removes a static name.
func (m *SharingManager) RemoveDNSHost(ctx context.Context, name string) (DNSSettings, error) {
	var d DNSSettings
	err := m.do(ctx, "DELETE", "/v1/dns/hosts/"+url.PathEscape(name), nil, &d)
	return d, err
}

// Config returns netshare's whole desired state as one document, with its
// revision.
func (m *SharingManager) Config(ctx context.Context) (Config, error) {
	var doc Config
	err := m.do(ctx, "GET", "/v1/config", nil, &doc)
	return doc, err
}

// ApplyConfig makes netshare's state what doc says, all of it or none of
// it, and returns the changes. A document whose Revision is no longer the
// state's is refused (E_ABORT, reason stale): it would undo changes made
// since it was read; force applies it all the same. With dryRun, nothing
// changes: the answer lists what would.
func (m *SharingManager) ApplyConfig(ctx context.Context, doc Config, dryRun, force bool) (ConfigResult, error) {
	if force {
		doc.Revision = ""
	}
	path := "/v1/config"
	if dryRun {
		path += "?dryRun=true"
	}
	var res ConfigResult
	err := m.do(ctx, "PUT", path, doc, &res)
	return res, err
}
