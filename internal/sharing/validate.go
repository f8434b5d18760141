package sharing

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/ipproto"
)

// MaxNameLen is the longest name a connection or a port mapping may have,
// in characters (NETCON_MAX_NAME_LEN).
const MaxNameLen = 256

// checkName checks a connection or mapping name.
func checkName(field, s string) error {
	switch {
	case s == "":
		return hresult.Invalid(field, "must not be empty")
	case !utf8.ValidString(s):
		return hresult.Invalid(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > MaxNameLen:
		return hresult.Invalid(field, "is %d characters long; at most %d are allowed", utf8.RuneCountInString(s), MaxNameLen)
	case strings.TrimSpace(s) != s:
		return hresult.Invalid(field, "%q must not start or end with white space", s)
	}
	for i, r := range s {
		switch {
		case unicode.IsControl(r):
			return hresult.Invalid(field, "%q has a control character (%U) at byte %d; control characters are not allowed", s, r, i)
		case r == utf8.RuneError:
			// What a JSON decoder puts in place of bytes that are not
			// UTF-8: the name the client sent was not valid UTF-8.
			return hresult.Invalid(field, "%q is not valid UTF-8 (U+FFFD at byte %d stands for bytes that were not); send the name in UTF-8", s, i)
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
			// Invisible format characters (U+202E RIGHT-TO-LEFT
			// OVERRIDE, U+200B ZERO WIDTH SPACE, ...) make a name show
			// as another one in the CLI and the UI.
			return hresult.Invalid(field, "%q has an invisible formatting character (%U) at byte %d; such characters can make a name look like another and are not allowed", s, r, i)
		}
	}
	return nil
}

// checkProtocol checks a mapping protocol.
func checkProtocol(p ipproto.Proto) error {
	if !p.Valid() {
		return hresult.Invalid("protocol", "%v is not allowed; use tcp or udp", p)
	}
	return nil
}

// checkPort checks a TCP or UDP port number.
func checkPort(field string, n uint16) error {
	if n == 0 {
		return hresult.Invalid(field, "%d is out of range; a port is 1 to 65535", n)
	}
	return nil
}

// checkOptions checks the reserved options of a mapping.
func checkOptions(n uint32) error {
	if n != 0 {
		return hresult.Invalid("options", "%d is not allowed; options are reserved and must be 0", n)
	}
	return nil
}

// checkTarget checks that exactly one of a target host name and a target
// IPv4 address is given, and returns the target in canonical form.
func checkTarget(t Target) (Target, error) {
	switch {
	case t.Name != "" && t.IP.IsValid():
		return t, hresult.Invalid("target", "both targetName %q and targetIPAddress %s are set; give one of them", t.Name, t.IP)
	case t.Name == "" && !t.IP.IsValid():
		return t, hresult.Invalid("target", "neither targetName nor targetIPAddress is set; give one of them")
	case t.IP.IsValid():
		return t, checkTargetIP("targetIPAddress", t.IP)
	}
	if err := checkHostName(t.Name); err != nil {
		return t, err
	}
	return Target{Name: strings.ToLower(strings.TrimSuffix(t.Name, "."))}, nil
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reservedE   = netip.MustParsePrefix("240.0.0.0/4")
)

// checkTargetIP checks that a is an IPv4 unicast address a mapping (or
// a name) can point to; field names it in the error.
func checkTargetIP(field string, a netip.Addr) error {
	var why string
	switch {
	case !a.IsValid():
		why = "it is missing"
	case !a.Is4():
		why = "it is not IPv4"
	case thisNetwork.Contains(a):
		why = "0.0.0.0/8 is not a host address"
	case a.IsLoopback():
		why = "loopback addresses are not allowed"
	case a.IsMulticast():
		why = "it is a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "it is the broadcast address"
	case reservedE.Contains(a):
		why = "240.0.0.0/4 is reserved"
	default:
		return nil
	}
	return hresult.Invalid(field, "%q is not an IPv4 unicast address: %s", a.String(), why)
}

// checkHostName checks that s is a DNS host name (RFC 1123): dot-separated
// labels of letters, digits and hyphens, each 1 to 63 characters, not
// starting or ending with a hyphen, 253 characters in all, and not an IP
// address.
func checkHostName(s string) error {
	bad := func(why string) error {
		return hresult.Invalid("targetName", "%q is not a valid host name: %s", s, why)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return bad("it is an IP address; give it as targetIPAddress")
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return bad("it is empty")
	}
	if len(name) > 253 {
		return bad("it is longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return bad("it has an empty label")
		case len(l) > 63:
			return bad("a label is longer than 63 characters")
		case l[0] == '-' || l[len(l)-1] == '-':
			return bad("a label starts or ends with a hyphen")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return bad("only letters, digits, hyphens and dots are allowed, found " + strconv.QuoteRune(c))
			}
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return bad("the last label is all digits")
	}
	return nil
}
