package sharing

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/ipproto"
)

// wantInvalid checks that err is an E_INVALIDARG naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want E_INVALIDARG about %s", field)
	}
	e := hresult.From(err)
	if e.Code != hresult.InvalidArg || !strings.HasPrefix(e.Message, field+": ") {
		t.Fatalf("got %v, want E_INVALIDARG starting with %q", err, field+": ")
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"web", true},
		{"Web server (HTTP)", true},
		{"serveur-français ünïcode", true},
		{strings.Repeat("x", 256), true},
		{strings.Repeat("é", 256), true},
		{"", false},
		{strings.Repeat("x", 257), false},
		{"tab\there", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{" leading", false},
		{"trailing ", false},
		{"bad\xffutf8", false},
		{"replaced\ufffd", false},    // what JSON makes of bytes that are not UTF-8
		{"evil\u202Etxt.exe", false}, // RIGHT-TO-LEFT OVERRIDE
		{"we\u200Bb", false},         // ZERO WIDTH SPACE
		{"\ufeffweb", false},         // ZERO WIDTH NO-BREAK SPACE
		{"line\u2028sep", false},     // LINE SEPARATOR
		{"日本語のサーバー", true},           // letters of any script are fine
		{"emoji 🎮 console", true},
	}
	for _, tt := range tests {
		err := checkName("name", tt.name)
		if tt.ok && err != nil {
			t.Errorf("checkName(%q) = %v, want ok", tt.name, err)
		}
		if !tt.ok {
			wantInvalid(t, err, "name")
		}
	}
}

func TestCheckProtocol(t *testing.T) {
	for _, p := range []ipproto.Proto{ipproto.TCP, ipproto.UDP} {
		if err := checkProtocol(p); err != nil {
			t.Errorf("checkProtocol(%v) = %v", p, err)
		}
	}
	for _, p := range []ipproto.Proto{0, 1, 132} {
		wantInvalid(t, checkProtocol(p), "protocol")
	}
}

func TestCheckPort(t *testing.T) {
	for _, n := range []uint16{1, 80, 65535} {
		if err := checkPort("externalPort", n); err != nil {
			t.Errorf("checkPort(%d) = %v", n, err)
		}
	}
	wantInvalid(t, checkPort("internalPort", 0), "internalPort")
}

func TestCheckOptions(t *testing.T) {
	if err := checkOptions(0); err != nil {
		t.Errorf("checkOptions(0) = %v", err)
	}
	for _, n := range []uint32{1, 0x100, 1 << 31} {
		wantInvalid(t, checkOptions(n), "options")
	}
}

func TestCheckTarget(t *testing.T) {
	tests := []struct {
		name, ip         string
		wantName, wantIP string
		field            string // "" when valid
	}{
		{ip: "192.168.137.10", wantIP: "192.168.137.10"},
		{ip: "10.0.0.1", wantIP: "10.0.0.1"},
		{ip: "169.254.3.4", wantIP: "169.254.3.4"},
		{ip: "203.0.113.7", wantIP: "203.0.113.7"},
		{name: "nas", wantName: "nas"},
		{name: "NAS.home.arpa.", wantName: "nas.home.arpa"},
		{name: "printer-2.lan", wantName: "printer-2.lan"},
		{name: "a", wantName: "a"},
		{name: "x1.example", wantName: "x1.example"},
		{name: "nas", ip: "192.168.137.10", field: "target"},
		{field: "target"},
		{ip: "fe80::1", field: "targetIPAddress"},
		{ip: "2001:db8::1", field: "targetIPAddress"},
		{ip: "::ffff:192.168.1.1", field: "targetIPAddress"},
		{ip: "0.0.0.0", field: "targetIPAddress"},
		{ip: "0.1.2.3", field: "targetIPAddress"},
		{ip: "127.0.0.1", field: "targetIPAddress"},
		{ip: "224.0.0.1", field: "targetIPAddress"},
		{ip: "239.255.255.250", field: "targetIPAddress"},
		{ip: "255.255.255.255", field: "targetIPAddress"},
		{ip: "240.0.0.1", field: "targetIPAddress"},
		{name: "-nas", field: "targetName"},
		{name: "nas-", field: "targetName"},
		{name: "n_as", field: "targetName"},
		{name: "nas..lan", field: "targetName"},
		{name: ".", field: "targetName"},
		{name: "has space", field: "targetName"},
		{name: "10.0.0.1", field: "targetName"},
		{name: "1.2.3", field: "targetName"},
		{name: strings.Repeat("a", 64) + ".lan", field: "targetName"},
		{name: strings.Repeat("abcdefghi.", 26) + "lan", field: "targetName"},
		{name: "höst", field: "targetName"},
	}
	parse := func(s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(s)
	}
	for _, tt := range tests {
		got, err := checkTarget(Target{Name: tt.name, IP: parse(tt.ip)})
		if tt.field != "" {
			wantInvalid(t, err, tt.field)
			continue
		}
		if want := (Target{Name: tt.wantName, IP: parse(tt.wantIP)}); err != nil || got != want {
			t.Errorf("checkTarget(%q, %q) = %+v, %v; want %+v", tt.name, tt.ip, got, err, want)
		}
	}
}
