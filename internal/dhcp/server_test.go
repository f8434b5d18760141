package dhcp

import (
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// lockedStore is a memStore safe for the server's goroutines.
type lockedStore struct {
	mu sync.Mutex
	memStore
}

func (s *lockedStore) Bind(l Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memStore.Bind(l)
}

func (s *lockedStore) Release(l Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memStore.Release(l)
}

func (s *lockedStore) Decline(ip netip.Addr, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memStore.Decline(ip, until)
}

// startServer serves an allocator on a loopback socket; replies go back
// to the sender's address.
func startServer(t *testing.T, lim Limits) (*Server, *net.UDPAddr) {
	return startServerProbing(t, lim, probeSet{})
}

// startServerProbing is startServer with a Prober of the test's.
func startServerProbing(t *testing.T, lim Limits, probe Prober) (*Server, *net.UDPAddr) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.PoolEnd = netip.MustParseAddr("192.168.137.200")
	st := &lockedStore{memStore: memStore{leases: map[string]Lease{}, declined: map[netip.Addr]time.Time{}}}
	a := NewAllocator(cfg, nil, nil, st, probe, nil, nil)
	s := serveConn(conn, a, lim, nil)
	t.Cleanup(func() { s.Close() })
	return s, conn.LocalAddr().(*net.UDPAddr)
}

// client runs one DHCP exchange against addr from its own socket, sending
// each message again every retry until answered, and returns how long
// the whole exchange took.
func client(t *testing.T, addr *net.UDPAddr, mac net.HardwareAddr, retry, limit time.Duration) (time.Duration, error) {
	c, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	ask := func(m *dhcpv4.DHCPv4, want dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
		buf := make([]byte, 1500)
		for time.Since(start) < limit {
			if _, err := c.Write(m.ToBytes()); err != nil {
				return nil, err
			}
			c.SetReadDeadline(time.Now().Add(retry))
			for {
				n, err := c.Read(buf)
				if err != nil {
					break // time to send again
				}
				r, err := dhcpv4.FromBytes(buf[:n])
				if err == nil && r.TransactionID == m.TransactionID && r.MessageType() == want {
					return r, nil
				}
			}
		}
		return nil, errTimeout
	}
	d, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithHwAddr(mac))
	if err != nil {
		return 0, err
	}
	offer, err := ask(d, dhcpv4.MessageTypeOffer)
	if err != nil {
		return 0, err
	}
	r, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(mac),
		dhcpv4.WithTransactionID(offer.TransactionID), requested(offer.YourIPAddr.String()), serverID(server))
	if err != nil {
		return 0, err
	}
	if _, err := ask(r, dhcpv4.MessageTypeAck); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

type timeoutError struct{}

func (timeoutError) Error() string { return "no answer in time" }

var errTimeout = timeoutError{}

// TestServerUnderFlood floods the server with DISCOVERs from forged
// hardware addresses, as fast as one socket sends, and shows that a
// reserved client and a new one (which, like every real client, tries
// again after a second) both get a lease within 2 s, that the flood is
// counted as dropped, and that goroutines and memory stay bounded.
func TestServerUnderFlood(t *testing.T) {
	s, addr := startServer(t, Limits{})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()

	flood, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	stop := make(chan struct{})
	var sent atomic.Int64
	var ended atomic.Bool // the flood ran out by itself
	var wg sync.WaitGroup
	wg.Go(func() {
		defer ended.Store(true)
		m, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithHwAddr(randomMAC(0)))
		b := m.ToBytes()
		// 40,000 a second, which the reader takes in full even built
		// with -race: the test is of the server's queues and rates, not of
		// the kernel's socket buffer (the lab's flood test goes faster).
		deadline := time.Now().Add(6 * time.Second)
		for i := 1; i <= 240_000 && time.Now().Before(deadline); i++ {
			if i%400 == 0 {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			copy(b[28:34], randomMAC(i))
			flood.Write(b)
			sent.Add(1)
		}
	})
	// The flood is on once the new clients' rate is spent.
	for deadline := time.Now().Add(5 * time.Second); s.Stats().RateLimited < 2000; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the flood was not limited: %+v", s.Stats())
		}
	}

	var maxG atomic.Int64
	var clients sync.WaitGroup
	for name, tc := range map[string]struct {
		mac   net.HardwareAddr
		retry time.Duration
	}{
		"reserved": {macR, 500 * time.Millisecond},
		"new":      {macA, time.Second},
	} {
		clients.Go(func() {
			took, err := client(t, addr, tc.mac, tc.retry, 2*time.Second)
			if err != nil {
				t.Errorf("%s client during the flood: %v (after %d forged DISCOVERs)", name, err, sent.Load())
				return
			}
			t.Logf("%s client: lease in %v during the flood", name, took)
			if g := int64(runtime.NumGoroutine()); g > maxG.Load() {
				maxG.Store(g)
			}
		})
	}
	clients.Wait()
	var peak runtime.MemStats
	runtime.ReadMemStats(&peak)
	if ended.Load() {
		t.Fatal("the flood ended before the clients were done")
	}
	close(stop)
	wg.Wait()
	st := s.Stats()
	t.Logf("flood: %d sent, %+v; goroutines %d -> %d; heap %d -> %d KB", sent.Load(), st, goroutines, maxG.Load(), before.HeapAlloc/1024, peak.HeapAlloc/1024)
	if st.RateLimited == 0 {
		t.Error("nothing of the flood was dropped for its rate")
	}
	// The two clients' goroutines and nothing per packet.
	if g := int(maxG.Load()); g > goroutines+4 {
		t.Errorf("goroutines grew from %d to %d under the flood", goroutines, g)
	}
	if grew := int64(peak.HeapAlloc) - int64(before.HeapAlloc); grew > 32<<20 {
		t.Errorf("the heap grew by %d MB under the flood", grew>>20)
	}
	// After the flood (once the socket's buffer is read), a new client is
	// served at once.
	time.Sleep(200 * time.Millisecond)
	if took, err := client(t, addr, macB, time.Second, time.Second); err != nil {
		t.Errorf("a new client after the flood: %v", err)
	} else if took > 500*time.Millisecond {
		t.Errorf("a new client after the flood waited %v", took)
	}
}

// TestServerPerClientRate shows that one hardware address cannot take
// more than its rate, even when it is known.
func TestServerPerClientRate(t *testing.T) {
	s, addr := startServer(t, Limits{PerClient: DefaultLimits.PerClient})
	c, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithHwAddr(macR))
	for range 200 {
		c.Write(m.ToBytes())
	}
	time.Sleep(500 * time.Millisecond)
	// The kernel may drop a few when the socket's buffer is full.
	st := s.Stats()
	burst := uint64(DefaultLimits.PerClient.Burst)
	if st.Received < 100 || st.Answered > burst+4 || st.RateLimited < st.Received-burst-4 {
		t.Fatalf("200 DISCOVERs at once from one client: %+v", st)
	}
}
