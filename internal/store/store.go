// Package store keeps netshare's state durable: the connections (their
// stable ids, friendly names, sharing roles and firewall switches) and the
// port mappings, in one bbolt file under the state directory.
//
// Every Update is one transaction, synced to disk before it returns, so a
// change the API acknowledged survives a crash. The file carries a schema
// version; a file that is corrupt, foreign or written by a newer netshare is
// refused and never overwritten.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	boltErrors "go.etcd.io/bbolt/errors"

	"github.com/netshare/netshare/internal/trust"
)

// SchemaVersion is the version of the layout this package reads and writes.
const SchemaVersion = 1

// FileName is the name of the state file inside the state directory.
const FileName = "netshare.db"

var (
	bucketMeta        = []byte("meta")
	bucketConnections = []byte("connections")
	bucketMappings    = []byte("mappings")
	bucketLeases      = []byte("leases")
	keySchema         = []byte("schema")
	keyApp            = []byte("app")
	keySettings       = []byte("settings")
	appName           = []byte("netshare")
)

// Role is the sharing role of a connection.
type Role string

// Roles. RoleNone is a connection that is not shared.
const (
	RoleNone    Role = ""
	RolePublic  Role = "public"
	RolePrivate Role = "private"
)

// Connection is the stored part of a connection: what netshare decided
// about it, not what the kernel reports.
type Connection struct {
	ID        string `json:"id"`
	Interface string `json:"interface"`
	// Name is the friendly name; "" means the interface name.
	Name     string `json:"name,omitempty"`
	Role     Role   `json:"role,omitempty"`
	Firewall bool   `json:"firewall,omitempty"`
	// AllowPing lets a firewalled connection answer ping.
	AllowPing bool `json:"allowPing,omitempty"`
	// PrivateAddress is the address (with prefix) the connection has while
	// shared as private; "" means the default.
	PrivateAddress string `json:"privateAddress,omitempty"`
	// SavedAddrs are the IPv4 addresses the link had before it was shared
	// as private, put back when sharing stops; nil when none are kept.
	SavedAddrs []string `json:"savedAddrs,omitempty"`
	// DHCP configures the DHCP server of a private connection; nil means
	// the defaults.
	DHCP *DHCP `json:"dhcp,omitempty"`
}

// DHCP is the stored DHCP configuration of a private connection. Empty
// fields take the defaults.
type DHCP struct {
	PoolStart    string        `json:"poolStart,omitempty"`
	PoolEnd      string        `json:"poolEnd,omitempty"`
	LeaseSeconds int64         `json:"leaseSeconds,omitempty"`
	Domain       string        `json:"domain,omitempty"`
	Router       string        `json:"router,omitempty"`
	DNSServer    string        `json:"dnsServer,omitempty"`
	Reservations []Reservation `json:"reservations,omitempty"`
}

// Reservation gives a hardware address a fixed address and a name.
type Reservation struct {
	MAC  string `json:"mac"`
	IP   string `json:"ip"`
	Name string `json:"name,omitempty"`
}

// Lease is a DHCP lease, or (Declined) an address a client found in use,
// set aside until Expiry.
type Lease struct {
	Connection string `json:"connection"`
	MAC        string `json:"mac,omitempty"`
	IP         string `json:"ip"`
	Hostname   string `json:"hostname,omitempty"`
	Expiry     int64  `json:"expiry"` // Unix seconds
	Declined   bool   `json:"declined,omitempty"`
}

// Key returns the lease's key: one lease per client and connection, one
// declined record per address and connection.
func (l Lease) Key() string {
	if l.Declined {
		return l.Connection + "|declined|" + l.IP
	}
	return l.Connection + "|" + l.MAC
}

// Mapping is a stored port mapping. Exactly one of TargetName and
// TargetIP is set.
type Mapping struct {
	ID           uint64 `json:"id"`
	Connection   string `json:"connection"`
	Name         string `json:"name"`
	Protocol     string `json:"protocol"`
	ExternalPort uint16 `json:"externalPort"`
	InternalPort uint16 `json:"internalPort"`
	Options      uint32 `json:"options,omitempty"`
	TargetName   string `json:"targetName,omitempty"`
	TargetIP     string `json:"targetIP,omitempty"`
	Enabled      bool   `json:"enabled,omitempty"`
}

// Settings are the namespace-wide things netshare keeps.
type Settings struct {
	// ForwardingSaved is set while netshare has IPv4 forwarding on
	// because of sharing; ForwardingWas is the value it had before, put
	// back when the last sharing stops.
	ForwardingSaved bool `json:"forwardingSaved,omitempty"`
	ForwardingWas   bool `json:"forwardingWas,omitempty"`
	// Upstreams are the DNS servers the forwarder asks; none means those
	// of the namespace's resolv.conf.
	Upstreams []string `json:"upstreams,omitempty"`
	// Hosts are static DNS entries, name to IPv4 address.
	Hosts map[string]string `json:"hosts,omitempty"`
}

// State is everything the store holds.
type State struct {
	Settings    Settings
	Connections []Connection
	Mappings    []Mapping
	Leases      []Lease
	// LastMappingID is the highest mapping id ever stored, deleted ones
	// included, so that ids are never reused.
	LastMappingID uint64
}

// Store is an open state file.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens or creates the state file in dir, creating dir (mode 0700) if
// needed.
func Open(dir string) (*Store, error) {
	if err := trust.MakeDir(dir); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if err := trust.Path(path); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	_, statErr := os.Lstat(path)
	db, err := openBolt(path)
	if err != nil && errors.Is(statErr, fs.ErrNotExist) {
		// A first start that failed (a full disk) leaves no empty file
		// behind for the next start to take as a state.
		os.Remove(path)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func openBolt(path string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err == nil {
		db.MaxBatchDelay = BatchDelay
	}
	switch {
	case errors.Is(err, boltErrors.ErrTimeout):
		return nil, fmt.Errorf("state file %s is locked by another process (is another netshare serve running with this state directory?)", path)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return nil, fmt.Errorf("state file %s cannot be written: no space left on its file system (%w); free some space and start again", path, err)
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return nil, fmt.Errorf("state file %s cannot be opened for writing: %w", path, err)
	case err != nil:
		return nil, corrupt(path, err)
	}
	return db, nil
}

func corrupt(path string, err error) error {
	return fmt.Errorf("state file %s is unreadable (%v): netshare will not overwrite it; move it away to start with an empty state, or restore a backup", path, err)
}

// init checks the schema of an existing file or lays out a new one.
func (s *Store) init() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("%v", r))
		}
	}()
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("state file %s was not written by netshare (no schema record): refusing to use it", s.path)
			}
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if err := meta.Put(keyApp, appName); err != nil {
				return err
			}
			if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
				return err
			}
		} else {
			if string(meta.Get(keyApp)) != string(appName) {
				return fmt.Errorf("state file %s was not written by netshare: refusing to use it", s.path)
			}
			v, err := strconv.Atoi(string(meta.Get(keySchema)))
			if err != nil {
				return corrupt(s.path, fmt.Errorf("bad schema record %q", meta.Get(keySchema)))
			}
			if v > SchemaVersion {
				return fmt.Errorf("state file %s has schema version %d, newer than the %d this netshare knows: upgrade netshare, or restore a backup", s.path, v, SchemaVersion)
			}
		}
		for _, b := range [][]byte{bucketConnections, bucketMappings, bucketLeases} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Load reads the whole state.
func (s *Store) Load() (st *State, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("%v", r))
		}
	}()
	st = &State{}
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySettings); v != nil {
			if err := json.Unmarshal(v, &st.Settings); err != nil {
				return corrupt(s.path, fmt.Errorf("settings: %w", err))
			}
		}
		if err := tx.Bucket(bucketConnections).ForEach(func(k, v []byte) error {
			var c Connection
			if err := json.Unmarshal(v, &c); err != nil {
				return corrupt(s.path, fmt.Errorf("connection %q: %w", k, err))
			}
			st.Connections = append(st.Connections, c)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			var l Lease
			if err := json.Unmarshal(v, &l); err != nil {
				return corrupt(s.path, fmt.Errorf("lease %q: %w", k, err))
			}
			st.Leases = append(st.Leases, l)
			return nil
		}); err != nil {
			return err
		}
		b := tx.Bucket(bucketMappings)
		st.LastMappingID = b.Sequence()
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return corrupt(s.path, fmt.Errorf("mapping key %x", k))
			}
			m, err := decodeMapping(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return corrupt(s.path, fmt.Errorf("mapping %x: %w", k, err))
			}
			st.Mappings = append(st.Mappings, m)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Tx is a write transaction.
type Tx struct {
	tx *bolt.Tx
}

// Update runs fn in one write transaction, committed and synced to disk when
// fn returns nil and rolled back, leaving the file as it was, otherwise.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// BatchDelay is how long a Batch waits for others to share its commit.
const BatchDelay = 2 * time.Millisecond

// Batch is Update for writers that come many at once (the DHCP servers'
// leases): calls made within BatchDelay of each other share one
// transaction and one fsync, and each returns only once its change is on
// disk. fn may be called more than once (alone, if the shared transaction
// fails), so it must be idempotent.
func (s *Store) Batch(fn func(*Tx) error) error {
	return s.db.Batch(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// PutLease writes l.
func (t *Tx) PutLease(l Lease) error {
	return put(t.tx.Bucket(bucketLeases), []byte(l.Key()), l)
}

// DeleteLease deletes the lease with the given key.
func (t *Tx) DeleteLease(key string) error {
	return t.tx.Bucket(bucketLeases).Delete([]byte(key))
}

// PutSettings writes the settings.
func (t *Tx) PutSettings(st Settings) error {
	return put(t.tx.Bucket(bucketMeta), keySettings, st)
}

// PutConnection writes c.
func (t *Tx) PutConnection(c Connection) error {
	return put(t.tx.Bucket(bucketConnections), []byte(c.ID), c)
}

// PutMapping writes m, and records m.ID as used.
func (t *Tx) PutMapping(m Mapping) error {
	b := t.tx.Bucket(bucketMappings)
	if m.ID > b.Sequence() {
		if err := b.SetSequence(m.ID); err != nil {
			return err
		}
	}
	// Ids only grow: fill pages up, as an append-only bucket allows.
	b.FillPercent = 0.9
	v, err := encodeMapping(m)
	if err != nil {
		return err
	}
	return b.Put(mappingKey(m.ID), v)
}

// DeleteMapping deletes the mapping with the given id.
func (t *Tx) DeleteMapping(id uint64) error {
	return t.tx.Bucket(bucketMappings).Delete(mappingKey(id))
}

func mappingKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func put(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}
