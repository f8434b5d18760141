// Package ratelimit bounds work by rate: a token Bucket, a Table of buckets
// by key whose memory is fixed however many keys arrive (per client
// limits under a flood of forged sources), and a Sampler for log lines.
//
// Nothing here reads the clock: callers pass the time, so that tests and
// fuzzers drive it.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

// Limit is a sustained rate (tokens a second) and a burst (the bucket's
// size). A zero Limit allows nothing.
type Limit struct {
	Rate  float64
	Burst float64
}

// Bucket is a token bucket. The zero Bucket is full the first time it is
// used. It is not safe for concurrent use.
type Bucket struct {
	tokens float64
	last   time.Time
}

// Allow takes one token at now, if there is one.
func (b *Bucket) Allow(l Limit, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens, b.last = l.Burst, now
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.Burst, b.tokens+d.Seconds()*l.Rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Table keeps a Bucket for each key it has seen recently, in a fixed
// number of slots: a key that finds no slot takes the one used least
// recently among the few it may use, so that forged keys cost memory only
// once, and a key that comes back after being pushed out starts full.
// It is safe for concurrent use.
type Table[K comparable] struct {
	limit Limit
	seed  maphash.Seed

	mu    sync.Mutex
	slots []slot[K]
}

type slot[K comparable] struct {
	key  K
	used bool
	b    Bucket
}

// ways is how many slots a key may use.
const ways = 4

// NewTable returns a Table of about size slots (at least ways) applying l
// to each key.
func NewTable[K comparable](l Limit, size int) *Table[K] {
	n := max(1, (size+ways-1)/ways)
	return &Table[K]{limit: l, seed: maphash.MakeSeed(), slots: make([]slot[K], n*ways)}
}

// Allow takes a token from key's bucket at now, if there is one.
func (t *Table[K]) Allow(key K, now time.Time) bool {
	set := int(maphash.Comparable(t.seed, key) % uint64(len(t.slots)/ways))
	t.mu.Lock()
	defer t.mu.Unlock()
	ss := t.slots[set*ways : set*ways+ways]
	victim := 0
	for i := range ss {
		if ss[i].used && ss[i].key == key {
			return ss[i].b.Allow(t.limit, now)
		}
		if !ss[i].used {
			victim = i
		} else if ss[victim].used && ss[i].b.last.Before(ss[victim].b.last) {
			victim = i
		}
	}
	ss[victim] = slot[K]{key: key, used: true}
	return ss[victim].b.Allow(t.limit, now)
}

// Sampler lets log lines through at a limited rate and counts the ones it
// holds back, so that a flood of bad packets costs a few lines that say
// how many were left out. It is safe for concurrent use.
type Sampler struct {
	limit Limit

	mu         sync.Mutex
	b          Bucket
	suppressed int
}

// NewSampler lets through burst lines at once and then rate a second.
func NewSampler(rate, burst float64) *Sampler {
	return &Sampler{limit: Limit{Rate: rate, Burst: burst}}
}

// Allow reports whether a line may be written at now and, if so, how many
// were held back since the last one that was.
func (s *Sampler) Allow(now time.Time) (ok bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.b.Allow(s.limit, now) {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.suppressed = 0
	return true, n
}
