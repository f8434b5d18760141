package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/netshare/netshare/internal/ipproto"
	"github.com/netshare/netshare/internal/peers"
)

func mustOpen(t *testing.T, dir string) *File {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func commitBatch(t *testing.T, s Store, read Rev, b *Batch) Rev {
	t.Helper()
	recs, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.Commit(context.Background(), read, recs)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestTypedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	c := Connection{ID: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Interface: "wan0", Name: "Upstream", Role: RolePublic, Firewall: true,
		DHCP: &DHCP{PoolStart: netip.MustParseAddr("192.168.137.10"), Reservations: []Reservation{{MAC: "02:00:00:00:00:01", IP: netip.MustParseAddr("192.168.137.5"), Name: "nas"}}}}
	m := Mapping{ID: 7, Connection: c.ID, Name: "web", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 8080, TargetIP: netip.MustParseAddr("192.168.137.10"), Enabled: true}
	l := Lease{Connection: c.ID, MAC: "02:00:00:00:00:02", IP: netip.MustParseAddr("192.168.137.20"), Hostname: "pc", Expiry: 1234}
	set := Settings{ForwardingSaved: true, Upstreams: []string{"192.0.2.53"}, Hosts: map[string]netip.Addr{"nas": netip.MustParseAddr("192.168.137.5")}}
	var b, lb Batch
	b.PutConnection(c)
	b.PutMapping(m)
	b.SetLastMappingID(7)
	b.PutSettings(set)
	rev := commitBatch(t, s.Desired, 0, &b)
	lb.PutLease(l)
	dm := Mapping{ID: 8, Connection: c.ID, Name: "NAT-PMP", Protocol: ipproto.UDP, ExternalPort: 27015, InternalPort: 27015,
		TargetIP: l.IP, Enabled: true, Origin: OriginNATPMP, Client: l.IP, Expiry: 1795000000}
	lb.PutMapping(dm)
	lb.SetLastDeviceMappingID(8)
	commitBatch(t, s.Runtime, 0, &lb)
	s.Close()
	s = mustOpen(t, dir)
	defer s.Close()
	st, err := LoadState(context.Background(), s.Desired, s.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	want := &State{Rev: rev, RuntimeRev: 1, Settings: set, Connections: []Connection{c}, Mappings: []Mapping{m, dm}, Leases: []Lease{l}, LastMappingID: 8}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("loaded\n%+v\nwant\n%+v", st, want)
	}
	// Deleting keeps the id used; ids sort as numbers in the state.
	b = Batch{}
	b.DeleteMapping(7, OriginUser)
	b.PutMapping(Mapping{ID: 10, Connection: c.ID, Name: "b", Protocol: ipproto.UDP, ExternalPort: 1, InternalPort: 1, TargetName: "nas"})
	b.PutMapping(Mapping{ID: 9, Connection: c.ID, Name: "a", Protocol: ipproto.UDP, ExternalPort: 2, InternalPort: 2, TargetName: "nas"})
	b.SetLastMappingID(10)
	commitBatch(t, s.Desired, rev, &b)
	b = Batch{}
	b.DeleteMapping(10, OriginUser)
	commitBatch(t, s.Desired, Any, &b)
	if st, _ := LoadState(context.Background(), s.Desired, s.Runtime); len(st.Mappings) != 2 || st.Mappings[0].ID != 9 || st.LastMappingID != 10 {
		t.Fatalf("after deletes: %+v", st)
	}
}

// A bad record is refused, naming its key; nothing takes a default.
func TestDecodeRefusesBadRecords(t *testing.T) {
	good, _ := encodeMapping(Mapping{ID: 1, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Protocol: ipproto.TCP, TargetIP: netip.MustParseAddr("10.0.0.1")})
	device, _ := encodeMapping(Mapping{ID: 1, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Protocol: ipproto.TCP, TargetIP: netip.MustParseAddr("10.0.0.1"),
		Origin: OriginPCP, Client: netip.MustParseAddr("10.0.0.1")})
	device[0] = deviceMappingRecordVersion
	for _, tt := range []struct {
		rec  Record
		want string
	}{
		{Record{Key: "connections/a", Value: []byte(`{"id":"b"}`)}, `record "connections/a": holds connection "b"`},
		{Record{Key: "connections/a", Value: []byte(`{"id":"a"} {}`)}, `record "connections/a": trailing data`},
		{Record{Key: "connections/a", Value: []byte(`{"id":`)}, `record "connections/a"`},
		{Record{Key: "leases/x", Value: []byte(`{"connection":"c","mac":"m"}`)}, `record "leases/x": holds lease "c|m"`},
		{Record{Key: "settings", Value: []byte(`{"upstreams":"1.2.3.4"}`)}, `record "settings"`},
		{Record{Key: "settings", Value: []byte(`{"upstreams":["dns.example"]}`)}, `record "settings": DNS server "dns.example" is not an IP address`},
		{Record{Key: "settings", Value: []byte(`{"hosts":{"nas":"192.168.137"}}`)}, `record "settings": ParseAddr`},
		{Record{Key: "connections/a", Value: []byte(`{"id":"a"}`)}, `record "connections/a": no interface`},
		{Record{Key: "connections/a", Value: []byte(`{"id":"a","interface":"e","role":"both"}`)}, `record "connections/a": role "both"`},
		{Record{Key: "connections/a", Value: []byte(`{"id":"a","interface":"e","privateAddress":"10.0.0.1"}`)}, `record "connections/a": netip.ParsePrefix`},
		{Record{Key: "connections/a", Value: []byte(`{"id":"a","interface":"e","privateAddress":"fd00::1/64"}`)}, `record "connections/a": private address fd00::1/64 is not IPv4`},
		{Record{Key: "connections/a", Value: []byte(`{"id":"a","interface":"e","dhcp":{"reservations":[{"mac":"x","ip":"10.0.0.2"}]}}`)}, `record "connections/a": DHCP reservation: address x: invalid MAC address`},
		{Record{Key: "leases/c|02:00:00:00:00:01", Value: []byte(`{"connection":"c","mac":"02:00:00:00:00:01","expiry":1}`)}, `record "leases/c|02:00:00:00:00:01": address invalid IP is not IPv4`},
		{Record{Key: "mappings/x", Value: good}, `record "mappings/x": not a mapping id`},
		{Record{Key: "mappings/2", Value: good[:10]}, `record "mappings/2": record too short`},
		{Record{Key: "counters/mappings", Value: []byte{1}}, `record "counters/mappings": 1 bytes, want 8`},
		{Record{Key: "portmap/address", Value: []byte{1, 2, 3}}, `record "portmap/address": not an IPv4 address`},
		{Record{Key: "portmap/epoch", Value: []byte{1}}, `record "portmap/epoch": 1 bytes, want 8`},
		{Record{Key: "devicemappings/1", Value: good}, `record "devicemappings/1": a person's mapping among the devices'`},
		{Record{Key: "mappings/1", Value: device}, `record "mappings/1": a device's mapping (pcp) among the desired state's`},
		{Record{Key: "devicemappings/1", Value: append(slices.Clone(device), 0)}, `record "devicemappings/1": 1 bytes after the record`},
		{Record{Key: "devicemappings/1", Value: func() []byte { b := slices.Clone(device); b[len(good)] = 0; return b }()}, `record "devicemappings/1": origin 0 in a device's mapping`},
		{Record{Key: "devicemappings/1", Value: func() []byte { b := slices.Clone(device); b[len(good)] = 7; return b }()}, `record "devicemappings/1": origin 7 in a device's mapping`},
		{Record{Key: "other", Value: []byte{1}}, `record "other": not a key netshare knows`},
	} {
		t.Run(tt.rec.Key, func(t *testing.T) {
			_, err := Decode(Snapshot{Records: []Record{tt.rec}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// A file from before revisions were kept opens at revision 0 with its
// records.
func TestFileWithoutRevision(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	var b Batch
	b.PutConnection(Connection{ID: "a", Interface: "eth0"})
	commitBatch(t, s.Desired, 0, &b)
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyRev) })
	s.Close()
	s = mustOpen(t, dir)
	defer s.Close()
	st, err := LoadState(context.Background(), s.Desired, s.Runtime)
	if err != nil || st.Rev != 0 || len(st.Connections) != 1 {
		t.Fatalf("LoadState = %+v, %v", st, err)
	}
	commitBatch(t, s.Desired, 0, &b)
}

// Concurrent commits share transactions (and so fsyncs).
func TestGroupCommit(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				var b Batch
				b.PutLease(Lease{Connection: "c", MAC: fmt.Sprintf("%d-%d", w, i), IP: netip.MustParseAddr("10.0.0.1")})
				recs, _ := b.Records()
				if _, err := s.Runtime.Commit(context.Background(), Any, recs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if g := s.groups.Load(); g >= writers*each/2 {
		t.Errorf("%d commits took %d transactions; want them to share", writers*each, g)
	}
	t.Logf("%d commits in %d transactions", writers*each, s.groups.Load())
}

func TestLockedFileRefused(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	defer s.Close()
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open = %v, want a lock error", err)
	}
}

func TestCorruptCauseUnwraps(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Repeat("x", 8192)), 0o600)
	_, err := Open(dir)
	if err == nil || errors.Unwrap(err) == nil {
		t.Fatalf("Open = %v, want an error with a cause", err)
	}
}

func TestMappingRecord(t *testing.T) {
	for _, m := range []Mapping{
		{ID: 1, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Name: "web", Protocol: ipproto.TCP, ExternalPort: 80, InternalPort: 8080, TargetIP: netip.MustParseAddr("192.168.137.10"), Enabled: true},
		{ID: 2, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Name: "Caméra (UDP)", Protocol: ipproto.UDP, ExternalPort: 65535, InternalPort: 1, TargetName: "camera.home.arpa"},
		{ID: 3, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Name: "PCP 41641", Protocol: ipproto.UDP, ExternalPort: 41641, InternalPort: 41641,
			TargetIP: netip.MustParseAddr("192.168.137.20"), Enabled: true, Origin: OriginPCP, Client: netip.MustParseAddr("192.168.137.20"),
			Expiry: 1795000000123, Nonce: [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Peers: mustPeers("203.0.113.0/24", "198.51.100.7/32")},
		{ID: 4, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Protocol: ipproto.TCP, ExternalPort: 1, InternalPort: 1,
			TargetIP: netip.MustParseAddr("192.168.137.21"), Origin: OriginNATPMP, Client: netip.MustParseAddr("192.168.137.21")},
	} {
		b, err := encodeMapping(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMapping(m.ID, b)
		if err != nil || got != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, got, err)
		}
		for i := range len(b) {
			if _, err := decodeMapping(m.ID, b[:i]); err == nil {
				t.Fatalf("a record cut at %d bytes decoded", i)
			}
		}
		b[0] = 9
		if _, err := decodeMapping(m.ID, b); err == nil {
			t.Fatal("a record of an unknown version decoded")
		}
	}
	// Earlier releases wrote a device's mapping as version 2, its expiry
	// in seconds.
	dev := Mapping{ID: 7, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Protocol: ipproto.UDP, ExternalPort: 2603, InternalPort: 2603,
		TargetIP: netip.MustParseAddr("192.168.137.20"), Origin: OriginPCP, Client: netip.MustParseAddr("192.168.137.20"), Expiry: 1795000000123}
	old, _ := encodeMapping(dev)
	old = old[:len(old)-1] // version 2 had no filters
	old[0] = deviceMappingRecordVersionSecond
	binary.BigEndian.PutUint64(old[len(old)-20:], 1795000000)
	dev.Expiry = 1795000000 * 1000
	if got, err := decodeMapping(7, old); err != nil || got != dev {
		t.Errorf("version 2 record: %+v, %v", got, err)
	}
	for _, m := range []Mapping{
		{Connection: "c1", Protocol: ipproto.TCP, TargetIP: netip.MustParseAddr("10.0.0.1")},
		{Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Protocol: ipproto.TCP, TargetIP: netip.MustParseAddr("10.0.0.1"), Origin: 9},
		{Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Protocol: ipproto.TCP, TargetName: "nas", Origin: OriginPCP, Client: netip.MustParseAddr("10.0.0.1")},
		{Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Protocol: ipproto.TCP, TargetIP: netip.MustParseAddr("10.0.0.1"), Origin: OriginPCP},
	} {
		if _, err := encodeMapping(m); err == nil {
			t.Errorf("%+v was encoded", m)
		}
	}
}

// LoadState scans the file without a snapshot; it must decode what Load's
// snapshot decodes to.
func TestScanDecodesAsLoad(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer s.Close()
	var b, lb Batch
	for i := range 300 {
		b.PutMapping(Mapping{ID: uint64(i + 1), Connection: fmt.Sprintf("0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d%02x", i%3), Name: fmt.Sprint("m", i), Protocol: ipproto.UDP, ExternalPort: uint16(i + 1), InternalPort: 1, TargetIP: netip.MustParseAddr("10.0.0.1")})
	}
	b.SetLastMappingID(400)
	b.PutConnection(Connection{ID: "c", Interface: "eth0"})
	b.PutSettings(Settings{Upstreams: []string{"192.0.2.1:53"}})
	commitBatch(t, s.Desired, 0, &b)
	lb.PutLease(Lease{Connection: "c", MAC: "02:00:00:00:00:03", IP: netip.MustParseAddr("10.0.0.2")})
	commitBatch(t, s.Runtime, 0, &lb)
	got, err := LoadState(context.Background(), s.Desired, s.Runtime)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.Desired.Load(context.Background())
	r, _ := s.Runtime.Load(context.Background())
	want, err := Decode(Snapshot{Rev: d.Rev, Records: append(d.Records, r.Records...)})
	if err != nil {
		t.Fatal(err)
	}
	want.RuntimeRev = r.Rev
	slices.SortFunc(want.Mappings, func(a, b Mapping) int { return cmp.Compare(a.ID, b.ID) })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scanned\n%+v\nloaded\n%+v", got, want)
	}
	if got.LastMappingID != 400 || len(got.Mappings) != 300 {
		t.Fatalf("scanned %d mappings, last id %d", len(got.Mappings), got.LastMappingID)
	}
}

func mustPeers(prefixes ...string) peers.Set {
	var fs []peers.Filter
	for i, p := range prefixes {
		fs = append(fs, peers.Filter{Prefix: netip.MustParsePrefix(p), Port: uint16(i * 1000)})
	}
	s, err := peers.Of(fs...)
	if err != nil {
		panic(err)
	}
	return s
}
