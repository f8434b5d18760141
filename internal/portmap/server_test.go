package portmap

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/natpmp"
	"github.com/netshare/netshare/internal/ratelimit"
)

// TestServer serves on the host's loopback (127.0.0.1, the "gateway"),
// and asks from 127.0.0.2 (a "device" of 127.0.0.0/8) and from the
// gateway's own address, which is refused.
func TestServer(t *testing.T) {
	l := newLeaser()
	s, err := Serve(handler(l), "lo", netip.MustParsePrefix("127.0.0.1/8"), Limits{PerClient: ratelimit.Limit{Rate: 1, Burst: 3}, InFlight: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ask := func(from string, req []byte) ([]byte, error) {
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from+":0")), net.UDPAddrFromAddrPort(s.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 1100)
		n, err := c.Read(buf)
		return buf[:n], err
	}
	req := natpmp.AppendRequest(nil, natpmp.Request{Opcode: natpmp.OpMapUDP, InternalPort: 5000, Lifetime: 600})
	b, err := ask("127.0.0.2", req)
	if err != nil {
		t.Fatalf("no answer from the server: %v", err)
	}
	if r, err := natpmp.ParseResponse(b); err != nil || r.Result != natpmp.Success || r.MappedPort != 5000 || r.Lifetime != 600 {
		t.Fatalf("answer %+v, %v", r, err)
	}
	if _, err := ask("127.0.0.1", req); err == nil {
		t.Error("the gateway's own address was answered")
	}
	// The client's rate: 3 at once, then nothing until a token comes back.
	for i := range 3 {
		if _, err := ask("127.0.0.3", req); err != nil && i < 3 {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	if _, err := ask("127.0.0.3", req); err == nil {
		t.Error("a request over the client's rate was answered")
	}
	if d := s.Dropped.Load(); d != 2 {
		t.Errorf("%d requests dropped, want 2", d)
	}
}

// A client that sends its next request as soon as it hears the last one
// is never dropped for want of a slot, even with a single slot: the slot
// is free before the answer leaves.
func TestServerSlotFreeBeforeAnswer(t *testing.T) {
	l := newLeaser()
	s, err := Serve(handler(l), "lo", netip.MustParsePrefix("127.0.0.1/8"), Limits{PerClient: ratelimit.Limit{Rate: 10000, Burst: 10000}, InFlight: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:0")), net.UDPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := natpmp.AppendRequest(nil, natpmp.Request{Opcode: natpmp.OpMapUDP, InternalPort: 5000, Lifetime: 600})
	buf := make([]byte, 64)
	for i := range 2000 {
		c.Write(req)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("request %d: %v (%d dropped)", i, err, s.Dropped.Load())
		}
	}
	if d := s.Dropped.Load(); d != 0 {
		t.Errorf("%d requests dropped", d)
	}
}
