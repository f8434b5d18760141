package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := Connection{ID: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Interface: "wan0", Name: "Upstream", Role: RolePublic, Firewall: true}
	m := Mapping{ID: 7, Connection: c.ID, Name: "web", Protocol: "tcp", ExternalPort: 80, InternalPort: 8080, TargetIP: "192.168.137.10", Enabled: true}
	if err := s.Update(func(tx *Tx) error {
		if err := tx.PutConnection(c); err != nil {
			return err
		}
		return tx.PutMapping(m)
	}); err != nil {
		t.Fatal(err)
	}
	// A failing transaction leaves nothing behind.
	boom := errors.New("boom")
	if err := s.Update(func(tx *Tx) error {
		tx.PutMapping(Mapping{ID: 9, Connection: c.ID, Protocol: "tcp", TargetIP: "10.0.0.1"})
		tx.DeleteMapping(7)
		return boom
	}); err != boom {
		t.Fatalf("Update = %v, want boom", err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Connections) != 1 || !reflect.DeepEqual(st.Connections[0], c) || len(st.Mappings) != 1 || st.Mappings[0] != m || st.LastMappingID != 7 {
		t.Fatalf("loaded %+v", st)
	}
	// Deleting keeps the id used.
	if err := s.Update(func(tx *Tx) error { return tx.DeleteMapping(7) }); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Load(); len(st.Mappings) != 0 || st.LastMappingID != 7 {
		t.Fatalf("after delete: %+v", st)
	}
}

// refused opens dir and wants an error containing want, with the file left
// byte for byte as it was.
func refused(t *testing.T, dir, want string) {
	t.Helper()
	path := filepath.Join(dir, FileName)
	before, _ := os.ReadFile(path)
	s, err := Open(dir)
	if err == nil {
		s.Close()
		t.Fatalf("Open succeeded, want an error about %q", want)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v, want an error naming %s and saying %q", err, path, want)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("the refused file was changed")
	}
}

func TestCorruptFileRefused(t *testing.T) {
	dir := t.TempDir()
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	os.WriteFile(filepath.Join(dir, FileName), junk, 0o600)
	refused(t, dir, "unreadable")

	// A text file where the database should be.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Repeat("not a database\n", 1000)), 0o600)
	refused(t, dir, "unreadable")
}

func TestTruncatedFileRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, FileName)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:5000], 0o600)
	refused(t, dir, "unreadable")
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	s.Close()
	refused(t, dir, "schema version 99, newer than the 1")
}

func TestForeignFileRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("other"))
		return b.Put([]byte("k"), []byte("v"))
	})
	db.Close()
	refused(t, dir, "not written by netshare")
}

func TestLockedFileRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(dir)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open = %v, want a lock error", err)
	}
}

func TestMappingRecord(t *testing.T) {
	for _, m := range []Mapping{
		{ID: 1, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Name: "web", Protocol: "tcp", ExternalPort: 80, InternalPort: 8080, TargetIP: "192.168.137.10", Enabled: true},
		{ID: 2, Connection: "0b6c1d3e-5f7a-4b8c-9d0e-1f2a3b4c5d6e", Name: "Caméra (UDP)", Protocol: "udp", ExternalPort: 65535, InternalPort: 1, TargetName: "camera.home.arpa"},
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
	if _, err := encodeMapping(Mapping{Connection: "c1", Protocol: "tcp"}); err == nil {
		t.Fatal("a connection id that is not a GUID was encoded")
	}
}
