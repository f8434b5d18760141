package store

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// fixture copies testdata/schema-V.db, a file an earlier release wrote,
// into a new state directory.
func fixture(t *testing.T, v int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "schema-"+strconv.Itoa(v)+".db"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// schemaOf reads a file's schema version and the versions of its devices'
// mapping records, with bbolt alone.
func schemaOf(t *testing.T, path string) (schema string, deviceVersions []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		schema = string(tx.Bucket(bucketMeta).Get(keySchema))
		return tx.Bucket(bucketDeviceMappings).ForEach(func(k, v []byte) error {
			deviceVersions = append(deviceVersions, v[0])
			return nil
		})
	})
	return schema, deviceVersions
}

// TestMigrate opens a file every earlier schema wrote (testdata): it is
// migrated forward, a copy of it as it was is kept, everything it held
// reads as it was written, and the next open has nothing to do.
func TestMigrate(t *testing.T) {
	for v := 1; v < SchemaVersion; v++ {
		t.Run("schema "+strconv.Itoa(v), func(t *testing.T) {
			dir := fixture(t, v)
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := Migration{From: v, To: SchemaVersion, Backup: filepath.Join(dir, BackupName(v))}
			if s.Migrated == nil || *s.Migrated != want {
				t.Errorf("Migrated = %+v, want %+v", s.Migrated, want)
			}
			st, err := LoadState(context.Background(), s.Desired, s.Runtime)
			if err != nil {
				t.Fatal(err)
			}
			checkFixtureState(t, st)
			s.Close()
			if schema, versions := schemaOf(t, filepath.Join(dir, FileName)); schema != strconv.Itoa(SchemaVersion) || string(versions) != "\x03\x03" {
				t.Errorf("migrated file: schema %q, device mapping records of versions %v", schema, versions)
			}
			if schema, versions := schemaOf(t, want.Backup); schema != strconv.Itoa(v) || string(versions) != "\x02\x02" {
				t.Errorf("the copy: schema %q, device mapping records of versions %v; want the file as it was", schema, versions)
			}
			s, err = Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Migrated != nil {
				t.Errorf("a second open migrated again: %+v", s.Migrated)
			}
		})
	}
}

// checkFixtureState checks what testdata/schema-1.txt's program wrote.
func checkFixtureState(t *testing.T, st *State) {
	t.Helper()
	if len(st.Connections) != 2 || len(st.Mappings) != 4 || len(st.Leases) != 1 || !st.Settings.ForwardingSaved {
		t.Fatalf("state %+v", st)
	}
	if st.LastMappingID != 4 || st.PortMapEpoch != 1795000000 || st.PortMapAddr != netip.MustParseAddr("203.0.113.7") {
		t.Errorf("counters: last id %d, epoch %d, address %v", st.LastMappingID, st.PortMapEpoch, st.PortMapAddr)
	}
	byID := map[uint64]Mapping{}
	for _, m := range st.Mappings {
		byID[m.ID] = m
	}
	if m := byID[2]; m.Name != "game" || m.TargetName != "console" || m.Enabled || m.Origin != OriginUser {
		t.Errorf("a person's mapping: %+v", m)
	}
	if m := byID[3]; m.Origin != OriginNATPMP || m.Expiry != 4102444800000 || m.Client != netip.MustParseAddr("192.168.137.42") || m.Peers.Len() != 0 {
		t.Errorf("a device's NAT-PMP mapping: %+v; want its expiry in milliseconds", m)
	}
	if m := byID[4]; m.Origin != OriginPCP || m.Expiry != 4102444801000 || m.Nonce != [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} {
		t.Errorf("a device's PCP mapping: %+v", m)
	}
}

// TestMigrationFails: a migration that fails leaves the file as it was,
// and the error says which step failed, why, and where the copy is.
func TestMigrationFails(t *testing.T) {
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	cause := errors.New("the disk is on fire")
	migrations = []migration{{1, "a step that fails", func(*bolt.Tx) error { return cause }}}
	dir := fixture(t, 1)
	_, err := Open(dir)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "schema 1 to 2 (a step that fails)") || !strings.Contains(err.Error(), "the file is unchanged (a copy is in "+filepath.Join(dir, BackupName(1))) {
		t.Fatalf("Open = %v", err)
	}
	if schema, versions := schemaOf(t, filepath.Join(dir, FileName)); schema != "1" || string(versions) != "\x02\x02" {
		t.Errorf("after the failure: schema %q, records of versions %v; want the file as it was", schema, versions)
	}
}
