// Package fw holds what the model asks of the packet filter: which
// connection is shared as public, which are private, which are firewalled,
// and the enabled port mappings. Backend is the seam to the kernel; Fake
// keeps the desired state in memory.
//
// A Backend takes structural changes as a whole Config (Replace) and port
// mapping changes as element deltas (UpdateMappings), so that adding,
// removing, enabling or disabling one mapping costs the same whatever the
// number of mappings.
package fw

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
)

// Key identifies a port mapping in the filter: traffic arriving on
// Interface for Protocol and ExternalPort.
type Key struct {
	Interface    string
	Protocol     ipproto.Proto
	ExternalPort uint16
}

func (k Key) String() string {
	return fmt.Sprintf("%s %s/%d", k.Interface, k.Protocol, k.ExternalPort)
}

// Mapping is an enabled port mapping with a resolved target. Peers, if
// any, are the remote peers that may open flows through it (PCP's
// FILTER); without, any may.
type Mapping struct {
	Key
	Target       netip.Addr
	InternalPort uint16
	Peers        peers.Set
}

func (m Mapping) String() string {
	s := fmt.Sprintf("%s -> %s", m.Key, netip.AddrPortFrom(m.Target, m.InternalPort))
	if m.Peers.Len() > 0 {
		s += " from " + m.Peers.String()
	}
	return s
}

// Config is the filter's desired state. Interfaces are kernel names.
type Config struct {
	// Public is the connection shared to the private ones; "" for none.
	Public string
	// PublicAddrs are the public connection's IPv4 addresses, sorted: a
	// private host that connects to one of them on the port of an enabled
	// mapping of the public connection reaches its target (hairpin).
	PublicAddrs []netip.Addr
	// Private are the connections shared as private, sorted.
	Private []string
	// Firewalled are the connections with the firewall on, sorted.
	Firewalled []string
	// Ping are the firewalled connections that answer ping, sorted.
	Ping []string
	// Mappings are the enabled, resolved port mappings, sorted by Key.
	Mappings []Mapping
}

// Sort puts c's slices in their canonical order.
func (c *Config) Sort() {
	slices.SortFunc(c.PublicAddrs, netip.Addr.Compare)
	slices.Sort(c.Private)
	slices.Sort(c.Firewalled)
	slices.Sort(c.Ping)
	SortMappings(c.Mappings)
}

// SortMappings sorts ms by Key.
func SortMappings(ms []Mapping) {
	slices.SortFunc(ms, func(a, b Mapping) int { return CompareKeys(a.Key, b.Key) })
}

// CompareKeys orders keys by interface, protocol and port.
func CompareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Interface, b.Interface), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.ExternalPort, b.ExternalPort))
}

// Equal reports whether c and o hold the same state; both must be sorted.
func (c *Config) Equal(o *Config) bool {
	return c.Public == o.Public && slices.Equal(c.PublicAddrs, o.PublicAddrs) && slices.Equal(c.Private, o.Private) &&
		slices.Equal(c.Firewalled, o.Firewalled) && slices.Equal(c.Ping, o.Ping) &&
		slices.Equal(c.Mappings, o.Mappings)
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	return &Config{
		Public:      c.Public,
		PublicAddrs: slices.Clone(c.PublicAddrs),
		Private:     slices.Clone(c.Private),
		Firewalled:  slices.Clone(c.Firewalled),
		Ping:        slices.Clone(c.Ping),
		Mappings:    slices.Clone(c.Mappings),
	}
}

// OpError is a failed operation of a Backend on an object of the packet
// filter, shaped like net.OpError: errors.As finds it, errors.Is sees
// through it to the kernel's cause.
type OpError struct {
	// Op says what was done: "replacing", "updating", "deleting".
	Op string
	// Object names what it was done to: "table inet netshare",
	// "map mappings (-1 +2 elements)".
	Object string
	Err    error
}

func (e *OpError) Error() string { return e.Op + " " + e.Object + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Backend applies a Config to a packet filter.
type Backend interface {
	// Replace installs cfg as the whole state, atomically. It may be called
	// with the same Config many times.
	Replace(ctx context.Context, cfg *Config) error
	// UpdateMappings removes del and then adds add, atomically, leaving the
	// rest of the state as it is. Keys in del are present; keys in add are
	// absent once del is removed.
	UpdateMappings(ctx context.Context, del, add []Mapping) error
}
