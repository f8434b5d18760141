package link

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Fake is an in-memory Backend. Setting a link up gives it a carrier, as a
// cable that is plugged in would.
type Fake struct {
	mu         sync.Mutex // guards the fields below
	links      []Link
	fail       error
	forwarding bool
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

// AddAddr implements Backend.
func (f *Fake) AddAddr(ctx context.Context, name string, addr netip.Prefix) error {
	var err error
	cerr := f.change(name, func(l *Link) {
		if slices.Contains(l.Addrs, addr) {
			err = fmt.Errorf("link %q: address %s exists", name, addr)
			return
		}
		l.Addrs = append(l.Addrs, addr)
	})
	return cmp.Or(cerr, err)
}

// DelAddr implements Backend.
func (f *Fake) DelAddr(ctx context.Context, name string, addr netip.Prefix) error {
	var err error
	cerr := f.change(name, func(l *Link) {
		i := slices.Index(l.Addrs, addr)
		if i < 0 {
			err = fmt.Errorf("link %q: no address %s", name, addr)
			return
		}
		l.Addrs = slices.Delete(l.Addrs, i, i+1)
	})
	return cmp.Or(cerr, err)
}

// IPv4Forwarding implements Backend.
func (f *Fake) IPv4Forwarding(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forwarding, nil
}

// SetIPv4Forwarding implements Backend.
func (f *Fake) SetIPv4Forwarding(ctx context.Context, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFail(); err != nil {
		return err
	}
	f.forwarding = on
	return nil
}

func (f *Fake) takeFail() error {
	err := f.fail
	f.fail = nil
	return err
}

func (f *Fake) change(name string, fn func(*Link)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFail(); err != nil {
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
