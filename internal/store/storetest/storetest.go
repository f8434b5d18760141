// Package storetest is the conformance suite of store.Store: what every
// implementation (the bbolt file today, etcd for a gateway pair next)
// must do. An implementation's test calls Run with a way to open a store
// in a directory.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/store"
)

// Opener opens the store kept in dir, creating it if it is new.
type Opener func(dir string) (store.Store, error)

// Damage spoils the state kept in dir (a corrupt file, another program's
// file, a newer schema) for the suite to check that opening it fails with
// an error containing Want and leaves every byte of dir as it was.
type Damage struct {
	Name string
	Want string
	Do   func(t *testing.T, dir string)
}

// Config describes the store under test.
type Config struct {
	// Open opens the store kept in a directory.
	Open Opener
	// Keys are at least 7 keys the store holds, in ascending order.
	Keys []string
	// Invalid are keys the store refuses.
	Invalid []string
	// Damages spoil a kept store, for Open to refuse.
	Damages []Damage
}

// Run runs the suite.
func Run(t *testing.T, c Config) {
	if len(c.Keys) < 7 || !slices.IsSorted(c.Keys) {
		t.Fatalf("storetest: want at least 7 keys in ascending order, have %q", c.Keys)
	}
	s := suite{open: c.Open, k: c.Keys, invalid: c.Invalid}
	t.Run("Empty", s.empty)
	t.Run("CommitLoad", s.commitLoad)
	t.Run("Durable", s.durable)
	t.Run("Conflict", s.conflict)
	t.Run("RefusedWhole", s.refusedWhole)
	t.Run("Concurrent", s.concurrent)
	t.Run("OneWinner", s.oneWinner)
	t.Run("WatchOrder", s.watchOrder)
	t.Run("WatchCompacted", s.watchCompacted)
	for _, d := range c.Damages {
		t.Run("Refuses/"+d.Name, func(t *testing.T) { s.refuses(t, d) })
	}
}

type suite struct {
	open    Opener
	k       []string
	invalid []string
}

func (s suite) mustOpen(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := s.open(dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return st
}

// fresh opens a new store that the test closes at its end.
func (s suite) fresh(t *testing.T) store.Store {
	st := s.mustOpen(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	return st
}

func load(t *testing.T, st store.Store) store.Snapshot {
	t.Helper()
	snap, err := st.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

func commit(t *testing.T, st store.Store, read store.Rev, recs ...store.Record) store.Rev {
	t.Helper()
	rev, err := st.Commit(context.Background(), read, recs)
	if err != nil {
		t.Fatalf("Commit(%d, %d records): %v", read, len(recs), err)
	}
	return rev
}

func rec(key, value string) store.Record { return store.Record{Key: key, Value: []byte(value)} }

func del(key string) store.Record { return store.Record{Key: key} }

// same fails unless snap holds exactly want, in key order.
func same(t *testing.T, snap store.Snapshot, want ...store.Record) {
	t.Helper()
	if len(snap.Records) != len(want) {
		t.Fatalf("%d records %s, want %d %s", len(snap.Records), show(snap.Records), len(want), show(want))
	}
	for i := range want {
		if snap.Records[i].Key != want[i].Key || !bytes.Equal(snap.Records[i].Value, want[i].Value) {
			t.Fatalf("records %s, want %s", show(snap.Records), show(want))
		}
	}
}

func show(rs []store.Record) string {
	var b bytes.Buffer
	for _, r := range rs {
		fmt.Fprintf(&b, "[%s=%q]", r.Key, r.Value)
	}
	return b.String()
}

func (s suite) empty(t *testing.T) {
	snap := load(t, s.fresh(t))
	if snap.Rev != 0 || len(snap.Records) != 0 {
		t.Fatalf("a new store: rev %d, %s", snap.Rev, show(snap.Records))
	}
}

func (s suite) commitLoad(t *testing.T) {
	st := s.fresh(t)
	// Out of order, of every kind; ids that sort as strings and not as
	// numbers.
	r1 := commit(t, st, 0, rec(s.k[6], `{}`), rec(s.k[4], "m10"), rec(s.k[1], "cb"), rec(s.k[5], "m9"))
	if r1 != 1 {
		t.Fatalf("first commit at rev %d, want 1", r1)
	}
	r2 := commit(t, st, r1, rec(s.k[2], "la"), rec(s.k[0], "ca"), del(s.k[5]), rec(s.k[1], "cb2"))
	if r2 != 2 {
		t.Fatalf("second commit at rev %d, want 2", r2)
	}
	// Deleting what is not there is no error, and still a batch.
	if r3 := commit(t, st, r2, del(s.k[3])); r3 != 3 {
		t.Fatalf("third commit at rev %d, want 3", r3)
	}
	snap := load(t, st)
	if snap.Rev != 3 {
		t.Fatalf("Load at rev %d, want 3", snap.Rev)
	}
	same(t, snap, rec(s.k[0], "ca"), rec(s.k[1], "cb2"), rec(s.k[2], "la"), rec(s.k[4], "m10"), rec(s.k[6], `{}`))
	// The snapshot is the caller's: changing it changes nothing stored.
	snap.Records[0].Value[0] = 'X'
	same(t, load(t, st), rec(s.k[0], "ca"), rec(s.k[1], "cb2"), rec(s.k[2], "la"), rec(s.k[4], "m10"), rec(s.k[6], `{}`))
}

func (s suite) durable(t *testing.T) {
	dir := t.TempDir()
	st := s.mustOpen(t, dir)
	rev := commit(t, st, 0, rec(s.k[0], "ca"), rec(s.k[3], "m1"))
	rev = commit(t, st, rev, del(s.k[3]), rec(s.k[4], "m2"))
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := st.Commit(context.Background(), store.Any, []store.Record{rec(s.k[5], "z")}); err == nil {
		t.Fatal("Commit after Close succeeded")
	}
	st = s.mustOpen(t, dir)
	defer st.Close()
	snap := load(t, st)
	if snap.Rev != rev {
		t.Fatalf("reopened at rev %d, want %d", snap.Rev, rev)
	}
	same(t, snap, rec(s.k[0], "ca"), rec(s.k[4], "m2"))
	if r := commit(t, st, rev, rec(s.k[1], "cb")); r != rev+1 {
		t.Fatalf("commit after reopening at rev %d, want %d", r, rev+1)
	}
}

func (s suite) conflict(t *testing.T) {
	st := s.fresh(t)
	r1 := commit(t, st, 0, rec(s.k[0], "1"))
	commit(t, st, r1, rec(s.k[0], "2"))
	_, err := st.Commit(context.Background(), r1, []store.Record{rec(s.k[0], "stale"), rec(s.k[1], "stale")})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a commit on a stale revision: %v, want ErrConflict", err)
	}
	snap := load(t, st)
	if snap.Rev != 2 {
		t.Fatalf("rev %d after a refused commit, want 2", snap.Rev)
	}
	same(t, snap, rec(s.k[0], "2"))
	// A revision from the future is stale too.
	if _, err := st.Commit(context.Background(), 7, []store.Record{rec(s.k[0], "x")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a commit on a future revision: %v, want ErrConflict", err)
	}
	// Any commits whatever the revision.
	if r := commit(t, st, store.Any, rec(s.k[0], "3")); r != 3 {
		t.Fatalf("Any commit at rev %d, want 3", r)
	}
}

func (s suite) refusedWhole(t *testing.T) {
	st := s.fresh(t)
	commit(t, st, 0, rec(s.k[0], "1"))
	for _, bad := range s.invalid {
		_, err := st.Commit(context.Background(), store.Any, []store.Record{rec(s.k[0], "changed"), rec(bad, "v")})
		if err == nil {
			t.Errorf("a batch with the key %q was committed", bad)
		}
	}
	snap := load(t, st)
	if snap.Rev != 1 {
		t.Fatalf("rev %d after refused batches, want 1", snap.Rev)
	}
	same(t, snap, rec(s.k[0], "1"))
}

// concurrent commits from many writers all land, each at its own
// revision.
func (s suite) concurrent(t *testing.T) {
	st := s.fresh(t)
	const writers, each = 16, 40
	var wg sync.WaitGroup
	revs := make(chan store.Rev, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rev, err := st.Commit(context.Background(), store.Any, []store.Record{rec(s.k[(w*each+i)%len(s.k)], fmt.Sprintf("w%02d-%02d", w, i))})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				revs <- rev
			}
		})
	}
	wg.Wait()
	close(revs)
	var got []store.Rev
	for r := range revs {
		got = append(got, r)
	}
	slices.Sort(got)
	for i, r := range got {
		if r != store.Rev(i+1) {
			t.Fatalf("revisions %v..., want 1 to %d each once", got[:min(len(got), 10)], writers*each)
		}
	}
	snap := load(t, st)
	if snap.Rev != writers*each || len(snap.Records) != len(s.k) {
		t.Fatalf("rev %d with %d records, want rev %d with %d records", snap.Rev, len(snap.Records), writers*each, len(s.k))
	}
}

// oneWinner: writers that read the same revision race; one wins.
func (s suite) oneWinner(t *testing.T) {
	st := s.fresh(t)
	base := commit(t, st, 0, rec(s.k[6], "0"))
	const writers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for w := range writers {
		wg.Go(func() {
			_, err := st.Commit(context.Background(), base, []store.Record{rec(s.k[6], fmt.Sprint(w))})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrConflict):
				lost++
			default:
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	if won != 1 || lost != writers-1 {
		t.Fatalf("%d won and %d lost, want 1 and %d", won, lost, writers-1)
	}
	if snap := load(t, st); snap.Rev != base+1 {
		t.Fatalf("rev %d, want %d", snap.Rev, base+1)
	}
}

func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the watch ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10 s")
	}
	return store.Event{}
}

func (s suite) watchOrder(t *testing.T) {
	st := s.fresh(t)
	r1 := commit(t, st, 0, rec(s.k[0], "1"))
	r2 := commit(t, st, r1, rec(s.k[1], "1"))
	ctx, cancel := context.WithCancel(context.Background())
	// From r1: the batch at r2 first, then what comes.
	ch, err := st.Watch(ctx, r1)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	r3 := commit(t, st, r2, rec(s.k[3], "m"), del(s.k[0]))
	// A refused batch is not seen.
	st.Commit(context.Background(), r1, []store.Record{rec(s.k[2], "x")})
	r4 := commit(t, st, store.Any, rec(s.k[6], "s"))
	for _, want := range []struct {
		rev  store.Rev
		recs []store.Record
	}{
		{r2, []store.Record{rec(s.k[1], "1")}},
		{r3, []store.Record{rec(s.k[3], "m"), del(s.k[0])}},
		{r4, []store.Record{rec(s.k[6], "s")}},
	} {
		ev := next(t, ch)
		if ev.Err != nil || ev.Rev != want.rev || len(ev.Changes) != len(want.recs) {
			t.Fatalf("event rev %d %s (err %v), want rev %d %s", ev.Rev, show(ev.Changes), ev.Err, want.rev, show(want.recs))
		}
		for i, r := range want.recs {
			if ev.Changes[i].Key != r.Key || !bytes.Equal(ev.Changes[i].Value, r.Value) || (ev.Changes[i].Value == nil) != (r.Value == nil) {
				t.Fatalf("event rev %d %s, want %s", ev.Rev, show(ev.Changes), show(want.recs))
			}
		}
	}
	cancel()
	for ev := range ch {
		if ev.Err == nil && ev.Rev != 0 {
			t.Fatalf("an event after the watch was cancelled: rev %d", ev.Rev)
		}
	}
}

func (s suite) watchCompacted(t *testing.T) {
	dir := t.TempDir()
	st := s.mustOpen(t, dir)
	rev := store.Rev(0)
	for i := range 3 {
		rev = commit(t, st, rev, rec(s.k[0], fmt.Sprint(i)))
	}
	st.Close()
	st = s.mustOpen(t, dir)
	defer st.Close()
	// What came before the store was opened may not be kept; if it is
	// not, Watch says so. Watching from now always works.
	if ch, err := st.Watch(context.Background(), 0); err != nil && !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("Watch(0) after reopening: %v, want events or ErrCompacted", err)
	} else if err == nil {
		if ev := next(t, ch); ev.Rev != 1 {
			t.Fatalf("Watch(0) starts at rev %d, want 1", ev.Rev)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := st.Watch(ctx, rev)
	if err != nil {
		t.Fatalf("Watch(now): %v", err)
	}
	r := commit(t, st, rev, rec(s.k[0], "new"))
	if ev := next(t, ch); ev.Rev != r {
		t.Fatalf("event at rev %d, want %d", ev.Rev, r)
	}
}

// snapshotDir returns every file's bytes under dir.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func (s suite) refuses(t *testing.T, d Damage) {
	dir := t.TempDir()
	d.Do(t, dir)
	before := snapshotDir(t, dir)
	st, err := s.open(dir)
	if err == nil {
		st.Close()
		t.Fatalf("opening a damaged store succeeded; want an error saying %q", d.Want)
	}
	if !bytes.Contains([]byte(err.Error()), []byte(d.Want)) {
		t.Fatalf("open = %v; want an error saying %q", err, d.Want)
	}
	after := snapshotDir(t, dir)
	if len(after) != len(before) {
		t.Fatalf("opening the damaged store left %d files, there were %d", len(after), len(before))
	}
	for p, b := range before {
		if !bytes.Equal(after[p], b) {
			t.Fatalf("opening the damaged store changed %s", p)
		}
	}
}
