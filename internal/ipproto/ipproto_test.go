package ipproto

import (
	"encoding/json"
	"testing"
)

func TestText(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Proto
	}{{"tcp", TCP}, {"udp", UDP}} {
		t.Run(tc.text, func(t *testing.T) {
			p, err := Parse(tc.text)
			if err != nil || p != tc.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tc.text, p, err, tc.want)
			}
			if p.String() != tc.text {
				t.Errorf("String() = %q", p.String())
			}
			b, err := json.Marshal(p)
			if err != nil || string(b) != `"`+tc.text+`"` {
				t.Errorf("json = %s, %v", b, err)
			}
			var q Proto
			if err := json.Unmarshal(b, &q); err != nil || q != p {
				t.Errorf("json round trip = %v, %v", q, err)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	for _, s := range []string{"", "TCP", "icmp", "6", "tcp "} {
		if p, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, p)
		}
	}
	if _, err := Proto(1).MarshalText(); err == nil {
		t.Error("MarshalText of ICMP: want an error")
	}
	if Proto(1).String() != "1" || Proto(1).Valid() {
		t.Error("protocol 1: want \"1\" and not valid")
	}
}
