package peers

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func f(prefix string, port uint16) Filter {
	return Filter{Prefix: netip.MustParsePrefix(prefix), Port: port}
}

func TestAdd(t *testing.T) {
	for _, tt := range []struct {
		name string
		add  [][]Filter // successive Adds
		want []Filter
		err  string
	}{
		{"none", nil, nil, ""},
		{"one", [][]Filter{{f("203.0.113.0/24", 0)}}, []Filter{f("203.0.113.0/24", 0)}, ""},
		{"masked", [][]Filter{{f("203.0.113.9/24", 5000)}}, []Filter{f("203.0.113.0/24", 5000)}, ""},
		{"added to the earlier ones, once each", [][]Filter{{f("203.0.113.0/24", 0)}, {f("198.51.100.7/32", 0), f("203.0.113.0/24", 0)}},
			[]Filter{f("203.0.113.0/24", 0), f("198.51.100.7/32", 0)}, ""},
		{"a /0 from any port clears", [][]Filter{{f("203.0.113.0/24", 0)}, {f("0.0.0.0/0", 0)}}, nil, ""},
		{"a /0 clears what came before it only", [][]Filter{{f("203.0.113.0/24", 0), f("0.0.0.0/0", 0), f("198.51.100.7/32", 0)}},
			[]Filter{f("198.51.100.7/32", 0)}, ""},
		{"a /0 from one port is a filter", [][]Filter{{f("203.0.113.0/24", 0), f("0.0.0.0/0", 53)}}, []Filter{f("0.0.0.0/0", 53)}, ""},
		{"too many", [][]Filter{{f("10.0.0.1/32", 0), f("10.0.0.2/32", 0), f("10.0.0.3/32", 0)}, {f("10.0.0.4/32", 0), f("10.0.0.5/32", 0)}},
			[]Filter{f("10.0.0.1/32", 0), f("10.0.0.2/32", 0), f("10.0.0.3/32", 0)}, "more than 4"},
		{"IPv6", [][]Filter{{f("2001:db8::/32", 0)}}, nil, "not an IPv4 prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			var err error
			for _, fs := range tt.add {
				if s, err = s.Add(fs...); err != nil {
					break
				}
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if got := s.All(); len(got) != len(tt.want) {
				t.Fatalf("filters %v, want %v", got, tt.want)
			} else {
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("filters %v, want %v", got, tt.want)
					}
				}
			}
			again, _ := Of(tt.want...)
			if again != s {
				t.Errorf("the same filters make another set: %v and %v", again, s)
			}
		})
	}
	if _, err := Of(f("10.0.0.1/32", 0), f("10.0.0.2/32", 0), f("10.0.0.3/32", 0), f("10.0.0.4/32", 0), f("10.0.0.5/32", 0)); !errors.Is(err, ErrTooMany) {
		t.Errorf("five filters: %v", err)
	}
}

func TestAllows(t *testing.T) {
	var open Set
	s, _ := Of(f("203.0.113.0/24", 0), f("198.51.100.7/32", 53))
	for _, tt := range []struct {
		set  Set
		addr string
		port uint16
		want bool
	}{
		{open, "192.0.2.1", 1, true},
		{s, "203.0.113.200", 40000, true},
		{s, "203.0.114.1", 40000, false},
		{s, "198.51.100.7", 53, true},
		{s, "198.51.100.7", 54, false},
		{s, "198.51.100.8", 53, false},
	} {
		if got := tt.set.Allows(netip.MustParseAddr(tt.addr), tt.port); got != tt.want {
			t.Errorf("%v allows %s port %d: %v, want %v", tt.set, tt.addr, tt.port, got, tt.want)
		}
	}
}
