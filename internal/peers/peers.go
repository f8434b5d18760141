// Package peers holds the remote peer filters of a port mapping: which
// remote addresses and ports may open flows through it. PCP's FILTER
// option (RFC 6887 §13.3) asks for them; the model stores them, the
// firewall enforces them. A mapping without filters is open to every
// remote peer.
package peers

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// Max is how many filters one mapping may have: PCP's answer to more is
// EXCESSIVE_REMOTE_PEERS.
const Max = 4

// Filter lets the remote peers in Prefix, from Port (0: any port), use a
// mapping. Prefix is IPv4 and masked.
type Filter struct {
	Prefix netip.Prefix
	Port   uint16
}

func (f Filter) String() string {
	if f.Port == 0 {
		return f.Prefix.String()
	}
	return fmt.Sprintf("%v port %d", f.Prefix, f.Port)
}

// Contains reports whether a flow from addr and port matches f.
func (f Filter) Contains(addr netip.Addr, port uint16) bool {
	return f.Prefix.Contains(addr) && (f.Port == 0 || f.Port == port)
}

// Set is a mapping's filters, in the order they were given, without
// duplicates. It is a value: sets compare with ==, and the zero Set has
// no filters (every peer may use the mapping).
type Set struct {
	n    uint8
	list [Max]Filter
}

// ErrTooMany is returned by Add when a set would have more than Max
// filters.
var ErrTooMany = fmt.Errorf("more than %d remote peer filters", Max)

// Of returns the set of fs, or an error if one is not an IPv4 prefix or
// there are more than Max.
func Of(fs ...Filter) (Set, error) { return Set{}.Add(fs...) }

// Add returns s with fs added after its own. A filter whose prefix is
// /0 from any port allows every peer: it clears the filters before it,
// as PCP's FILTER with prefix length 0 does. s is unchanged on error.
func (s Set) Add(fs ...Filter) (Set, error) {
	out := s
	for _, f := range fs {
		if !f.Prefix.IsValid() || !f.Prefix.Addr().Is4() {
			return s, fmt.Errorf("remote peer filter %v: not an IPv4 prefix", f.Prefix)
		}
		f.Prefix = f.Prefix.Masked()
		if f.Prefix.Bits() == 0 {
			out = Set{}
			if f.Port == 0 {
				continue
			}
		}
		if out.contains(f) {
			continue
		}
		if int(out.n) == Max {
			return s, ErrTooMany
		}
		out.list[out.n] = f
		out.n++
	}
	return out, nil
}

func (s Set) contains(f Filter) bool {
	for _, g := range s.list[:s.n] {
		if g == f {
			return true
		}
	}
	return false
}

// Len returns how many filters s has.
func (s Set) Len() int { return int(s.n) }

// All returns the filters, in order.
func (s Set) All() []Filter { return append([]Filter(nil), s.list[:s.n]...) }

// Allows reports whether a flow from addr and port may use the mapping:
// any flow when s is empty, otherwise one that a filter matches.
func (s Set) Allows(addr netip.Addr, port uint16) bool {
	if s.n == 0 {
		return true
	}
	for _, f := range s.list[:s.n] {
		if f.Contains(addr, port) {
			return true
		}
	}
	return false
}

func (s Set) String() string {
	if s.n == 0 {
		return "any peer"
	}
	parts := make([]string, s.n)
	for i, f := range s.list[:s.n] {
		parts[i] = f.String()
	}
	return strings.Join(parts, ", ")
}

// MarshalJSON writes the filters as a list.
func (s Set) MarshalJSON() ([]byte, error) { return json.Marshal(s.list[:s.n]) }

// UnmarshalJSON reads a list of filters, as Of checks them.
func (s *Set) UnmarshalJSON(b []byte) error {
	var fs []Filter
	if err := json.Unmarshal(b, &fs); err != nil {
		return err
	}
	set, err := Of(fs...)
	if err != nil {
		return err
	}
	*s = set
	return nil
}
