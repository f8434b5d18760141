package lab_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

// hostileClient is a device on the lan that asks for what it may not
// have, by NAT-PMP and PCP, with packets written by hand: it prints one
// line per probe with the result code it got ("none" for no answer).
const hostileClient = `import socket, struct, sys, time, os
gw, me, other = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 0))
s.settimeout(1)
def ask(pkt):
    s.sendto(pkt, (gw, 5351))
    try:
        return s.recv(1100)
    except socket.timeout:
        return None
def mapped(ip):
    return b"\x00" * 10 + b"\xff\xff" + socket.inet_aton(ip)
def pcp_map(client, port, opts=b""):
    return struct.pack("!BBHI", 2, 1, 0, 3600) + mapped(client) + os.urandom(12) + struct.pack("!B3xHH", 6, port, port) + mapped("0.0.0.0") + opts
def pcp_result(r):
    return "none" if r is None else str(r[3])
# PCP: a client field that is not the sender's address.
print("mismatch", pcp_result(ask(pcp_map(other, 7400))))
# PCP: a mapping for another host (THIRD_PARTY).
print("thirdparty", pcp_result(ask(pcp_map(me, 7401, struct.pack("!BBH", 1, 0, 16) + mapped(other)))))
# NAT-PMP: more mappings than a host may have, paced under the rate.
results = []
for port in range(8000, 8070):
    r = ask(struct.pack("!BBHHHI", 0, 2, 0, port, port, 3600))
    results.append("none" if r is None else str(struct.unpack("!H", r[2:4])[0]))
    time.sleep(0.06)
print("quota", " ".join(results))
# A flood: 2,000 requests at once; most are dropped, and the server lives.
for i in range(2000):
    s.sendto(struct.pack("!BBHHHI", 0, 1, 0, 9000 + i % 50, 0, 60), (gw, 5351))
time.sleep(2.5)
s.settimeout(0.2)
try:
    while s.recv(1100):
        pass
except socket.timeout:
    pass
s.settimeout(1)
print("after", pcp_result(ask(struct.pack("!BBHI", 2, 0, 0, 0) + mapped(me))))
`

// TestHostileDevice replays what a hostile device on the lan tries: a PCP
// request naming another client, a mapping for another host, more
// mappings than the quota, and a flood. Each is refused with its
// protocol's code, and the gateway goes on serving.
func TestHostileDevice(t *testing.T) {
	l, m := up(t)
	out, err := l.Output(l.LAN, "python3", "-c", hostileClient, lab.GatewayLAN, lab.LANHost, "192.168.137.20")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[k] = v
	}
	if got["mismatch"] != "12" { // ADDRESS_MISMATCH
		t.Errorf("a PCP request naming another client got %q, want 12 (ADDRESS_MISMATCH)", got["mismatch"])
	}
	if got["thirdparty"] != "2" { // NOT_AUTHORIZED
		t.Errorf("a PCP mapping for another host got %q, want 2 (NOT_AUTHORIZED)", got["thirdparty"])
	}
	quota := strings.Fields(got["quota"])
	if len(quota) != 70 || slices.ContainsFunc(quota[:64], func(r string) bool { return r != "0" }) || slices.ContainsFunc(quota[64:], func(r string) bool { return r != "4" }) {
		t.Errorf("70 NAT-PMP mappings of one host: %v; want 64 successes, then 4 (out of resources)", quota)
	}
	if got["after"] != "0" {
		t.Errorf("after the flood, a PCP ANNOUNCE got %q, want 0", got["after"])
	}
	ms, err := config(t, m, "wan0").QueryPortMappings(ctx, hnetcfg.MappingQuery{Client: lab.LANHost})
	if err != nil || len(ms) > 64 {
		t.Errorf("the hostile host holds %d mappings (%v), at most 64", len(ms), err)
	}
	// The daemon still answers its API, and the lan host's natpmpc.
	if _, err := m.EnumEveryConnection(ctx); err != nil {
		t.Errorf("the API after the flood: %v", err)
	}
	if out, err := l.Output(l.LAN, "natpmpc", "-g", lab.GatewayLAN); err != nil || !strings.Contains(out, "Public IP address : "+lab.GatewayWAN) {
		t.Errorf("natpmpc after the flood: %v\n%s", err, out)
	}
}
