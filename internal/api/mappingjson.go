package api

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"time"

	"github.com/netshare/netshare/internal/sharing"
)

// appendMappings appends ms as the JSON that encoding/json writes for
// the array of mappingProps(m) for each m of ms, then a newline,
// byte for byte, without reflection or the intermediate structs: a
// connection's mapping list is the answer read most often, and encoding it
// by reflection was most of its cost.
func appendMappings(b []byte, ms []sharing.Mapping) []byte {
	b = append(b, '[')
	for i := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMapping(b, &ms[i])
	}
	return append(b, "]\n"...)
}

// appendMapping appends m as encoding/json writes mappingProps(m), in the
// order of hnetcfg.PortMappingProps' fields, omitting what it omits.
func appendMapping(b []byte, m *sharing.Mapping) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendUint(b, uint64(m.ID), 10)
	b = append(b, `","name":`...)
	b = appendString(b, m.Name)
	b = append(b, `,"protocol":`...)
	b = appendString(b, m.Protocol.String())
	b = append(b, `,"externalPort":`...)
	b = strconv.AppendUint(b, uint64(m.ExternalPort), 10)
	b = append(b, `,"internalPort":`...)
	b = strconv.AppendUint(b, uint64(m.InternalPort), 10)
	b = append(b, `,"targetName":`...)
	b = appendString(b, m.Target.Name)
	b = append(b, `,"targetIPAddress":`...)
	b = appendAddr(b, m.Target.IP)
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, m.Enabled)
	b = append(b, `,"options":`...)
	b = strconv.AppendUint(b, uint64(m.Options), 10)
	if m.Resolved.IsValid() {
		b = append(b, `,"resolvedIPAddress":`...)
		b = appendAddr(b, m.Resolved)
	}
	b = append(b, `,"unresolved":`...)
	b = strconv.AppendBool(b, m.Unresolved)
	if m.ApplyError != nil {
		if msg := m.ApplyError.Error(); msg != "" {
			b = append(b, `,"applyError":`...)
			b = appendString(b, msg)
		}
	}
	b = append(b, `,"origin":`...)
	b = appendString(b, m.Origin.String())
	if m.Client.IsValid() {
		b = append(b, `,"client":`...)
		b = appendAddr(b, m.Client)
	}
	if !m.Expires.IsZero() {
		b = append(b, `,"expires":"`...)
		b = m.Expires.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, '"')
	}
	if fs := m.Peers.All(); len(fs) > 0 {
		b = append(b, `,"remotePeers":[`...)
		for i, f := range fs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f.String())
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendAddr appends a as a JSON string ("" for the zero Addr). An IPv4
// address is written as it is; anything else (an IPv6 address may carry a
// zone, which is any text) goes through appendString.
func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return append(b, `""`...)
	case a.Is4():
		b = append(b, '"')
		b = a.AppendTo(b)
		return append(b, '"')
	}
	return appendString(b, a.String())
}

// appendString appends s as a JSON string as encoding/json writes it
// (HTML characters escaped). Plain printable ASCII, what names and
// addresses nearly always are, is copied; anything else goes through
// encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
