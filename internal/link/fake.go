package link

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// SetForwarding sets IPv4 forwarding, as another program (or a reboot)
// would.
func (f *Fake) SetForwarding(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwarding = on
}

// RemoveAddr removes an address from a link, as another program would.
func (f *Fake) RemoveAddr(name string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.find(name); l != nil {
		l.Addrs = slices.DeleteFunc(l.Addrs, func(q netip.Prefix) bool { return q == p })
	}
}

// AddAddr adds an address to a link, as another program would.
func (f *Fake) AddAddr(name string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.find(name); l != nil && !slices.Contains(l.Addrs, p) {
		l.Addrs = append(l.Addrs, p)
	}
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

// Set implements Backend. A failure set by FailNext fails the first
// operation Set tries, and Set goes on with the others.
func (f *Fake) Set(ctx context.Context, cfg *Config) (*Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	fail := func(op, link, arg string) bool {
		if err := f.takeFail(); err != nil {
			errs = append(errs, &OpError{Op: op, Link: link, Arg: arg, Err: err})
			return true
		}
		return false
	}
	reached := &Config{}
	for _, name := range slices.Sorted(maps.Keys(cfg.IPv4)) {
		l := f.find(name)
		if l == nil {
			errs = append(errs, &OpError{Op: "setting addresses", Link: name, Err: errNoLink})
			continue
		}
		add, del := Plan(l.Addrs, cfg.IPv4[name])
		for _, p := range add {
			if !fail("adding address", name, p.String()) {
				l.Addrs = append(l.Addrs, p)
			}
		}
		for _, p := range del {
			if !fail("removing address", name, p.String()) {
				l.Addrs = slices.DeleteFunc(l.Addrs, func(q netip.Prefix) bool { return q == p })
			}
		}
		if reached.IPv4 == nil {
			reached.IPv4 = map[string][]netip.Prefix{}
		}
		for _, p := range l.Addrs {
			if p.Addr().Is4() {
				reached.IPv4[name] = append(reached.IPv4[name], p)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Aliases)) {
		l := f.find(name)
		if l == nil {
			errs = append(errs, &OpError{Op: "setting the alias", Link: name, Err: errNoLink})
			continue
		}
		if l.Alias != cfg.Aliases[name] && !fail("setting the alias", name, "") {
			l.Alias = cfg.Aliases[name]
		}
		if reached.Aliases == nil {
			reached.Aliases = map[string]string{}
		}
		reached.Aliases[name] = l.Alias
	}
	if on := cfg.IPv4Forwarding; on != nil {
		if f.forwarding != *on && !fail("setting IPv4 forwarding", "", "") {
			f.forwarding = *on
		}
		reached.IPv4Forwarding = new(f.forwarding)
	}
	return reached, errors.Join(errs...)
}

var errNoLink = errors.New("no such link")

// find returns the named link; f.mu is held.
func (f *Fake) find(name string) *Link {
	for i := range f.links {
		if f.links[i].Name == name {
			return &f.links[i]
		}
	}
	return nil
}

// IPv4Forwarding implements Backend.
func (f *Fake) IPv4Forwarding(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forwarding, nil
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
