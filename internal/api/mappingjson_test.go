package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
	"github.com/netshare/netshare/internal/sharing"
)

// encodeReference is what the list's answer was before appendMappings:
// encoding/json over the wire structs.
func encodeReference(t testing.TB, ms []sharing.Mapping) []byte {
	out := make([]hnetcfg.PortMappingProps, len(ms))
	for i, m := range ms {
		out[i] = mappingProps(m)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testMapping(name, target string, ip, resolved netip.Addr, applyErr error) sharing.Mapping {
	return sharing.Mapping{
		ID:         18446744073709551615,
		Connection: "wan0",
		MappingSpec: sharing.MappingSpec{
			Name: name, Protocol: ipproto.UDP, ExternalPort: 65535, InternalPort: 1,
			Options: 7, Target: sharing.Target{Name: target, IP: ip},
		},
		Enabled: true, Resolved: resolved, Unresolved: target != "" && !resolved.IsValid(),
		ApplyError: applyErr,
	}
}

func TestAppendMappingsIsEncodingJSON(t *testing.T) {
	ip := netip.MustParseAddr("192.168.137.20")
	tests := []struct {
		name string
		ms   []sharing.Mapping
	}{
		{"none", []sharing.Mapping{}},
		{"ip target", []sharing.Mapping{{ID: 1, MappingSpec: sharing.MappingSpec{Name: "web", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 8080, Target: sharing.Target{IP: ip}}}}},
		{"name target, resolved", []sharing.Mapping{testMapping("nas", "nas.home.arpa", netip.Addr{}, ip, nil)}},
		{"name target, unresolved", []sharing.Mapping{testMapping("nas", "nas", netip.Addr{}, netip.Addr{}, nil)}},
		{"apply error", []sharing.Mapping{testMapping("x", "", ip, netip.Addr{}, errors.New(`nftables: "add element": <EPERM> & more`))}},
		{"empty apply error", []sharing.Mapping{testMapping("x", "", ip, netip.Addr{}, errors.New(""))}},
		{"escaped names", []sharing.Mapping{
			testMapping(`a "quoted" \ name`, "", ip, netip.Addr{}, nil),
			testMapping("<script>&amp;", "", ip, netip.Addr{}, nil),
			testMapping("tab\tnew\nline\x7f", "", ip, netip.Addr{}, nil),
			testMapping("Ünïcödé 名前 \u2028\u2029", "", ip, netip.Addr{}, nil),
			testMapping("bad \xff utf-8", "", ip, netip.Addr{}, nil),
		}},
		{"ipv6 target", []sharing.Mapping{testMapping("v6", "", netip.MustParseAddr("fd00::1"), netip.Addr{}, nil)}},
		{"a zone to escape", []sharing.Mapping{testMapping("v6", "", netip.MustParseAddr("fe80::1").WithZone(`a"b\c<`), netip.MustParseAddr("::").WithZone(`"`), nil)}},
		{"a device's", []sharing.Mapping{func() sharing.Mapping {
			m := testMapping("pcp 192.168.137.20 udp/41641", "", ip, netip.Addr{}, nil)
			m.Origin, m.Client, m.Expires = sharing.OriginPCP, ip, time.Unix(1_800_000_000, 0).In(time.FixedZone("X", 3600))
			return m
		}()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendMappings(nil, tt.ms)
			if want := encodeReference(t, tt.ms); !bytes.Equal(got, want) {
				t.Errorf("appendMappings:\n got %s\nwant %s", got, want)
			}
			for _, m := range tt.ms {
				var want bytes.Buffer
				json.NewEncoder(&want).Encode(mappingProps(m))
				if got := append(appendMapping(nil, &m), '\n'); !bytes.Equal(got, want.Bytes()) {
					t.Errorf("appendMapping:\n got %s\nwant %s", got, want.Bytes())
				}
			}
		})
	}
}

func FuzzAppendMappings(f *testing.F) {
	f.Add("web", "", "10.0.0.1", "", "", uint64(1), uint16(80), uint16(8080), true)
	f.Add("a\"<>&\\", "nas.home.arpa", "", "10.0.0.2", "apply \x00 failed", uint64(99), uint16(1), uint16(65535), false)
	f.Fuzz(func(t *testing.T, name, target, ip, resolved, applyErr string, id uint64, ext, in uint16, enabled bool) {
		m := sharing.Mapping{ID: sharing.MappingID(id), MappingSpec: sharing.MappingSpec{
			Name: name, Protocol: ipproto.TCP, ExternalPort: ext, InternalPort: in, Target: sharing.Target{Name: target},
		}, Enabled: enabled}
		if id%2 == 1 {
			m.Origin, m.Expires = sharing.Origin(1+id%3), time.Unix(int64(id%4_000_000_000), 0)
			m.Client, _ = netip.ParseAddr(resolved)
			if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
				m.Peers, _ = peers.Of(peers.Filter{Prefix: netip.PrefixFrom(a, int(ext%33))}, peers.Filter{Prefix: netip.PrefixFrom(a, 32), Port: in})
			}
		}
		m.Target.IP, _ = netip.ParseAddr(ip)
		m.Resolved, _ = netip.ParseAddr(resolved)
		if applyErr != "" {
			m.ApplyError = errors.New(applyErr)
		}
		ms := []sharing.Mapping{m, m}
		if got, want := appendMappings(nil, ms), encodeReference(t, ms); !bytes.Equal(got, want) {
			t.Errorf("appendMappings:\n got %s\nwant %s", got, want)
		}
	})
}
