package link

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Fake is an in-memory Backend. Setting a link up gives it a carrier, as a
// cable that is plugged in would.
type Fake struct {
	mu    sync.Mutex // guards links and fail
	links []Link
	fail  error
}

var _ Backend = (*Fake)(nil)

// NewFake returns a Fake holding copies of links.
func NewFake(links ...Link) *Fake {
	f := &Fake{}
	for _, l := range links {
		f.Add(l)
	}
	return f
}

// Add adds a link, replacing one of the same name.
func (f *Fake) Add(l Link) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l.Addrs = slices.Clone(l.Addrs)
	if l.Index == 0 {
		l.Index = len(f.links) + 1
	}
	for i := range f.links {
		if f.links[i].Name == l.Name {
			f.links[i] = l
			return
		}
	}
	f.links = append(f.links, l)
}

// Remove removes the named link, as unplugging a USB adapter would.
func (f *Fake) Remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links = slices.DeleteFunc(f.links, func(l Link) bool { return l.Name == name })
}

// FailNext makes the next changing call return err.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// Get returns a copy of the named link.
func (f *Fake) Get(name string) (Link, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.links {
		if l.Name == name {
			l.Addrs = slices.Clone(l.Addrs)
			return l, true
		}
	}
	return Link{}, false
}

// List implements Backend.
func (f *Fake) List(ctx context.Context) ([]Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Link, len(f.links))
	for i, l := range f.links {
		l.Addrs = slices.Clone(l.Addrs)
		out[i] = l
	}
	return out, nil
}

// SetUp implements Backend.
func (f *Fake) SetUp(ctx context.Context, name string) error {
	return f.change(name, func(l *Link) { l.Up, l.Carrier = true, true })
}

// SetDown implements Backend.
func (f *Fake) SetDown(ctx context.Context, name string) error {
	return f.change(name, func(l *Link) { l.Up, l.Carrier = false, false })
}

// SetAlias implements Backend.
func (f *Fake) SetAlias(ctx context.Context, name, alias string) error {
	return f.change(name, func(l *Link) { l.Alias = alias })
}

func (f *Fake) change(name string, fn func(*Link)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail; err != nil {
		f.fail = nil
		return err
	}
	for i := range f.links {
		if f.links[i].Name == name {
			fn(&f.links[i])
			return nil
		}
	}
	return fmt.Errorf("link %q: no such link", name)
}
