package store_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/netshare/netshare/internal/store"
	"github.com/netshare/netshare/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Run("Desired", func(t *testing.T) {
		storetest.Run(t, storetest.Config{
			Open: func(dir string) (store.Store, error) {
				f, err := store.Open(dir)
				if err != nil {
					return nil, err
				}
				return f.Desired, nil
			},
			Keys:    []string{"connections/a", "connections/b", "connections/c", "mappings/1", "mappings/10", "mappings/9", "settings"},
			Invalid: []string{"", "nope", "connections/", "mappings/x", "mappings/0", "mappings/007", "meta/schema", "leases/a"},
			Damages: damages,
		})
	})
	t.Run("Runtime", func(t *testing.T) {
		storetest.Run(t, storetest.Config{
			Open: func(dir string) (store.Store, error) {
				f, err := store.Open(dir)
				if err != nil {
					return nil, err
				}
				return f.Runtime, nil
			},
			Keys:    []string{"leases/a", "leases/b", "leases/c", "leases/d", "leases/e", "leases/f", "leases/g"},
			Invalid: []string{"", "leases/", "settings", "connections/a", "mappings/1"},
		})
	})
}

var damages = []storetest.Damage{
	{Name: "random bytes", Want: "unreadable", Do: func(t *testing.T, dir string) {
		junk := make([]byte, 64<<10)
		rand.Read(junk)
		os.WriteFile(filepath.Join(dir, store.FileName), junk, 0o600)
	}},
	{Name: "text", Want: "unreadable", Do: func(t *testing.T, dir string) {
		os.WriteFile(filepath.Join(dir, store.FileName), []byte(strings.Repeat("not a database\n", 1000)), 0o600)
	}},
	{Name: "truncated", Want: "unreadable", Do: func(t *testing.T, dir string) {
		s, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		path := filepath.Join(dir, store.FileName)
		data, _ := os.ReadFile(path)
		os.WriteFile(path, data[:5000], 0o600)
	}},
	{Name: "newer schema", Want: "schema version 99, newer than the 2", Do: func(t *testing.T, dir string) {
		putMeta(t, dir, "schema", "99")
	}},
	{Name: "bad revision", Want: "bad revision record", Do: func(t *testing.T, dir string) {
		putMeta(t, dir, "rev", "12")
	}},
	{Name: "foreign", Want: "not written by netshare", Do: func(t *testing.T, dir string) {
		db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error {
			b, _ := tx.CreateBucket([]byte("other"))
			return b.Put([]byte("k"), []byte("v"))
		})
		db.Close()
	}},
	{Name: "foreign app", Want: "not written by netshare", Do: func(t *testing.T, dir string) {
		putMeta(t, dir, "app", "other")
	}},
}

// putMeta makes a state file in dir and sets a record of its meta bucket.
func putMeta(t *testing.T, dir, key, value string) {
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte(key), []byte(value)) }); err != nil {
		t.Fatal(err)
	}
}
