// Command tsmapper asks the gateway for a port mapping with Tailscale's
// portmapper (tailscale.com/net/portmapper), the code tailscaled runs to
// map its WireGuard port: it probes for PCP, NAT-PMP and UPnP, maps
// -port (by NAT-PMP when the gateway speaks it, as Tailscale prefers; by
// PCP with -pcp-only), prints what it got as one JSON line, answers UDP datagrams on
// the port (each with "tsmapper <sender>") until its standard input
// closes, and then releases the mapping as tailscaled does when it stops.
// The lab's tests build it as a module of its own, so that netshare's
// module does not carry Tailscale's.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"time"

	"tailscale.com/net/netmon"
	"tailscale.com/net/portmapper"
	"tailscale.com/net/portmapper/portmappertype"
	"tailscale.com/util/eventbus"
)

// result is what tsmapper prints.
type result struct {
	Probe     portmappertype.ProbeResult `json:"probe"`
	External  string                     `json:"external"`
	Type      string                     `json:"type"`
	GoodUntil time.Time                  `json:"goodUntil"`
}

func main() {
	gw := flag.String("gw", "", "the gateway's address")
	self := flag.String("self", "", "this host's address")
	port := flag.Int("port", 41641, "the UDP port to map")
	timeout := flag.Duration("timeout", 10*time.Second, "how long to wait for a mapping")
	pcpOnly := flag.Bool("pcp-only", false, "turn NAT-PMP off, as Tailscale's debug knob does, so that it maps by PCP")
	flag.Parse()
	gwAddr, err1 := netip.ParseAddr(*gw)
	selfAddr, err2 := netip.ParseAddr(*self)
	if err1 != nil || err2 != nil {
		log.Fatalf("give -gw and -self as IP addresses: %v %v", err1, err2)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{Port: *port})
	if err != nil {
		log.Fatal(err)
	}
	go echo(conn)

	bus := eventbus.New()
	defer bus.Close()
	sub := eventbus.Subscribe[portmappertype.Mapping](bus.Client("tsmapper"))
	c := portmapper.NewClient(portmapper.Config{EventBus: bus, NetMon: netmon.NewStatic(),
		Logf:       func(format string, args ...any) { log.Printf(format, args...) },
		DebugKnobs: &portmapper.DebugKnobs{DisablePMPFunc: func() bool { return *pcpOnly }}})
	c.SetGatewayLookupFunc(func() (netip.Addr, netip.Addr, bool) { return gwAddr, selfAddr, true })
	c.SetLocalPort(uint16(*port))
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	probe, err := c.Probe(ctx)
	if err != nil {
		log.Fatalf("probe: %v", err)
	}
	c.GetCachedMappingOrStartCreatingOne()
	var r result
	select {
	case m := <-sub.Events():
		r = result{Probe: probe, External: m.External.String(), Type: m.Type, GoodUntil: m.GoodUntil}
	case <-ctx.Done():
		log.Fatalf("no mapping within %v (probe %+v)", *timeout, probe)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	io.Copy(io.Discard, os.Stdin)
	c.Close() // releases the mapping
	// The release is sent in the background: give it a moment.
	time.Sleep(500 * time.Millisecond)
}

func echo(c *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.WriteToUDPAddrPort([]byte("tsmapper "+from.String()+"\n"), from)
	}
}
