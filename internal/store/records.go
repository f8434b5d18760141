package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
)

// The keys of the records. Each kind of record has a prefix; the rest of
// the key is the record's id.
const (
	// KeySettings holds the Settings (JSON).
	KeySettings = "settings"
	// KeyLastMappingID holds the highest mapping id ever used, deleted
	// ones included, as 8 big-endian bytes: ids are never reused. The
	// store keeps what it is given; the model only ever raises it.
	KeyLastMappingID = "counters/mappings"
	// PrefixConnection, then the connection's id: a Connection (JSON).
	PrefixConnection = "connections/"
	// PrefixMapping, then the mapping's id in decimal: a Mapping in its
	// binary record (see mapping.go).
	PrefixMapping = "mappings/"
	// PrefixLease, then Lease.Key(): a Lease (JSON).
	PrefixLease = "leases/"

	// In the runtime store, beside the DHCP leases: the mappings devices
	// lease for themselves (NAT-PMP, PCP), which come and go with their
	// clients and are not the administrator's desired state.
	//
	// PrefixDeviceMapping, then the mapping's id in decimal: a Mapping
	// whose Origin is not OriginUser, in its binary record.
	PrefixDeviceMapping = "devicemappings/"
	// KeyLastDeviceMappingID holds the highest id a device's mapping was
	// given, as KeyLastMappingID does for the desired state's: the two
	// kinds share one space of ids, the highest of both being the last.
	KeyLastDeviceMappingID = "counters/devicemappings"
	// KeyPortMapEpoch holds when the devices' mapping state began (Unix
	// seconds, 8 big-endian bytes): NAT-PMP and PCP report the time since,
	// and a client that sees it go back maps again. It is kept across
	// restarts, as the mappings are.
	KeyPortMapEpoch = "portmap/epoch"
	// KeyPortMapAddr holds the public address the devices' mappings were
	// made on (netip.Addr's binary form): one found different at start
	// ends them, as a change while netshare runs does.
	KeyPortMapAddr = "portmap/address"
)

// Origin says who made a mapping.
type Origin uint8

// Origins: a person (through the API, the CLI, the UI), or a device on a
// private network asking for itself.
const (
	OriginUser   Origin = 0
	OriginNATPMP Origin = 1
	OriginPCP    Origin = 2
	OriginUPnP   Origin = 3
)

// Valid reports whether o is an origin netshare knows.
func (o Origin) Valid() bool { return o <= OriginUPnP }

func (o Origin) String() string {
	switch o {
	case OriginUser:
		return "user"
	case OriginNATPMP:
		return "natpmp"
	case OriginPCP:
		return "pcp"
	case OriginUPnP:
		return "upnp"
	}
	return fmt.Sprintf("origin-%d", uint8(o))
}

// Role is the sharing role of a connection.
type Role string

// Roles. RoleNone is a connection that is not shared.
const (
	RoleNone    Role = ""
	RolePublic  Role = "public"
	RolePrivate Role = "private"
)

// Connection is the stored part of a connection: what netshare decided
// about it, not what the kernel reports.
type Connection struct {
	ID        string `json:"id"`
	Interface string `json:"interface"`
	// Name is the friendly name; "" means the interface name.
	Name     string `json:"name,omitempty"`
	Role     Role   `json:"role,omitempty"`
	Firewall bool   `json:"firewall,omitempty"`
	// AllowPing lets a firewalled connection answer ping.
	AllowPing bool `json:"allowPing,omitempty"`
	// PrivateAddress is the address (with prefix) the connection has while
	// shared as private; the zero Prefix means the default.
	PrivateAddress netip.Prefix `json:"privateAddress,omitzero"`
	// SavedAddrs are the IPv4 addresses the link had before it was shared
	// as private, put back when sharing stops; nil when none are kept.
	SavedAddrs []netip.Prefix `json:"savedAddrs,omitempty"`
	// DHCP configures the DHCP server of a private connection; nil means
	// the defaults.
	DHCP *DHCP `json:"dhcp,omitempty"`
	// NATTraversal lets the devices of a private connection ask for port
	// mappings of their own (NAT-PMP, PCP).
	NATTraversal bool `json:"natTraversal,omitempty"`
}

// DHCP is the stored DHCP configuration of a private connection. Zero
// fields take the defaults.
type DHCP struct {
	PoolStart    netip.Addr    `json:"poolStart,omitzero"`
	PoolEnd      netip.Addr    `json:"poolEnd,omitzero"`
	LeaseSeconds int64         `json:"leaseSeconds,omitempty"`
	Domain       string        `json:"domain,omitempty"`
	Router       netip.Addr    `json:"router,omitzero"`
	DNSServer    netip.Addr    `json:"dnsServer,omitzero"`
	Reservations []Reservation `json:"reservations,omitempty"`
}

// Reservation gives a hardware address a fixed address and a name.
type Reservation struct {
	// MAC is the hardware address in the form net.HardwareAddr prints.
	MAC  string     `json:"mac"`
	IP   netip.Addr `json:"ip"`
	Name string     `json:"name,omitempty"`
}

// Lease is a DHCP lease, or (Declined) an address a client found in use,
// set aside until Expiry.
type Lease struct {
	Connection string     `json:"connection"`
	MAC        string     `json:"mac,omitempty"`
	IP         netip.Addr `json:"ip"`
	Hostname   string     `json:"hostname,omitempty"`
	Expiry     int64      `json:"expiry"` // Unix seconds
	Declined   bool       `json:"declined,omitempty"`
}

// Key returns the lease's key: one lease per client and connection, one
// declined record per address and connection.
func (l Lease) Key() string {
	if l.Declined {
		return l.Connection + "|declined|" + l.IP.String()
	}
	return l.Connection + "|" + l.MAC
}

// Mapping is a stored port mapping. Exactly one of TargetName and
// TargetIP is set.
type Mapping struct {
	ID           uint64
	Connection   string
	Name         string
	Protocol     ipproto.Proto
	ExternalPort uint16
	InternalPort uint16
	Options      uint32
	TargetName   string
	TargetIP     netip.Addr
	Enabled      bool

	// Origin is who made the mapping. A device's mapping (any origin but
	// OriginUser) lives in the runtime store and also has: Client, the
	// address that asked for it (the target, unless it asked for another
	// host); Expiry, when it ends (Unix milliseconds); Nonce, the PCP client's
	// nonce that owns it.
	Origin Origin
	Client netip.Addr
	Expiry int64
	Nonce  [12]byte
	// Peers are the remote peers that may use a device's mapping (PCP's
	// FILTER); none, any may.
	Peers peers.Set
}

// key returns the record key of m: by its origin, in the desired or the
// runtime store.
func (m *Mapping) key() string {
	if m.Origin != OriginUser {
		return DeviceMappingKey(m.ID)
	}
	return MappingKey(m.ID)
}

// Settings are the namespace-wide things netshare keeps.
type Settings struct {
	// ForwardingSaved is set while netshare has IPv4 forwarding on
	// because of sharing; ForwardingWas is the value it had before, put
	// back when the last sharing stops.
	ForwardingSaved bool `json:"forwardingSaved,omitempty"`
	ForwardingWas   bool `json:"forwardingWas,omitempty"`
	// Upstreams are the DNS servers the forwarder asks, each an IP
	// address with or without a port; none means those of the
	// namespace's resolv.conf.
	Upstreams []string `json:"upstreams,omitempty"`
	// Hosts are static DNS entries, name to IPv4 address.
	Hosts map[string]netip.Addr `json:"hosts,omitempty"`
	// PortMap is what devices may map for themselves; nil means the
	// defaults.
	PortMap *PortMapPolicy `json:"portMap,omitempty"`
}

// PortMapPolicy is what devices may map for themselves (NAT-PMP, PCP).
type PortMapPolicy struct {
	// Rules are tried in order; the first that matches decides, and a
	// request no rule matches is refused.
	Rules []PortMapRule `json:"rules"`
	// Lifetimes asked for are clamped to [MinLifetime, MaxLifetime]
	// (seconds).
	MinLifetime int64 `json:"minLifetime"`
	MaxLifetime int64 `json:"maxLifetime"`
	// Quota is how many mappings one host may have; Rate how many
	// requests a second one client may send.
	Quota int     `json:"quota"`
	Rate  float64 `json:"rate"`
	// AllowThirdParty lets a PCP client map for another host.
	AllowThirdParty bool `json:"allowThirdParty,omitempty"`
}

// PortMapRule allows or denies the mappings of clients (any when the
// prefix is zero) from a range of external ports to a range of internal
// ones.
type PortMapRule struct {
	Allow    bool         `json:"allow"`
	Clients  netip.Prefix `json:"clients,omitzero"`
	External PortRange    `json:"external"`
	Internal PortRange    `json:"internal"`
}

// PortRange is the ports First to Last.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// State is everything the stores hold, decoded.
type State struct {
	// Rev is the desired state's revision, RuntimeRev the leases'.
	Rev         Rev
	RuntimeRev  Rev
	Settings    Settings
	Connections []Connection
	// Mappings are a person's (from the desired state) and the devices'
	// (from the runtime store; Origin tells them apart).
	Mappings []Mapping
	Leases   []Lease
	// LastMappingID is the highest mapping id ever stored, by a person or
	// a device, deleted ones included, so that ids are never reused.
	LastMappingID uint64
	// PortMapEpoch is when the devices' mapping state began (Unix
	// seconds); 0 when it never did. PortMapAddr is the public address
	// their mappings were made on.
	PortMapEpoch int64
	PortMapAddr  netip.Addr
}

// MappingKey returns the key of mapping id.
func MappingKey(id uint64) string { return PrefixMapping + strconv.FormatUint(id, 10) }

// DeviceMappingKey returns the key of a device's mapping id.
func DeviceMappingKey(id uint64) string { return PrefixDeviceMapping + strconv.FormatUint(id, 10) }

// Batch collects the record changes of one commit. The first error of an
// encoding sticks, and Records returns it.
type Batch struct {
	recs []Record
	err  error
}

// Len returns the number of changes in the batch.
func (b *Batch) Len() int { return len(b.recs) }

// Records returns the batch's changes, or the first encoding error.
func (b *Batch) Records() ([]Record, error) { return b.recs, b.err }

func (b *Batch) putJSON(key string, v any) {
	data, err := json.Marshal(v)
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("encoding %s: %w", key, err)
	}
	b.recs = append(b.recs, Record{Key: key, Value: data})
}

// PutConnection writes c.
func (b *Batch) PutConnection(c Connection) { b.putJSON(PrefixConnection+c.ID, c) }

// PutLease writes l.
func (b *Batch) PutLease(l Lease) { b.putJSON(PrefixLease+l.Key(), l) }

// DeleteLease deletes the lease with the given key.
func (b *Batch) DeleteLease(key string) { b.recs = append(b.recs, Record{Key: PrefixLease + key}) }

// PutSettings writes the settings.
func (b *Batch) PutSettings(s Settings) { b.putJSON(KeySettings, s) }

// PutMapping writes m. A new mapping's id is recorded as used with
// SetLastMappingID in the same batch. A device's mapping goes in the
// runtime store's batch, a person's in the desired state's.
func (b *Batch) PutMapping(m Mapping) {
	v, err := encodeMapping(m)
	if err != nil && b.err == nil {
		b.err = err
	}
	b.recs = append(b.recs, Record{Key: m.key(), Value: v})
}

// DeleteMapping deletes mapping id of origin o.
func (b *Batch) DeleteMapping(id uint64, o Origin) {
	m := Mapping{ID: id, Origin: o}
	b.recs = append(b.recs, Record{Key: m.key()})
}

// Split returns the batch's records for the desired state and for the
// runtime store (leases, devices' mappings), in their order.
func (b *Batch) Split() (desired, runtime []Record, err error) {
	if b.err != nil {
		return nil, nil, b.err
	}
	for _, r := range b.recs {
		if RuntimeKey(r.Key) {
			runtime = append(runtime, r)
		} else {
			desired = append(desired, r)
		}
	}
	return desired, runtime, nil
}

// RuntimeKey reports whether key belongs to the runtime store.
func RuntimeKey(key string) bool {
	return strings.HasPrefix(key, PrefixLease) || key == KeyLastDeviceMappingID || strings.HasPrefix(key, PrefixDeviceMapping) ||
		key == KeyPortMapEpoch || key == KeyPortMapAddr
}

// SetLastMappingID records id as the highest mapping id ever used, in the
// desired state.
func (b *Batch) SetLastMappingID(id uint64) {
	b.recs = append(b.recs, Record{Key: KeyLastMappingID, Value: binary.BigEndian.AppendUint64(nil, id)})
}

// SetPortMapEpoch records when the devices' mapping state began.
func (b *Batch) SetPortMapEpoch(t time.Time) {
	b.recs = append(b.recs, Record{Key: KeyPortMapEpoch, Value: binary.BigEndian.AppendUint64(nil, uint64(t.Unix()))})
}

// SetPortMapAddr records the public address the devices' mappings are
// made on.
func (b *Batch) SetPortMapAddr(a netip.Addr) {
	v, _ := a.MarshalBinary()
	b.recs = append(b.recs, Record{Key: KeyPortMapAddr, Value: v})
}

// SetLastDeviceMappingID records id as the highest id a device's mapping
// was given, in the runtime store.
func (b *Batch) SetLastDeviceMappingID(id uint64) {
	b.recs = append(b.recs, Record{Key: KeyLastDeviceMappingID, Value: binary.BigEndian.AppendUint64(nil, id)})
}

// Decode parses a snapshot. A record that does not parse is refused with
// an error naming its key; nothing is replaced by a default.
func Decode(snap Snapshot) (*State, error) {
	d := newDecoder(&State{Rev: snap.Rev})
	for _, r := range snap.Records {
		if err := d.add(r); err != nil {
			return nil, err
		}
	}
	return d.done(), nil
}

// decoder builds a State one record at a time.
type decoder struct {
	st    *State
	conns map[[16]byte]string // one string per connection id, for the mappings
}

func newDecoder(st *State) *decoder { return &decoder{st: st, conns: map[[16]byte]string{}} }

// add decodes r; its bytes are not kept.
func (d *decoder) add(r Record) error {
	if err := d.st.decode(r, d.conn); err != nil {
		return fmt.Errorf("record %q: %w", r.Key, err)
	}
	return nil
}

func (d *decoder) conn(b [16]byte) string {
	s, ok := d.conns[b]
	if !ok {
		s = guidString(b)
		d.conns[b] = s
	}
	return s
}

func (d *decoder) done() *State {
	for _, m := range d.st.Mappings {
		d.st.LastMappingID = max(d.st.LastMappingID, m.ID)
	}
	return d.st
}

func (st *State) decode(r Record, conn func([16]byte) string) error {
	k, v := r.Key, r.Value
	switch {
	case k == KeySettings:
		if err := strictJSON(v, &st.Settings); err != nil {
			return err
		}
		return st.Settings.check()
	case k == KeyPortMapEpoch:
		if len(v) != 8 {
			return fmt.Errorf("%d bytes, want 8", len(v))
		}
		st.PortMapEpoch = int64(binary.BigEndian.Uint64(v))
	case k == KeyPortMapAddr:
		if err := st.PortMapAddr.UnmarshalBinary(v); err != nil || !st.PortMapAddr.Is4() {
			return fmt.Errorf("not an IPv4 address: %x", v)
		}
	case k == KeyLastMappingID || k == KeyLastDeviceMappingID:
		if len(v) != 8 {
			return fmt.Errorf("%d bytes, want 8", len(v))
		}
		st.LastMappingID = max(st.LastMappingID, binary.BigEndian.Uint64(v))
	case strings.HasPrefix(k, PrefixConnection):
		var c Connection
		if err := strictJSON(v, &c); err != nil {
			return err
		}
		if c.ID != k[len(PrefixConnection):] {
			return fmt.Errorf("holds connection %q", c.ID)
		}
		if err := c.check(); err != nil {
			return err
		}
		st.Connections = append(st.Connections, c)
	case strings.HasPrefix(k, PrefixMapping):
		id, err := strconv.ParseUint(k[len(PrefixMapping):], 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("not a mapping id")
		}
		m, err := decodeMappingWith(id, v, conn)
		if err != nil {
			return err
		}
		if m.Origin != OriginUser {
			return fmt.Errorf("a device's mapping (%v) among the desired state's", m.Origin)
		}
		st.Mappings = append(st.Mappings, m)
	case strings.HasPrefix(k, PrefixDeviceMapping):
		id, err := strconv.ParseUint(k[len(PrefixDeviceMapping):], 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("not a mapping id")
		}
		m, err := decodeMappingWith(id, v, conn)
		if err != nil {
			return err
		}
		if m.Origin == OriginUser {
			return fmt.Errorf("a person's mapping among the devices'")
		}
		st.Mappings = append(st.Mappings, m)
	case strings.HasPrefix(k, PrefixLease):
		var l Lease
		if err := strictJSON(v, &l); err != nil {
			return err
		}
		if l.Key() != k[len(PrefixLease):] {
			return fmt.Errorf("holds lease %q", l.Key())
		}
		if err := l.check(); err != nil {
			return err
		}
		st.Leases = append(st.Leases, l)
	default:
		return fmt.Errorf("not a key netshare knows")
	}
	return nil
}

// strictJSON decodes one JSON value, refusing trailing data.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// Scanner is a Store that can hand its records to a function one at a
// time, so that a large state is decoded without a snapshot of it in
// memory. The Record's bytes are valid only during the call; sizes, if
// not nil, hears how many records of a kind (a key prefix) there are.
type Scanner interface {
	Scan(ctx context.Context, sizes func(kind string, n int), fn func(Record) error) (Rev, error)
}

// LoadState loads and decodes the desired state and the runtime state.
func LoadState(ctx context.Context, desired, runtime Store) (*State, error) {
	st := &State{}
	d := newDecoder(st)
	var err error
	if st.Rev, err = load(ctx, desired, d); err != nil {
		return nil, err
	}
	if st.RuntimeRev, err = load(ctx, runtime, d); err != nil {
		return nil, err
	}
	return d.done(), nil
}

// load decodes the records of s into d, and returns their revision.
func load(ctx context.Context, s Store, d *decoder) (Rev, error) {
	if sc, ok := s.(Scanner); ok {
		sizes := func(kind string, n int) {
			if kind == PrefixMapping {
				d.st.Mappings = slices.Grow(d.st.Mappings, n)
			}
		}
		return sc.Scan(ctx, sizes, d.add)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range snap.Records {
		if err := d.add(r); err != nil {
			return 0, err
		}
	}
	return snap.Rev, nil
}
