// Package ipproto holds the IP protocol of a port mapping, the one type
// the model, the store and the firewall share. Its value is the IANA
// protocol number, so the store and nftables use it as it is; its text is
// the lower-case name ("tcp", "udp") that the wire format and the logs
// use.
package ipproto

import (
	"fmt"
	"strconv"
)

// Proto is an IP protocol number.
type Proto uint8

// The protocols a port mapping forwards.
const (
	TCP Proto = 6
	UDP Proto = 17
)

// String returns "tcp" or "udp", or the number of another protocol.
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// Valid says whether p is a protocol a port mapping can forward.
func (p Proto) Valid() bool { return p == TCP || p == UDP }

// Parse returns the protocol named s: "tcp" or "udp".
func Parse(s string) (Proto, error) {
	switch s {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("protocol %q: must be tcp or udp", s)
}

// MarshalText returns the protocol's name; a protocol other than TCP and
// UDP is refused.
func (p Proto) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("protocol %d: must be tcp or udp", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses a protocol's name.
func (p *Proto) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
