package lab_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

// torrentClient is a libtorrent session (Debian's python3-libtorrent) on
// the lan host: it listens on 6881 and maps that port by PCP, falling back
// to NAT-PMP, as a torrent client does; it prints libtorrent's port-mapping
// log, stays for the seconds given once both its mappings are made, and
// releases them as it ends.
const torrentClient = `import sys, time
import libtorrent as lt
s = lt.session({
    'listen_interfaces': '0.0.0.0:6881',
    'enable_natpmp': True, 'enable_upnp': False, 'enable_dht': False, 'enable_lsd': False,
    'alert_mask': lt.alert.category_t.port_mapping_notification | lt.alert.category_t.port_mapping_log_notification,
})
stay = float(sys.argv[1])
end, mapped = time.time() + 20, set()
while time.time() < end:
    s.wait_for_alert(100)
    for a in s.pop_alerts():
        if isinstance(a, lt.portmap_alert):
            print("mapped", a.external_port, a.map_protocol, flush=True)
            mapped.add(str(a.map_protocol))
        elif isinstance(a, (lt.portmap_log_alert, lt.portmap_error_alert)):
            print(a.message(), flush=True)
    if len(mapped) == 2 and end > time.time() + stay:
        end = time.time() + stay
del s
`

// TestPCP has libtorrent map its listening port by PCP: the mappings are
// the device's, pass traffic from the wan host, and end when libtorrent
// releases them.
func TestPCP(t *testing.T) {
	l, m := up(t)
	done := make(chan string, 1)
	go func() {
		out, err := l.Output(l.LAN, "/usr/bin/python3", "-c", torrentClient, "4")
		done <- fmt.Sprintf("%s%v", out, err)
	}()
	wan := config(t, m, "wan0")
	var ms []*hnetcfg.PortMapping
	for deadline := time.Now().Add(15 * time.Second); len(ms) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent made %d mappings:\n%s", len(ms), <-done)
		}
		ms, _ = wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT)
	}
	for _, pm := range ms {
		if p := pm.Props(); p.Origin != hnetcfg.OriginPCP || p.Client != lab.LANHost || p.ExternalPort != 6881 || p.InternalPort != 6881 {
			t.Errorf("libtorrent's mapping reads %+v", p)
		}
	}
	connect := `import socket; socket.create_connection(("` + lab.GatewayWAN + `", 6881), timeout=1).close(); print("connected")`
	if out, err := l.Output(l.WAN, "python3", "-c", connect); err != nil || strings.TrimSpace(out) != "connected" {
		t.Errorf("the wan host could not reach libtorrent through its mapping: %q, %v", out, err)
	}
	log := <-done
	if !strings.Contains(log, "transport: PCP") {
		t.Errorf("libtorrent did not speak PCP:\n%s", log)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if ms, _ = wan.EnumPortMappings(ctx, hnetcfg.ICSSC_DEFAULT); len(ms) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent's mappings stayed after it released them: %d\n%s", len(ms), log)
		}
	}
}
