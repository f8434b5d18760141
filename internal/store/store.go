// Package store keeps netshare's desired state durable: the connections
// (their stable ids, friendly names, sharing roles and firewall switches),
// the port mappings, the DHCP leases and the namespace-wide settings.
//
// Store is the interface the model writes through, shaped so that a
// replicated implementation (etcd, for a gateway pair) can stand in for
// the file of one gateway: the state is a set of records (a key and
// bytes), loaded as one snapshot with its revision; a batch of changes is
// committed only if the revision is still the one the writer read
// (compare-and-swap), and watchers see every committed batch in order.
// Every implementation passes the conformance suite in storetest.
//
// Bolt is the implementation on one gateway: one bbolt file under the
// state directory. Concurrent commits share one transaction and one
// fsync (group commit), and each returns only once its batch is on disk.
// The file carries a schema version; a file that is corrupt, foreign or
// written by a newer netshare is refused and never overwritten.
//
// The typed records (Connection, Mapping, Lease, Settings) and their
// encodings live here too: Decode parses a snapshot into a State and
// refuses a bad record, naming its key.
package store

import (
	"context"
	"errors"
	"math"
)

// Rev is a revision of the store: the number of batches committed since
// it was made. The empty store is at revision 0.
type Rev uint64

// Any, given to Commit as the revision read, commits whatever the
// revision is now (for writers whose records no other writer changes,
// such as the DHCP leases).
const Any Rev = math.MaxUint64

// Record is one record: a key and its value. In a batch given to Commit,
// a nil Value deletes the key.
type Record struct {
	Key   string
	Value []byte
}

// Snapshot is the whole state at one revision, its records sorted by key.
type Snapshot struct {
	Rev     Rev
	Records []Record
}

// Event is one committed batch, as a watcher sees it. An event with Err
// set is the last one on its channel: the watcher fell too far behind
// (ErrCompacted) or the store closed.
type Event struct {
	Rev     Rev
	Changes []Record
	Err     error
}

// ErrConflict is returned by Commit when the store's revision is no longer
// the one the writer read: another batch was committed in between. The
// batch was not written; reload and decide again.
var ErrConflict = errors.New("the state changed since it was read")

// ErrCompacted is returned by Watch (or ends a watch) when the batches
// after the revision asked for are no longer kept: load a new snapshot.
var ErrCompacted = errors.New("the changes after that revision are no longer kept")

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("the store is closed")

// Store holds the desired state. Its methods are safe for concurrent use.
type Store interface {
	// Load returns every record and the revision they are at.
	Load(ctx context.Context) (Snapshot, error)
	// Commit writes changes as one batch if the store is still at
	// revision read (or, with Any, at whatever revision), and returns the
	// batch's revision, read+1, once the batch is durable. If the
	// revision moved, it returns ErrConflict and writes nothing. A batch
	// with a key the store does not know is refused whole.
	Commit(ctx context.Context, read Rev, changes []Record) (Rev, error)
	// Watch sends every batch committed after revision after, in order,
	// until ctx is done (the channel is then closed). It returns
	// ErrCompacted when those batches are no longer kept.
	Watch(ctx context.Context, after Rev) (<-chan Event, error)
	// Close releases the store. Commits waiting for the disk finish first.
	Close() error
}
