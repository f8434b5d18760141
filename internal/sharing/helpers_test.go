package sharing

import (
	"net/netip"
	"time"
)

// mustIP parses an address a test gives.
func mustIP(s string) netip.Addr { return netip.MustParseAddr(s) }

// ipPtr points to the address s, or to the zero Addr for "" (a field put
// back to its default).
func ipPtr(s string) *netip.Addr {
	var a netip.Addr
	if s != "" {
		a = mustIP(s)
	}
	return &a
}

// durPtr points to the duration s, or to 0 for "" (the default).
func durPtr(s string) *time.Duration {
	var d time.Duration
	if s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			panic(err)
		}
	}
	return &d
}
