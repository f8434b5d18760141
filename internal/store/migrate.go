package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// A migration brings a file of schema version from to from+1, inside the
// transaction that also records the new version.
type migration struct {
	from int
	what string
	run  func(tx *bolt.Tx) error
}

// migrations are every schema change, in order. A release that changes
// the file's layout or the form of its records adds one here, moves
// SchemaVersion on, and keeps a file written by the previous release in
// testdata (schema-N.db, with how it was made) for TestMigrate.
var migrations = []migration{
	{1, "devices' mapping records in version 3 (the expiry in milliseconds, the remote peer filters)", deviceMappingsV3},
}

// Migration says what Open did to a file of an earlier schema.
type Migration struct {
	From, To int
	// Backup is the copy of the file as it was, kept beside it.
	Backup string
}

// BackupName is the name, in the state directory, of the copy of a file
// of schema version v kept when it is migrated.
func BackupName(v int) string { return FileName + ".schema-" + strconv.Itoa(v) }

// migrate brings a file written by an earlier schema to this one. It
// first copies the file beside itself (BackupName, written whole and
// synced before anything changes), then runs the migrations from the
// file's version on in one transaction with the new version: a failure
// leaves the file as it was. A file of this schema, a new file and one
// that is not netshare's are left to init.
func (s *File) migrate() (*Migration, error) {
	var v int
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || string(meta.Get(keyApp)) != string(appName) {
			return nil
		}
		var err error
		if v, err = strconv.Atoi(string(meta.Get(keySchema))); err != nil {
			v = 0 // init says it is corrupt
		}
		return nil
	})
	if err != nil || v == 0 || v >= SchemaVersion {
		return nil, err
	}
	m := &Migration{From: v, To: SchemaVersion, Backup: filepath.Join(filepath.Dir(s.path), BackupName(v))}
	if err := s.backup(m.Backup); err != nil {
		return nil, fmt.Errorf("state file %s has schema version %d: keeping a copy before migrating it to %d: %w", s.path, v, SchemaVersion, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, mg := range migrations {
			if mg.from < v {
				continue
			}
			if err := mg.run(tx); err != nil {
				return fmt.Errorf("schema %d to %d (%s): %w", mg.from, mg.from+1, mg.what, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err != nil {
		return nil, fmt.Errorf("state file %s: migrating it from schema version %d: %w; the file is unchanged (a copy is in %s)", s.path, v, err, m.Backup)
	}
	return m, nil
}

// backup writes a consistent copy of the file to path: to a temporary
// file, synced, then renamed over path, so that a crash leaves either
// the old copy or the whole new one.
func (s *File) backup(path string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// deviceMappingsV3 rewrites the devices' mapping records of version 2
// (expiry in Unix seconds, no filters) in version 3.
func deviceMappingsV3(tx *bolt.Tx) error {
	b := tx.Bucket(bucketDeviceMappings)
	if b == nil {
		return nil // a file from before devices mapped ports
	}
	type rec struct {
		k []byte
		v []byte
	}
	var out []rec
	err := b.ForEach(func(k, v []byte) error {
		if len(v) == 0 || v[0] != deviceMappingRecordVersionSecond {
			return nil
		}
		if len(k) != 8 {
			return fmt.Errorf("device mapping key %x", k)
		}
		id := binary.BigEndian.Uint64(k)
		m, err := decodeMapping(id, v)
		if err != nil {
			return fmt.Errorf("device mapping %d: %w", id, err)
		}
		nv, err := encodeMapping(m)
		if err != nil {
			return fmt.Errorf("device mapping %d: %w", id, err)
		}
		out = append(out, rec{append([]byte(nil), k...), nv})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range out {
		if err := b.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}
