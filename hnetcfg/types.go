package hnetcfg

// SharingConnectionType is a connection's role in sharing
// (SHARINGCONNECTIONTYPE).
type SharingConnectionType string

// Sharing roles. Public is the upstream connection that is shared; Private
// is a connection whose network uses it.
const (
	ICSSHARINGTYPE_PUBLIC  SharingConnectionType = "public"
	ICSSHARINGTYPE_PRIVATE SharingConnectionType = "private"
)

// EnumFlags selects what an enumeration returns
// (SHARINGCONNECTION_ENUM_FLAGS).
type EnumFlags int

// Enumeration flags. ICSSC_ENABLED asks EnumPortMappings for the enabled
// mappings only.
const (
	ICSSC_DEFAULT EnumFlags = 0
	ICSSC_ENABLED EnumFlags = 1
)

// TargetType says whether a port mapping's target is a host name or an IP
// address (ICS_TARGETTYPE).
type TargetType int

// Target types.
const (
	ICSTT_NAME      TargetType = 0
	ICSTT_IPADDRESS TargetType = 1
)

// Protocol is the IP protocol of a port mapping: "tcp" or "udp".
type Protocol string

// Protocols (NAT_PROTOCOL_TCP and NAT_PROTOCOL_UDP).
const (
	NAT_PROTOCOL_TCP Protocol = "tcp"
	NAT_PROTOCOL_UDP Protocol = "udp"
)

// Status is a connection's state (NETCON_STATUS), as a lower-case word.
type Status string

// Connection states used by netshare.
const (
	NCS_DISCONNECTED         Status = "disconnected"
	NCS_CONNECTED            Status = "connected"
	NCS_HARDWARE_NOT_PRESENT Status = "hardware-not-present"
	NCS_HARDWARE_DISABLED    Status = "hardware-disabled"
	NCS_MEDIA_DISCONNECTED   Status = "media-disconnected"
	NCS_INVALID_ADDRESS      Status = "invalid-address"
)

// MediaType is a connection's medium (NETCON_MEDIATYPE), as a lower-case
// word.
type MediaType string

// Media types used by netshare.
const (
	NCM_NONE   MediaType = "none"
	NCM_LAN    MediaType = "lan"
	NCM_TUNNEL MediaType = "tunnel"
	NCM_PPPOE  MediaType = "pppoe"
	NCM_BRIDGE MediaType = "bridge"
)

// Characteristic is one of a connection's NETCON_CHARACTERISTIC_FLAGS, as
// a lower-case word.
type Characteristic string

// Characteristics used by netshare.
const (
	NCCF_ALL_USERS      Characteristic = "all-users"
	NCCF_ALLOW_RENAME   Characteristic = "allow-rename"
	NCCF_SHARED         Characteristic = "shared"
	NCCF_SHARED_PRIVATE Characteristic = "shared-private"
	NCCF_FIREWALLED     Characteristic = "firewalled"
)

// ConnectionProps are the properties of a connection (INetConnectionProps
// together with its sharing configuration).
type ConnectionProps struct {
	// ID is the connection's GUID, stable across renames and restarts.
	ID string `json:"id"`
	// Name is the friendly name; the interface name until renamed.
	Name string `json:"name"`
	// Interface is the kernel interface name.
	Interface string `json:"interface"`
	// DeviceName names the driver or device behind the interface.
	DeviceName      string           `json:"deviceName"`
	Status          Status           `json:"status"`
	MediaType       MediaType        `json:"mediaType"`
	Characteristics []Characteristic `json:"characteristics"`
	Sharing         SharingState     `json:"sharing"`
	FirewallEnabled bool             `json:"firewallEnabled"`
	// AllowPing says whether the firewall lets inbound ping through.
	AllowPing bool `json:"allowPing"`
	// NATTraversal lets the connection's devices, while it is shared as
	// private, ask for port mappings of their own (NAT-PMP and PCP).
	NATTraversal bool `json:"natTraversal"`
}

// SharingState is whether and how a connection is shared.
type SharingState struct {
	Enabled bool `json:"enabled"`
	// Type is set when Enabled is true.
	Type SharingConnectionType `json:"type,omitempty"`
	// Address is a private connection's address with its prefix.
	Address string `json:"address,omitempty"`
}

// PortMappingProps are the properties of a port mapping
// (INetSharingPortMappingProps) with its id.
type PortMappingProps struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Protocol     Protocol `json:"protocol"`
	ExternalPort int      `json:"externalPort"`
	InternalPort int      `json:"internalPort"`
	// TargetName is the target host's name; "" for an IP target.
	TargetName string `json:"targetName"`
	// TargetIPAddress is the target's IPv4 address; "" for a name target.
	TargetIPAddress string `json:"targetIPAddress"`
	Enabled         bool   `json:"enabled"`
	// Options is reserved and always 0.
	Options int `json:"options"`
	// ResolvedIPAddress is where a name target points now.
	ResolvedIPAddress string `json:"resolvedIPAddress,omitempty"`
	// Unresolved is true for a name target that no lease, reservation or
	// static entry knows: the mapping moves no traffic.
	Unresolved bool `json:"unresolved"`
	// ApplyError, when set, says why the firewall does not hold this
	// mapping as stored yet; netshare keeps trying until it does.
	ApplyError string `json:"applyError,omitempty"`
	// Origin is who made the mapping: a person (OriginUser), or a device
	// on a private network by the protocol it asked with. A device's
	// mapping is a lease: Client is the device's address and Expires
	// (RFC 3339) when the lease ends unless it renews it; both are empty
	// for a person's mapping. A device's mapping can be removed, not
	// changed.
	Origin  MappingOrigin `json:"origin"`
	Client  string        `json:"client,omitempty"`
	Expires string        `json:"expires,omitempty"`
	// RemotePeers, when a device asked for them (PCP's FILTER), are the
	// only remote peers that may open flows through the mapping: a prefix
	// such as "203.0.113.0/24", followed by " port N" for one port.
	RemotePeers []string `json:"remotePeers,omitempty"`
}

// MappingOrigin is who made a port mapping.
type MappingOrigin string

// The origins: a person, or a device by NAT-PMP, PCP or UPnP.
const (
	OriginUser   MappingOrigin = "user"
	OriginNATPMP MappingOrigin = "natpmp"
	OriginPCP    MappingOrigin = "pcp"
	OriginUPnP   MappingOrigin = "upnp"
)

// PortMappingSpec describes a new port mapping (the arguments of
// AddPortMapping). Exactly one of TargetName and TargetIPAddress is set.
type PortMappingSpec struct {
	Name            string   `json:"name"`
	Protocol        Protocol `json:"protocol"`
	ExternalPort    int      `json:"externalPort"`
	InternalPort    int      `json:"internalPort"`
	Options         int      `json:"options"`
	TargetName      string   `json:"targetName,omitempty"`
	TargetIPAddress string   `json:"targetIPAddress,omitempty"`
}

// PortMappingEdit changes the fields of a port mapping that are not nil.
// Setting TargetName or TargetIPAddress to a non-empty value makes it the
// target and clears the other.
type PortMappingEdit struct {
	Name            *string   `json:"name,omitempty"`
	Protocol        *Protocol `json:"protocol,omitempty"`
	ExternalPort    *int      `json:"externalPort,omitempty"`
	InternalPort    *int      `json:"internalPort,omitempty"`
	Options         *int      `json:"options,omitempty"`
	TargetName      *string   `json:"targetName,omitempty"`
	TargetIPAddress *string   `json:"targetIPAddress,omitempty"`
	Enabled         *bool     `json:"enabled,omitempty"`
}

// SharingOverview answers "what is shared": the manager's view
// (SharingInstalled, EnumPublicConnections, EnumPrivateConnections).
type SharingOverview struct {
	Installed bool              `json:"installed"`
	Public    []ConnectionProps `json:"public"`
	Private   []ConnectionProps `json:"private"`
	// PublicAddress is the public connection's address, which the
	// devices' own mappings are made on; BehindNAT says it is a private or
	// shared (100.64.0.0/10) address: another NAT is upstream, and a
	// mapping made here reaches the Internet only if that NAT forwards the
	// port too.
	PublicAddress string `json:"publicAddress,omitempty"`
	BehindNAT     bool   `json:"behindNAT"`
}

// NameRequest is the body of a rename or duplicate request.
type NameRequest struct {
	Name string `json:"name"`
}

// FirewallRequest is the body of a request to enable the firewall.
type FirewallRequest struct {
	// AllowPing, if set, says whether the connection answers ping
	// (inbound ICMP echo); unset leaves it as it is (off at first).
	AllowPing *bool `json:"allowPing,omitempty"`
}

// SharingRequest is the body of a request to enable sharing.
type SharingRequest struct {
	Type SharingConnectionType `json:"type"`
	// Address is the address of a private connection, with its prefix
	// (default 192.168.137.1/24, or the one it had before).
	Address string `json:"address,omitempty"`
}

// DHCPSettings is the DHCP configuration of a private connection, with the
// defaults filled in.
type DHCPSettings struct {
	Connection string `json:"connection"`
	// Active says whether the server runs: the connection is shared as
	// private and present.
	Active    bool   `json:"active"`
	Subnet    string `json:"subnet"`
	PoolStart string `json:"poolStart"`
	PoolEnd   string `json:"poolEnd"`
	// LeaseTime is a Go duration, such as 1h0m0s.
	LeaseTime    string        `json:"leaseTime"`
	Domain       string        `json:"domain"`
	Router       string        `json:"router"`
	DNSServer    string        `json:"dnsServer"`
	Reservations []Reservation `json:"reservations"`
}

// DHCPEdit changes the DHCP settings that are not nil; "" puts a field back
// to its default.
type DHCPEdit struct {
	PoolStart *string `json:"poolStart,omitempty"`
	PoolEnd   *string `json:"poolEnd,omitempty"`
	LeaseTime *string `json:"leaseTime,omitempty"`
	Domain    *string `json:"domain,omitempty"`
	Router    *string `json:"router,omitempty"`
	DNSServer *string `json:"dnsServer,omitempty"`
}

// Reservation gives a hardware address a fixed address and a host name.
type Reservation struct {
	MAC  string `json:"mac"`
	IP   string `json:"ip"`
	Name string `json:"name,omitempty"`
}

// LeaseInfo is a DHCP lease.
type LeaseInfo struct {
	Connection string `json:"connection"`
	Interface  string `json:"interface"`
	MAC        string `json:"mac"`
	IP         string `json:"ip"`
	Hostname   string `json:"hostname"`
	// Expiry is when the lease ends, RFC 3339.
	Expiry string `json:"expiry"`
	Active bool   `json:"active"`
}

// DNSSettings is the DNS forwarder's configuration.
type DNSSettings struct {
	// Upstreams are the servers asked; empty means those of the gateway's
	// resolv.conf, which Effective lists.
	Upstreams []string  `json:"upstreams"`
	Effective []string  `json:"effectiveUpstreams"`
	Hosts     []DNSHost `json:"hosts"`
}

// DNSHost is a static name.
type DNSHost struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
}

// DNSEdit changes the upstream servers; an empty list means those of
// resolv.conf.
type DNSEdit struct {
	Upstreams []string `json:"upstreams"`
}

// WebUIInfo says where the daemon's web UI answers.
type WebUIInfo struct {
	// Enabled is false when the daemon runs without --http.
	Enabled bool `json:"enabled"`
	// URL is the UI's address, such as http://127.0.0.1:8137/.
	URL string `json:"url,omitempty"`
	// LoginURL opens the UI and logs in: it carries the token in its
	// fragment. Only the daemon's socket gives it out.
	LoginURL string `json:"loginURL,omitempty"`
}

// Config is netshare's whole desired state as one document: what
// 'netshare config export' prints and 'netshare config apply' takes, and
// what GET and PUT /v1/config carry. Applying a document makes the state
// be what it says, all of it or none of it: a connection it leaves out
// goes back to the defaults (not shared, no firewall, no mappings).
type Config struct {
	// Revision is the revision of the state the document was read at.
	// PUT /v1/config refuses a document whose revision is no longer the
	// state's (412), unless its If-Match header says otherwise.
	Revision    string             `json:"revision,omitempty"`
	Connections []ConnectionConfig `json:"connections"`
	DNS         DNSConfig          `json:"dns"`
	// PortMapPolicy is what devices may map for themselves; absent means
	// the defaults.
	PortMapPolicy *PortMapPolicy `json:"portMapPolicy,omitempty"`
}

// PortMapPolicy is what the devices of the private networks may map for
// themselves (NAT-PMP, PCP), whatever protocol they ask with.
type PortMapPolicy struct {
	// Rules are tried in order; the first that matches a request
	// decides, and a request no rule matches is refused.
	Rules []PortMapRule `json:"rules"`
	// MinLifetime and MaxLifetime bound the lifetime a device is given
	// (durations such as "2m" or "24h").
	MinLifetime string `json:"minLifetime"`
	MaxLifetime string `json:"maxLifetime"`
	// Quota is how many mappings one host may have; Rate how many
	// requests a second one device may send.
	Quota int     `json:"quota"`
	Rate  float64 `json:"rate"`
	// AllowThirdParty lets a PCP client map for another host.
	AllowThirdParty bool `json:"allowThirdParty"`
}

// PortMapRule allows or denies the mappings of some clients from a range
// of external ports to a range of internal ones.
type PortMapRule struct {
	// Action is "allow" or "deny".
	Action string `json:"action"`
	// Clients is an IPv4 prefix such as 192.168.137.0/24 (or an address);
	// empty means any client.
	Clients string `json:"clients,omitempty"`
	// External and Internal are ports: "1024-65535", or one port.
	External string `json:"external"`
	Internal string `json:"internal"`
}

// ConnectionConfig is what netshare keeps of one connection. It is found
// by ID, or else by Interface.
type ConnectionConfig struct {
	ID        string `json:"id,omitempty"`
	Interface string `json:"interface"`
	// Name is the friendly name; "" means the interface name.
	Name string `json:"name,omitempty"`
	// Sharing is public, private, or "" for a connection not shared.
	Sharing SharingConnectionType `json:"sharing,omitempty"`
	// Address is a private connection's address with its prefix; ""
	// keeps the one it had, or the default 192.168.137.1/24.
	Address      string `json:"address,omitempty"`
	Firewall     bool   `json:"firewall"`
	AllowPing    bool   `json:"allowPing,omitempty"`
	NATTraversal bool   `json:"natTraversal,omitempty"`
	// DHCP is the DHCP configuration; nil means the defaults.
	DHCP     *DHCPConfig     `json:"dhcp,omitempty"`
	Mappings []MappingConfig `json:"mappings,omitempty"`
}

// DHCPConfig is the DHCP configuration of a private connection. Empty
// fields take the defaults.
type DHCPConfig struct {
	PoolStart string `json:"poolStart,omitempty"`
	PoolEnd   string `json:"poolEnd,omitempty"`
	// LeaseTime is a Go duration, such as 12h.
	LeaseTime    string        `json:"leaseTime,omitempty"`
	Domain       string        `json:"domain,omitempty"`
	Router       string        `json:"router,omitempty"`
	DNSServer    string        `json:"dnsServer,omitempty"`
	Reservations []Reservation `json:"reservations,omitempty"`
}

// MappingConfig is one port mapping of a connection. A mapping without
// an ID is new; one with the ID of a mapping of the connection replaces
// it; a mapping of the connection that the document leaves out is
// removed.
type MappingConfig struct {
	ID              string   `json:"id,omitempty"`
	Name            string   `json:"name"`
	Protocol        Protocol `json:"protocol"`
	ExternalPort    int      `json:"externalPort"`
	InternalPort    int      `json:"internalPort"`
	TargetName      string   `json:"targetName,omitempty"`
	TargetIPAddress string   `json:"targetIPAddress,omitempty"`
	Enabled         bool     `json:"enabled"`
}

// DNSConfig is the DNS forwarder's configuration.
type DNSConfig struct {
	// Upstreams are the servers asked; none means those of resolv.conf.
	Upstreams []string  `json:"upstreams,omitempty"`
	Hosts     []DNSHost `json:"hosts,omitempty"`
}

// ConfigResult is the answer to PUT /v1/config: the changes the document
// makes (or, with DryRun, would make) and the state after them.
type ConfigResult struct {
	DryRun  bool     `json:"dryRun"`
	Changes []string `json:"changes"`
	Config  Config   `json:"config"`
}
