package sharing

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
	"github.com/netshare/netshare/internal/store"
)

// The model's own types: what it takes and what it answers. They carry
// parsed values (netip addresses, the protocol number, typed ids and
// enums); internal/api converts them to and from the wire format of
// hnetcfg, so that a new front end (NAT-PMP, PCP, UPnP) speaks to the
// model without building a client's structs.

// Role is a connection's role in sharing: none, public or private.
type Role = store.Role

// The roles.
const (
	RoleNone    = store.RoleNone
	RolePublic  = store.RolePublic
	RolePrivate = store.RolePrivate
)

// Origin says who made a mapping: a person (through the API, the CLI or
// the UI), or a device on a private network asking for itself (NAT-PMP,
// PCP; later UPnP). A device's mapping is a lease: it ends at its expiry
// unless the device renews it, and it is not part of the desired state's
// document.
type Origin = store.Origin

// The origins.
const (
	OriginUser   = store.OriginUser
	OriginNATPMP = store.OriginNATPMP
	OriginPCP    = store.OriginPCP
	OriginUPnP   = store.OriginUPnP
)

// Status is a connection's state, after NETCON_STATUS.
type Status uint8

// The states a connection can be in.
const (
	StatusDisconnected Status = iota
	StatusConnected
	StatusHardwareNotPresent
	StatusHardwareDisabled
	StatusMediaDisconnected
	StatusInvalidAddress
)

// Media is a connection's medium, after NETCON_MEDIATYPE.
type Media uint8

// The media.
const (
	MediaNone Media = iota
	MediaLAN
	MediaTunnel
	MediaPPPoE
	MediaBridge
)

// Characteristics are a connection's NETCON_CHARACTERISTIC_FLAGS.
type Characteristics uint8

// The characteristics netshare sets.
const (
	CharAllUsers Characteristics = 1 << iota
	CharAllowRename
	CharShared
	CharSharedPrivate
	CharFirewalled
)

// Connection is a connection as the model knows it: what netshare keeps
// of it and what its link last showed.
type Connection struct {
	// ID is the connection's GUID, stable across renames and restarts.
	ID string
	// Name is the friendly name; the interface name until renamed.
	Name      string
	Interface string
	// Device names the driver or device behind the interface.
	Device          string
	Status          Status
	Media           Media
	Characteristics Characteristics
	Role            Role
	// PrivateAddress is a private connection's address with its prefix.
	PrivateAddress netip.Prefix
	Firewall       bool
	// AllowPing says whether the firewall lets inbound ping through.
	AllowPing bool
	// NATTraversal lets the devices of the connection, while it is
	// shared as private, ask for port mappings (NAT-PMP, PCP).
	NATTraversal bool
}

// MappingID is a port mapping's id. Ids are never reused.
type MappingID uint64

func (id MappingID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseMappingID parses a mapping id as MappingID.String writes it.
func ParseMappingID(s string) (MappingID, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return MappingID(n), err == nil && n != 0
}

// Target is where a port mapping forwards: a host name (resolved through
// the leases, reservations and static names) or an IPv4 address. Exactly
// one is set.
type Target struct {
	Name string
	IP   netip.Addr
}

// MappingSpec describes a port mapping (the arguments of
// AddPortMapping).
type MappingSpec struct {
	Name         string
	Protocol     ipproto.Proto
	ExternalPort uint16
	InternalPort uint16
	// Options is reserved and must be 0.
	Options uint32
	Target  Target
}

// Mapping is a port mapping of a connection.
type Mapping struct {
	ID         MappingID
	Connection string
	MappingSpec
	Enabled bool
	// Resolved is where a name target points now; Unresolved says that
	// no lease, reservation or static name knows the name, so the
	// mapping moves no traffic.
	Resolved   netip.Addr
	Unresolved bool
	// ApplyError, when set, says why the firewall does not hold the
	// mapping as stored yet; the model keeps trying until it does.
	ApplyError error

	// Origin is who made the mapping. A device's mapping also has the
	// address of the Client that asked for it and when it Expires.
	Origin  Origin
	Client  netip.Addr
	Expires time.Time
	// Peers are the remote peers that may use a device's mapping (PCP's
	// FILTER); with none, any may.
	Peers peers.Set
}

// MappingEdit changes the fields of a mapping that are not nil. A
// TargetName that is not empty, or a TargetIP that is valid, becomes the
// target and clears the other; an empty one clears its own.
type MappingEdit struct {
	Name         *string
	Protocol     *ipproto.Proto
	ExternalPort *uint16
	InternalPort *uint16
	Options      *uint32
	TargetName   *string
	TargetIP     *netip.Addr
	Enabled      *bool
}

// MappingFilter selects mappings in a listing.
type MappingFilter struct {
	// EnabledOnly lists the enabled mappings only (ICSSC_ENABLED).
	EnabledOnly bool
	// Origin, when set, lists the mappings of that origin only; Client,
	// when valid, the mappings of that device only.
	Origin *Origin
	Client netip.Addr
	// Text, when set, lists the mappings with it in their name, protocol,
	// ports, target or client (case aside).
	Text string
	// After lists the mappings whose id is greater (the page after the
	// one that ended with it); Limit, when above 0, lists that many at
	// most.
	After MappingID
	Limit int
}

// matches reports whether mp is one f selects (After and Limit aside).
func (f *MappingFilter) matches(mp *store.Mapping) bool {
	return (!f.EnabledOnly || mp.Enabled) && (f.Origin == nil || mp.Origin == *f.Origin) && (!f.Client.IsValid() || mp.Client == f.Client) &&
		(f.Text == "" || mappingHas(mp, strings.ToLower(f.Text)))
}

// mappingHas reports whether text (lower case) is in one of mp's fields
// as a person reads them.
func mappingHas(mp *store.Mapping, text string) bool {
	for _, s := range []string{mp.Name, mp.Protocol.String(), strconv.Itoa(int(mp.ExternalPort)), strconv.Itoa(int(mp.InternalPort)), mp.TargetName} {
		if strings.Contains(strings.ToLower(s), text) {
			return true
		}
	}
	for _, a := range []netip.Addr{mp.TargetIP, mp.Client} {
		if a.IsValid() && strings.Contains(a.String(), text) {
			return true
		}
	}
	return false
}

// Overview is what is shared: the public connection and the private
// ones.
type Overview struct {
	Public  []Connection
	Private []Connection
	// PublicAddress is the public connection's address, the one devices'
	// mappings are made on; BehindNAT says it is itself a private or
	// shared (100.64.0.0/10) address: another NAT is upstream, and a
	// mapping made here reaches only as far as that network unless the
	// upstream forwards the port too.
	PublicAddress netip.Addr
	BehindNAT     bool
}

// DHCPSettings is the DHCP configuration of a connection, with the
// defaults filled in.
type DHCPSettings struct {
	Connection string
	// Active says whether the server runs: the connection is shared as
	// private and present.
	Active       bool
	Subnet       netip.Prefix
	PoolStart    netip.Addr
	PoolEnd      netip.Addr
	LeaseTime    time.Duration
	Domain       string
	Router       netip.Addr
	DNSServer    netip.Addr
	Reservations []Reservation
}

// DHCPEdit changes the DHCP settings that are not nil; a zero address,
// a zero lease time or an empty domain puts the field back to its
// default.
type DHCPEdit struct {
	PoolStart *netip.Addr
	PoolEnd   *netip.Addr
	LeaseTime *time.Duration
	Domain    *string
	Router    *netip.Addr
	DNSServer *netip.Addr
}

// Reservation gives a hardware address a fixed address and a host name.
type Reservation struct {
	// MAC is the hardware address; the model keeps it in lower case with
	// colons.
	MAC  string
	IP   netip.Addr
	Name string
}

// LeaseInfo is a DHCP lease as the lease list shows it.
type LeaseInfo struct {
	Connection string
	Interface  string
	MAC        string
	IP         netip.Addr
	Hostname   string
	Expiry     time.Time
	Active     bool
}

// DNSSettings is the DNS forwarder's configuration.
type DNSSettings struct {
	// Upstreams are the servers asked; none means those of the
	// gateway's resolv.conf, which Effective lists.
	Upstreams []netip.AddrPort
	Effective []netip.AddrPort
	Hosts     []DNSHost
}

// DNSHost is a static name.
type DNSHost struct {
	Name string
	IP   netip.Addr
}

// Config is the whole desired state as one document.
type Config struct {
	// Revision is the revision of the state the document was read at.
	Revision    string
	Connections []ConnectionConfig
	DNS         DNSConfig
	// PortMapPolicy is what devices may map for themselves; nil means the
	// defaults.
	PortMapPolicy *PortMapPolicy
}

// ConnectionConfig is what netshare keeps of one connection. It is found
// by ID, or else by Interface.
type ConnectionConfig struct {
	ID        string
	Interface string
	// Name is the friendly name; "" means the interface name.
	Name string
	Role Role
	// Address is a private connection's address; the zero Prefix keeps
	// the one it had, or the default.
	Address   netip.Prefix
	Firewall  bool
	AllowPing bool
	// DHCP is the DHCP configuration; nil means the defaults.
	DHCP         *DHCPConfig
	NATTraversal bool
	Mappings     []MappingConfig
}

// DHCPConfig is the DHCP configuration of a private connection. Zero
// fields take the defaults.
type DHCPConfig struct {
	PoolStart    netip.Addr
	PoolEnd      netip.Addr
	LeaseTime    time.Duration
	Domain       string
	Router       netip.Addr
	DNSServer    netip.Addr
	Reservations []Reservation
}

// MappingConfig is one port mapping of a connection in a document. A
// mapping with ID 0 is new, or takes the id of the mapping that has its
// protocol and external port.
type MappingConfig struct {
	ID MappingID
	MappingSpec
	Enabled bool
}

// DNSConfig is the DNS forwarder's configuration in a document.
type DNSConfig struct {
	Upstreams []netip.AddrPort
	Hosts     []DNSHost
}

// ConfigResult is what applying a document did (or, with DryRun, would
// do): the changes in words and the state after them.
type ConfigResult struct {
	DryRun  bool
	Changes []string
	Config  Config
}
