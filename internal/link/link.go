// Package link is the model's view of the network interfaces of the namespace
// the daemon runs in: what they are (kind, driver, addresses, state) and
// what the model sets on them.
//
// Backend is the narrow seam at the kernel boundary. What the model keeps
// on the links (IPv4 addresses, aliases, forwarding) is declared in a
// Config, which Set brings the kernel to, as fw.Backend's Replace does for
// the firewall; up and down are actions. Fake is its in-memory
// implementation for tests and for trying netshare without touching a
// network namespace.
package link

import (
	"context"
	"net/netip"
	"slices"
)

// Link is one network interface as observed.
type Link struct {
	// Name is the kernel interface name (eth0, wlan0, veth-lan).
	Name string
	// Index is the kernel interface index.
	Index int
	// Kind is the link type as the kernel names it: "device" for a
	// physical NIC, or veth, bridge, tun, wireguard, ppp, loopback, ...
	Kind string
	// Driver names the hardware or virtual driver behind the link, used as
	// the connection's device name (e1000e, iwlwifi, veth).
	Driver string
	// Alias is the interface alias (IFLA_IFALIAS), where netshare keeps the
	// friendly name for other tools to see.
	Alias string
	// Up is the administrative state (IFF_UP).
	Up bool
	// Carrier reports whether the link has a carrier (IFF_LOWER_UP).
	Carrier bool
	// Wireless is true for 802.11 links.
	Wireless bool
	// Addrs are the link's addresses.
	Addrs []netip.Prefix
}

// Config is what the model keeps on the links. A link or a setting it does
// not name is left as it is.
type Config struct {
	// IPv4 are, by link name, the link's IPv4 addresses: exactly these.
	// Its IPv6 addresses are left alone.
	IPv4 map[string][]netip.Prefix
	// Aliases are, by link name, the link's alias; "" clears it.
	Aliases map[string]string
	// IPv4Forwarding, if set, is whether the namespace forwards IPv4.
	IPv4Forwarding *bool
}

// Empty reports whether c sets nothing.
func (c *Config) Empty() bool {
	return c == nil || len(c.IPv4) == 0 && len(c.Aliases) == 0 && c.IPv4Forwarding == nil
}

// Backend reads and changes the links of one network namespace.
type Backend interface {
	// List returns every link of the namespace, loopback included.
	List(ctx context.Context) ([]Link, error)
	// IPv4Forwarding reports whether the namespace forwards IPv4.
	IPv4Forwarding(ctx context.Context) (bool, error)
	// Set brings the links to cfg, and is idempotent. It adds a link's
	// missing addresses before it removes the others, so that the link
	// keeps an address throughout; it goes on past a failure, and returns
	// every failure joined, each an *OpError. It returns the state it
	// reached for what cfg names.
	Set(ctx context.Context, cfg *Config) (*Config, error)
	// SetUp sets the link administratively up.
	SetUp(ctx context.Context, name string) error
	// SetDown sets the link administratively down.
	SetDown(ctx context.Context, name string) error
}

// OpError is a failed operation on a link, or on the namespace (Link "").
type OpError struct {
	// Op says what was done: "adding address", "removing address",
	// "setting the alias", "setting IPv4 forwarding", ...
	Op string
	// Link is the link's name; "" for the namespace.
	Link string
	// Arg is what the operation was given (an address), or "".
	Arg string
	Err error
}

func (e *OpError) Error() string {
	s := e.Op
	if e.Arg != "" {
		s += " " + e.Arg
	}
	if e.Link != "" {
		s += " on " + e.Link
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Plan returns the operations that bring a link's IPv4 addresses from
// have to want: the additions first, then the removals.
func Plan(have, want []netip.Prefix) (add, del []netip.Prefix) {
	for _, p := range want {
		if !slices.Contains(have, p) && !slices.Contains(add, p) {
			add = append(add, p)
		}
	}
	for _, p := range have {
		if p.Addr().Is4() && !slices.Contains(want, p) {
			del = append(del, p)
		}
	}
	return add, del
}
