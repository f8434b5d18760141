package conntrack

import (
	"fmt"
	"sync"
	"time"
)

// Fake is a Table in memory, for tests of what uses one.
type Fake struct {
	mu    sync.Mutex
	flows map[Tuple]Flow
}

var _ Table = (*Fake)(nil)

// Add puts f in the table.
func (f *Fake) Add(fl Flow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flows == nil {
		f.flows = map[Tuple]Flow{}
	}
	f.flows[fl.Orig] = fl
}

// Get implements Table.
func (f *Fake) Get(orig Tuple) (Flow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.flows[orig]
	if !ok {
		return Flow{}, fmt.Errorf("conntrack: %v: %w", orig, ErrNotFound)
	}
	return fl, nil
}

// SetTimeout implements Table.
func (f *Fake) SetTimeout(orig Tuple, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.flows[orig]
	if !ok {
		return fmt.Errorf("conntrack: %v: %w", orig, ErrNotFound)
	}
	fl.Timeout = d.Truncate(time.Second)
	f.flows[orig] = fl
	return nil
}
