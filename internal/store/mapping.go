package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
)

// Mappings are the bulk of the state (tens of thousands of them), so they
// are stored in a compact binary record rather than JSON, about a quarter
// of the size:
//
//	version (1) | flags (1) | protocol (1) | external port (2) | internal port (2) |
//	options (4) | connection GUID (16) | name length (2) | name |
//	target: IPv4 address (4), or name length (1) | name
//
// A device's mapping (origin other than OriginUser) is version 3: the same,
// then
//
//	origin (1) | client IPv4 address (4) | expiry, Unix milliseconds (8) | nonce (12)
//	| remote peer filters (1) | each: IPv4 address (4) | prefix length (1) | port (2)
//
// Version 2, which schema 1 files hold, has the expiry in Unix seconds and
// no filters; the migration to schema 2 rewrites it as version 3.
//
// All integers are big-endian. A record with an unknown version is refused.
const (
	mappingRecordVersion             = 1
	deviceMappingRecordVersionSecond = 2
	deviceMappingRecordVersion       = 3
	deviceTailLen                    = 1 + 4 + 8 + 12
)

const (
	flagEnabled    = 1 << 0
	flagTargetName = 1 << 1
)

func encodeMapping(m Mapping) ([]byte, error) {
	guid, err := hex.DecodeString(strings.ReplaceAll(m.Connection, "-", ""))
	if err != nil || len(guid) != 16 {
		return nil, fmt.Errorf("mapping %d: connection id %q is not a GUID", m.ID, m.Connection)
	}
	if !m.Protocol.Valid() {
		return nil, fmt.Errorf("mapping %d: protocol %v", m.ID, m.Protocol)
	}
	if len(m.Name) > 0xffff || len(m.TargetName) > 0xff {
		return nil, fmt.Errorf("mapping %d: name too long", m.ID)
	}
	if !m.Origin.Valid() {
		return nil, fmt.Errorf("mapping %d: origin %d", m.ID, m.Origin)
	}
	device := m.Origin != OriginUser
	if device && (m.TargetName != "" || !m.Client.Is4()) {
		return nil, fmt.Errorf("mapping %d: a device's mapping targets an IPv4 address and names its client", m.ID)
	}
	var flags byte
	if m.Enabled {
		flags |= flagEnabled
	}
	if m.TargetName != "" {
		flags |= flagTargetName
	}
	version := byte(mappingRecordVersion)
	if device {
		version = deviceMappingRecordVersion
	}
	b := make([]byte, 0, 29+len(m.Name)+1+max(len(m.TargetName), 4)+deviceTailLen)
	b = append(b, version, flags, byte(m.Protocol))
	b = binary.BigEndian.AppendUint16(b, m.ExternalPort)
	b = binary.BigEndian.AppendUint16(b, m.InternalPort)
	b = binary.BigEndian.AppendUint32(b, m.Options)
	b = append(b, guid...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Name)))
	b = append(b, m.Name...)
	if m.TargetName != "" {
		b = append(b, byte(len(m.TargetName)))
		b = append(b, m.TargetName...)
	} else {
		if !m.TargetIP.Is4() {
			return nil, fmt.Errorf("mapping %d: target %v is not an IPv4 address", m.ID, m.TargetIP)
		}
		a4 := m.TargetIP.As4()
		b = append(b, a4[:]...)
	}
	if device {
		b = append(b, byte(m.Origin))
		c4 := m.Client.As4()
		b = append(b, c4[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(m.Expiry))
		b = append(b, m.Nonce[:]...)
		fs := m.Peers.All()
		b = append(b, byte(len(fs)))
		for _, f := range fs {
			a4 := f.Prefix.Addr().As4()
			b = append(b, a4[:]...)
			b = append(b, byte(f.Prefix.Bits()))
			b = binary.BigEndian.AppendUint16(b, f.Port)
		}
	} else if m.Peers.Len() > 0 {
		return nil, fmt.Errorf("mapping %d: remote peer filters on a person's mapping", m.ID)
	}
	return b, nil
}

var errShort = errors.New("record too short")

func decodeMapping(id uint64, b []byte) (Mapping, error) { return decodeMappingWith(id, b, guidString) }

// guidString formats a connection GUID.
func guidString(b [16]byte) string {
	g := hex.EncodeToString(b[:])
	return g[0:8] + "-" + g[8:12] + "-" + g[12:16] + "-" + g[16:20] + "-" + g[20:32]
}

// decodeMappingWith is decodeMapping with the connection's id formatted
// by conn (which may hand out one string for every mapping of a
// connection).
func decodeMappingWith(id uint64, b []byte, conn func([16]byte) string) (Mapping, error) {
	m := Mapping{ID: id}
	if len(b) < 29 {
		return m, errShort
	}
	version := b[0]
	device := version == deviceMappingRecordVersion || version == deviceMappingRecordVersionSecond
	if version != mappingRecordVersion && !device {
		return m, fmt.Errorf("record version %d, this netshare knows %d to %d", b[0], mappingRecordVersion, deviceMappingRecordVersion)
	}
	flags := b[1]
	m.Protocol = ipproto.Proto(b[2])
	if !m.Protocol.Valid() {
		return m, fmt.Errorf("protocol %d", b[2])
	}
	m.ExternalPort = binary.BigEndian.Uint16(b[3:])
	m.InternalPort = binary.BigEndian.Uint16(b[5:])
	m.Options = binary.BigEndian.Uint32(b[7:])
	m.Connection = conn([16]byte(b[11:27]))
	n := int(binary.BigEndian.Uint16(b[27:]))
	rest := b[29:]
	if len(rest) < n {
		return m, errShort
	}
	m.Name, rest = string(rest[:n]), rest[n:]
	m.Enabled = flags&flagEnabled != 0
	if flags&flagTargetName != 0 {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return m, errShort
		}
		m.TargetName, rest = string(rest[1:1+int(rest[0])]), rest[1+int(rest[0]):]
	} else {
		if len(rest) < 4 {
			return m, errShort
		}
		m.TargetIP, rest = netip.AddrFrom4([4]byte(rest)), rest[4:]
	}
	if device {
		if len(rest) < deviceTailLen {
			return m, errShort
		}
		m.Origin = Origin(rest[0])
		if m.Origin == OriginUser || !m.Origin.Valid() {
			return m, fmt.Errorf("origin %d in a device's mapping", rest[0])
		}
		if m.TargetName != "" {
			return m, fmt.Errorf("a device's mapping with a name target")
		}
		m.Client = netip.AddrFrom4([4]byte(rest[1:5]))
		m.Expiry = int64(binary.BigEndian.Uint64(rest[5:13]))
		if version == deviceMappingRecordVersionSecond {
			m.Expiry *= 1000
		}
		m.Nonce = [12]byte(rest[13:25])
		rest = rest[deviceTailLen:]
		if version == deviceMappingRecordVersion {
			if len(rest) < 1 || len(rest) < 1+7*int(rest[0]) {
				return m, errShort
			}
			fs := make([]peers.Filter, rest[0])
			for i := range fs {
				e := rest[1+7*i:]
				p, err := netip.AddrFrom4([4]byte(e)).Prefix(int(e[4]))
				if err != nil || p.Addr() != netip.AddrFrom4([4]byte(e)) {
					return m, fmt.Errorf("remote peer filter %d: %v/%d", i, netip.AddrFrom4([4]byte(e)), e[4])
				}
				fs[i] = peers.Filter{Prefix: p, Port: binary.BigEndian.Uint16(e[5:7])}
			}
			var err error
			if m.Peers, err = peers.Of(fs...); err != nil || m.Peers.Len() != len(fs) {
				return m, fmt.Errorf("remote peer filters %v: %v", fs, err)
			}
			rest = rest[1+7*len(fs):]
		}
	}
	if len(rest) != 0 {
		return m, fmt.Errorf("%d bytes after the record", len(rest))
	}
	return m, nil
}
