// Package link is the model's view of the network interfaces of the namespace
// the daemon runs in: what they are (kind, driver, addresses, state) and the
// few things the model does to them (up, down, alias).
//
// Backend is the narrow seam at the kernel boundary; Fake is its in-memory
// implementation for tests and for trying netshare without touching a
// network namespace.
package link

import (
	"context"
	"net/netip"
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

// Backend reads and changes the links of one network namespace.
type Backend interface {
	// List returns every link of the namespace, loopback included.
	List(ctx context.Context) ([]Link, error)
	// SetUp sets the link administratively up.
	SetUp(ctx context.Context, name string) error
	// SetDown sets the link administratively down.
	SetDown(ctx context.Context, name string) error
	// SetAlias sets the link's alias; "" clears it.
	SetAlias(ctx context.Context, name, alias string) error
	// AddAddr adds an address to the link.
	AddAddr(ctx context.Context, name string, addr netip.Prefix) error
	// DelAddr removes an address from the link.
	DelAddr(ctx context.Context, name string, addr netip.Prefix) error
	// IPv4Forwarding reports whether the namespace forwards IPv4.
	IPv4Forwarding(ctx context.Context) (bool, error)
	// SetIPv4Forwarding turns IPv4 forwarding in the namespace on or off.
	SetIPv4Forwarding(ctx context.Context, on bool) error
}
