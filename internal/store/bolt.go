package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	boltErrors "go.etcd.io/bbolt/errors"

	"github.com/netshare/netshare/internal/trust"
)

// SchemaVersion is the version of the file layout Bolt reads and writes.
// A file of an earlier version is migrated when it is opened (see
// migrations); a later one is refused.
const SchemaVersion = 2

// FileName is the name of the state file inside the state directory.
const FileName = "netshare.db"

// The file's layout: a bucket per kind of record, and the meta bucket
// with the file's identity, schema, revision and the settings.
var (
	bucketMeta        = []byte("meta")
	bucketConnections = []byte("connections")
	bucketMappings    = []byte("mappings")
	bucketLeases      = []byte("leases")
	// bucketDeviceMappings holds the runtime store's mappings, which
	// devices lease, keyed and laid out as bucketMappings.
	bucketDeviceMappings = []byte("devicemappings")
	keySchema            = []byte("schema")
	keyApp               = []byte("app")
	keyRev               = []byte("rev")
	keyRuntimeRev        = []byte("runtime-rev")
	keySettings          = []byte("settings")
	keyPortMapEpoch      = []byte("portmap-epoch")
	keyPortMapAddr       = []byte("portmap-address")
	appName              = []byte("netshare")
)

// maxGroup bounds the batches that share one transaction.
const maxGroup = 4096

// keepEvents and keepBytes bound the committed batches kept for watchers
// that start behind.
const (
	keepEvents = 1024
	keepBytes  = 4 << 20
)

// watchBuffer is how many events a watcher may fall behind before it is
// ended with ErrCompacted.
const watchBuffer = keepEvents

// File is the bbolt file of one gateway. It holds two stores, each with
// its own revision: Desired, the state the administrator and the devices
// asked for (settings, connections, mappings), and Runtime, what the
// services handed out (DHCP leases), so that a lease renewed does not
// move the revision a configuration edit was based on. Commits to both
// share the file's transactions and fsyncs.
type File struct {
	db   *bolt.DB
	path string

	// Desired holds the settings, connections and mappings.
	Desired *Bolt
	// Runtime holds the DHCP leases.
	Runtime *Bolt

	// Migrated, if set, says that Open brought the file from an earlier
	// schema to this one.
	Migrated *Migration

	queue  chan *commit // to the committer
	done   chan struct{}
	sendMu sync.RWMutex // held to send to queue (read) and to close it (write)
	ending bool         // the queue is closed; under sendMu

	groups atomic.Uint64 // transactions written, for the tests

	mu sync.Mutex // guards the spaces' revisions, kept events and watchers
}

// Bolt is one Store of a File.
type Bolt struct {
	f      *File
	name   string
	revKey []byte
	owns   func(key string) bool // which keys the store holds

	// under f.mu:
	closed   bool
	rev      Rev
	kept     []Event // the last committed batches, oldest first
	keptSize int
	watchers map[*watcher]struct{}
}

// commit is one Commit call waiting for the committer.
type commit struct {
	space   *Bolt
	read    Rev
	changes []Record
	rev     Rev
	err     error
	done    chan struct{}
}

type watcher struct {
	ch chan Event
}

var _ Store = (*Bolt)(nil)

// Open opens or creates the state file in dir, creating dir (mode 0700) if
// needed.
func Open(dir string) (*File, error) {
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
	s := &File{db: db, path: path, queue: make(chan *commit, maxGroup), done: make(chan struct{})}
	s.Desired = &Bolt{f: s, name: "desired", revKey: keyRev, owns: desiredKey, watchers: map[*watcher]struct{}{}}
	s.Runtime = &Bolt{f: s, name: "runtime", revKey: keyRuntimeRev, owns: RuntimeKey, watchers: map[*watcher]struct{}{}}
	if s.Migrated, err = s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	go s.committer()
	return s, nil
}

func openBolt(path string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	// The freelist is not written with each commit (bbolt rebuilds it at
	// open, a scan of the file): after many mappings are removed it is
	// large, and writing it made every later commit slower.
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
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
	return fmt.Errorf("state file %s is unreadable (%w): netshare will not overwrite it; move it away to start with an empty state, or restore a backup", path, err)
}

// init checks the schema of an existing file or lays out a new one, and
// reads the revision.
func (s *File) init() (err error) {
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
			// A file from before revisions were kept is at revision 0.
			for _, b := range []*Bolt{s.Desired, s.Runtime} {
				if r := meta.Get(b.revKey); r != nil {
					if len(r) != 8 {
						return corrupt(s.path, fmt.Errorf("bad revision record %s=%x", b.revKey, r))
					}
					b.rev = Rev(binary.BigEndian.Uint64(r))
				}
			}
		}
		for _, b := range [][]byte{bucketConnections, bucketMappings, bucketLeases, bucketDeviceMappings} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// Path returns the state file's path.
func (s *File) Path() string { return s.path }

// Close waits for the commits in progress, ends the watches and closes
// the file.
func (s *File) Close() error {
	s.sendMu.Lock()
	if s.ending {
		s.sendMu.Unlock()
		return nil
	}
	s.ending = true
	close(s.queue)
	s.sendMu.Unlock()
	s.mu.Lock()
	for _, b := range []*Bolt{s.Desired, s.Runtime} {
		b.closed = true
		for w := range b.watchers {
			w.end(ErrClosed)
			delete(b.watchers, w)
		}
	}
	s.mu.Unlock()
	<-s.done
	return s.db.Close()
}

// Close closes the file the store is in (both of its stores).
func (b *Bolt) Close() error { return b.f.Close() }

// Path returns the state file's path.
func (b *Bolt) Path() string { return b.f.path }

func desiredKey(key string) bool {
	return key == KeySettings || key == KeyLastMappingID || strings.HasPrefix(key, PrefixConnection) || strings.HasPrefix(key, PrefixMapping)
}

// Load implements Store.
func (b *Bolt) Load(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	rev, err := b.Scan(ctx, nil, func(r Record) error {
		snap.Records = append(snap.Records, Record{Key: r.Key, Value: slices.Clone(r.Value)})
		return nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	snap.Rev = rev
	// Scan hands the mappings in id order; a snapshot is in key order,
	// where decimal ids sort as strings.
	slices.SortFunc(snap.Records, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return snap, nil
}

// Scan implements Scanner: it decodes nothing and copies nothing; fn
// sees each record's bytes in the file's memory map. Mappings come in id
// order. sizes, if not nil, hears how many mappings there are first.
func (b *Bolt) Scan(ctx context.Context, sizes func(kind string, n int), fn func(Record) error) (rev Rev, err error) {
	s := b.f
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("%v", r))
		}
	}()
	err = s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if r := meta.Get(b.revKey); len(r) == 8 {
			rev = Rev(binary.BigEndian.Uint64(r))
		}
		if b == s.Runtime {
			if err := scan(tx.Bucket(bucketLeases), PrefixLease, fn); err != nil {
				return err
			}
			for _, k := range []struct {
				key  string
				file []byte
			}{{KeyPortMapEpoch, keyPortMapEpoch}, {KeyPortMapAddr, keyPortMapAddr}} {
				if v := meta.Get(k.file); v != nil {
					if err := fn(Record{Key: k.key, Value: v}); err != nil {
						return err
					}
				}
			}
			return scanMappings(s.path, tx.Bucket(bucketDeviceMappings), KeyLastDeviceMappingID, PrefixDeviceMapping, nil, fn)
		}
		if err := scan(tx.Bucket(bucketConnections), PrefixConnection, fn); err != nil {
			return err
		}
		if err := scanMappings(s.path, tx.Bucket(bucketMappings), KeyLastMappingID, PrefixMapping, sizes, fn); err != nil {
			return err
		}
		if v := meta.Get(keySettings); v != nil {
			return fn(Record{Key: KeySettings, Value: v})
		}
		return nil
	})
	return rev, err
}

// scanMappings hands fn a bucket of mappings: its sequence as the record
// lastKey (the highest id used), then the mappings in id order, keyed by
// prefix and the id in decimal.
func scanMappings(path string, mb *bolt.Bucket, lastKey, prefix string, sizes func(kind string, n int), fn func(Record) error) error {
	if seq := mb.Sequence(); seq > 0 {
		if err := fn(Record{Key: lastKey, Value: binary.BigEndian.AppendUint64(nil, seq)}); err != nil {
			return err
		}
	}
	if sizes != nil {
		sizes(prefix, mb.Stats().KeyN)
	}
	key := make([]byte, 0, 32)
	return mb.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return corrupt(path, fmt.Errorf("mapping key %x", k))
		}
		key = strconv.AppendUint(append(key[:0], prefix...), binary.BigEndian.Uint64(k), 10)
		return fn(Record{Key: string(key), Value: v})
	})
}

func scan(b *bolt.Bucket, prefix string, fn func(Record) error) error {
	return b.ForEach(func(k, v []byte) error { return fn(Record{Key: prefix + string(k), Value: v}) })
}

// place returns where a key lives in the file: its bucket and its key
// there.
func place(key string) (bucket, k []byte, err error) {
	switch {
	case key == KeySettings:
		return bucketMeta, keySettings, nil
	case key == KeyLastMappingID:
		return bucketMappings, nil, nil
	case key == KeyLastDeviceMappingID:
		return bucketDeviceMappings, nil, nil
	case key == KeyPortMapEpoch:
		return bucketMeta, keyPortMapEpoch, nil
	case key == KeyPortMapAddr:
		return bucketMeta, keyPortMapAddr, nil
	case strings.HasPrefix(key, PrefixConnection) && len(key) > len(PrefixConnection):
		return bucketConnections, []byte(key[len(PrefixConnection):]), nil
	case strings.HasPrefix(key, PrefixLease) && len(key) > len(PrefixLease):
		return bucketLeases, []byte(key[len(PrefixLease):]), nil
	case strings.HasPrefix(key, PrefixMapping):
		id, err := strconv.ParseUint(key[len(PrefixMapping):], 10, 64)
		if err != nil || id == 0 || MappingKey(id) != key {
			return nil, nil, fmt.Errorf("key %q: not a mapping id", key)
		}
		return bucketMappings, binary.BigEndian.AppendUint64(nil, id), nil
	case strings.HasPrefix(key, PrefixDeviceMapping):
		id, err := strconv.ParseUint(key[len(PrefixDeviceMapping):], 10, 64)
		if err != nil || id == 0 || DeviceMappingKey(id) != key {
			return nil, nil, fmt.Errorf("key %q: not a mapping id", key)
		}
		return bucketDeviceMappings, binary.BigEndian.AppendUint64(nil, id), nil
	}
	return nil, nil, fmt.Errorf("key %q: not a key of netshare's state", key)
}

// check refuses a batch the store cannot hold, before it joins a group.
func (b *Bolt) check(changes []Record) error {
	for _, c := range changes {
		if _, _, err := place(c.Key); err != nil {
			return err
		}
		if !b.owns(c.Key) {
			return fmt.Errorf("key %q: not a key of the %s state", c.Key, b.name)
		}
		if len(c.Key) > bolt.MaxKeySize {
			return fmt.Errorf("key %.40q...: longer than %d bytes", c.Key, bolt.MaxKeySize)
		}
		if len(c.Value) > 1<<24 {
			return fmt.Errorf("key %q: a value of %d bytes is too large", c.Key, len(c.Value))
		}
		if (c.Key == KeyLastMappingID || c.Key == KeyLastDeviceMappingID || c.Key == KeyPortMapEpoch) && c.Value != nil && len(c.Value) != 8 {
			return fmt.Errorf("key %q: %d bytes, want 8", c.Key, len(c.Value))
		}
	}
	return nil
}

// Commit implements Store.
func (b *Bolt) Commit(ctx context.Context, read Rev, changes []Record) (Rev, error) {
	if err := b.check(changes); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s := b.f
	c := &commit{space: b, read: read, changes: changes, done: make(chan struct{})}
	s.sendMu.RLock()
	if s.ending {
		s.sendMu.RUnlock()
		return 0, ErrClosed
	}
	// Under sendMu, so that Close does not close the queue under a sender.
	s.queue <- c
	s.sendMu.RUnlock()
	// Once queued, the batch is committed or refused whatever ctx says:
	// the caller must learn which.
	<-c.done
	return c.rev, c.err
}

// committer writes the queued batches: all that are waiting share one
// transaction and one fsync.
func (s *File) committer() {
	defer close(s.done)
	for c := range s.queue {
		group := []*commit{c}
	more:
		for len(group) < maxGroup {
			select {
			case c, ok := <-s.queue:
				if !ok {
					break more
				}
				group = append(group, c)
			default:
				break more
			}
		}
		s.write(group)
	}
}

// write commits a group in one transaction. A batch whose revision moved
// is refused alone; if the transaction fails, every batch of the group
// fails with its error.
func (s *File) write(group []*commit) {
	spaces := []*Bolt{s.Desired, s.Runtime}
	start := map[*Bolt]Rev{}
	s.mu.Lock()
	for _, b := range spaces {
		start[b] = b.rev
	}
	s.mu.Unlock()
	rev := map[*Bolt]Rev{}
	s.groups.Add(1)
	err := s.db.Update(func(tx *bolt.Tx) error {
		maps.Copy(rev, start)
		for _, c := range group {
			c.err = nil
			if c.read != Any && c.read != rev[c.space] {
				c.err = ErrConflict
				continue
			}
			for _, ch := range c.changes {
				if err := apply(tx, ch); err != nil {
					return fmt.Errorf("writing %q: %w", ch.Key, err)
				}
			}
			rev[c.space]++
			c.rev = rev[c.space]
		}
		for _, b := range spaces {
			if rev[b] != start[b] {
				if err := tx.Bucket(bucketMeta).Put(b.revKey, binary.BigEndian.AppendUint64(nil, uint64(rev[b]))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("state file %s: %w", s.path, err)
		for _, c := range group {
			c.rev, c.err = 0, err
		}
		maps.Copy(rev, start)
	}
	s.mu.Lock()
	for _, b := range spaces {
		b.rev = rev[b]
	}
	for _, c := range group {
		if c.err == nil {
			c.space.publishLocked(Event{Rev: c.rev, Changes: c.changes})
		}
	}
	s.mu.Unlock()
	for _, c := range group {
		close(c.done)
	}
}

func apply(tx *bolt.Tx, r Record) error {
	bucket, k, _ := place(r.Key)
	b := tx.Bucket(bucket)
	if r.Key == KeyLastMappingID || r.Key == KeyLastDeviceMappingID {
		// Kept as the mappings bucket's sequence, where files written
		// before the Store interface kept it.
		var id uint64
		if r.Value != nil {
			id = binary.BigEndian.Uint64(r.Value)
		}
		return b.SetSequence(id)
	}
	if r.Value == nil {
		return b.Delete(k)
	}
	if bytesEqual(bucket, bucketMappings) {
		// Ids only grow: fill pages up, as an append-only bucket allows.
		b.FillPercent = 0.9
	}
	return b.Put(k, r.Value)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// publishLocked keeps ev for watchers that start behind and sends it to
// the watchers; f.mu is held.
func (s *Bolt) publishLocked(ev Event) {
	size := 0
	for _, r := range ev.Changes {
		size += len(r.Key) + len(r.Value)
	}
	s.kept = append(s.kept, ev)
	s.keptSize += size
	for len(s.kept) > 1 && (len(s.kept) > keepEvents || s.keptSize > keepBytes) {
		for _, r := range s.kept[0].Changes {
			s.keptSize -= len(r.Key) + len(r.Value)
		}
		s.kept[0] = Event{}
		s.kept = s.kept[1:]
	}
	for w := range s.watchers {
		if !w.send(ev) {
			delete(s.watchers, w)
		}
	}
}

// send queues ev, or ends the watch when the watcher is too far behind.
func (w *watcher) send(ev Event) bool {
	if len(w.ch) >= watchBuffer {
		w.end(ErrCompacted)
		return false
	}
	w.ch <- ev
	return true
}

// end sends the last event (there is always room for it) and closes.
func (w *watcher) end(err error) {
	w.ch <- Event{Err: err}
	close(w.ch)
}

// Watch implements Store.
func (s *Bolt) Watch(ctx context.Context, after Rev) (<-chan Event, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	oldest := s.rev + 1 // the first revision the watcher needs that is kept
	if len(s.kept) > 0 {
		oldest = s.kept[0].Rev
	}
	if after+1 < oldest && after < s.rev {
		return nil, ErrCompacted
	}
	w := &watcher{ch: make(chan Event, watchBuffer+1)}
	for _, ev := range s.kept {
		if ev.Rev > after && !w.send(ev) {
			return nil, ErrCompacted
		}
	}
	s.watchers[w] = struct{}{}
	context.AfterFunc(ctx, func() {
		s.f.mu.Lock()
		defer s.f.mu.Unlock()
		if _, ok := s.watchers[w]; ok {
			delete(s.watchers, w)
			close(w.ch)
		}
	})
	return w.ch, nil
}
