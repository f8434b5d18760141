package fw

import (
	"context"
	"fmt"
	"sync"
)

// Fake is an in-memory Backend that checks the UpdateMappings contract.
type Fake struct {
	mu       sync.Mutex // guards the fields below
	cfg      *Config
	mappings map[Key]Mapping
	fail     error
	replaces int
	updates  int
}

var _ Backend = (*Fake)(nil)

// NewFake returns a Fake holding an empty Config.
func NewFake() *Fake {
	return &Fake{cfg: &Config{}, mappings: map[Key]Mapping{}}
}

// FailNext makes the next call return err and change nothing.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// Config returns a sorted copy of the state the Fake holds.
func (f *Fake) Config() *Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg.Clone()
	c.Mappings = c.Mappings[:0]
	for _, m := range f.mappings {
		c.Mappings = append(c.Mappings, m)
	}
	c.Sort()
	return c
}

// Calls returns how many times Replace and UpdateMappings succeeded.
func (f *Fake) Calls() (replaces, updates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.replaces, f.updates
}

// Replace implements Backend.
func (f *Fake) Replace(ctx context.Context, cfg *Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFail(); err != nil {
		return err
	}
	ms := make(map[Key]Mapping, len(cfg.Mappings))
	for _, m := range cfg.Mappings {
		if _, dup := ms[m.Key]; dup {
			return fmt.Errorf("replace: mapping %s twice", m.Key)
		}
		ms[m.Key] = m
	}
	f.cfg = cfg.Clone()
	f.mappings = ms
	f.replaces++
	return nil
}

// UpdateMappings implements Backend.
func (f *Fake) UpdateMappings(ctx context.Context, del, add []Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFail(); err != nil {
		return err
	}
	// Check the whole change first, so that a refused one changes
	// nothing; then apply it in place (a copy would cost O(N) a change).
	gone := make(map[Key]bool, len(del))
	for _, m := range del {
		if f.mappings[m.Key] != m || gone[m.Key] {
			return fmt.Errorf("delete mapping %s: not present", m)
		}
		gone[m.Key] = true
	}
	added := make(map[Key]bool, len(add))
	for _, m := range add {
		if _, ok := f.mappings[m.Key]; ok && !gone[m.Key] || added[m.Key] {
			return fmt.Errorf("add mapping %s: key already present", m)
		}
		added[m.Key] = true
	}
	for _, m := range del {
		delete(f.mappings, m.Key)
	}
	for _, m := range add {
		f.mappings[m.Key] = m
	}
	f.updates++
	return nil
}

func (f *Fake) takeFail() error {
	err := f.fail
	f.fail = nil
	return err
}
