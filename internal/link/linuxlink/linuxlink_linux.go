package linuxlink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netshare/netshare/internal/link"
)

// dumpRetries bounds the retries of a netlink dump that the kernel marks
// as interrupted (NLM_F_DUMP_INTR, vishvananda/netlink#1018): a dump that
// races with a change returns partial results and must be done again.
const dumpRetries = 5

// Backend is a link.Backend on one network namespace.
type Backend struct {
	h  *netlink.Handle
	ns netns.NsHandle // the namespace; not open for the current one

	mu    sync.Mutex // guards saved
	saved map[string][]netlink.Route
}

var _ link.Backend = (*Backend)(nil)

// New returns a Backend on the namespace ns; a closed handle (netns.None())
// means the namespace of the calling process.
func New(ns netns.NsHandle) (*Backend, error) {
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	return &Backend{h: h, ns: ns, saved: map[string][]netlink.Route{}}, nil
}

// Close releases the netlink socket.
func (b *Backend) Close() { b.h.Close() }

// retry runs a netlink dump again while the kernel says it was interrupted.
func retry[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpRetries {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// List implements link.Backend.
func (b *Backend) List(ctx context.Context) ([]link.Link, error) {
	ls, err := retry(b.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	addrs, err := retry(func() ([]netlink.Addr, error) { return b.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	byIndex := map[int][]netip.Prefix{}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], netip.PrefixFrom(ip.Unmap(), ones))
	}
	drivers := b.drivers(ls)
	out := make([]link.Link, 0, len(ls))
	for _, l := range ls {
		at := l.Attrs()
		kind := l.Type()
		if at.Flags&net.FlagLoopback != 0 {
			kind = "loopback"
		}
		out = append(out, link.Link{
			Name:    at.Name,
			Index:   at.Index,
			Kind:    kind,
			Driver:  drivers[at.Name],
			Alias:   at.Alias,
			Up:      at.Flags&net.FlagUp != 0,
			Carrier: at.RawFlags&unix.IFF_LOWER_UP != 0,
			Addrs:   byIndex[at.Index],
		})
	}
	return out, nil
}

// drivers asks ethtool for the driver of each link. A link without one
// (most virtual links answer, some do not) is left out.
func (b *Backend) drivers(ls []netlink.Link) map[string]string {
	out := map[string]string{}
	fd, err := b.socket()
	if err != nil {
		return out
	}
	defer unix.Close(fd)
	for _, l := range ls {
		if info, err := unix.IoctlGetEthtoolDrvinfo(fd, l.Attrs().Name); err == nil {
			out[l.Attrs().Name] = unix.ByteSliceToString(info.Driver[:])
		}
	}
	return out
}

// socket opens a datagram socket in the backend's namespace, for ioctls.
func (b *Backend) socket() (int, error) {
	fd := -1
	err := b.inNS(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	return fd, err
}

// inNS runs fn on a thread in the backend's namespace: sockets and
// /proc/sys/net belong to the namespace of the thread that opens them.
func (b *Backend) inNS(fn func() error) error {
	if !b.ns.IsOpen() {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(b.ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the other namespace: leave it locked, so
		// that it ends with this goroutine instead of serving others.
		return fmt.Errorf("returning to the original namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// IPv4Forwarding implements link.Backend.
func (b *Backend) IPv4Forwarding(ctx context.Context) (bool, error) {
	var v []byte
	err := b.inNS(func() error {
		var err error
		v, err = os.ReadFile(ipForward)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", ipForward, err)
	}
	return strings.TrimSpace(string(v)) == "1", nil
}

// Set implements link.Backend.
func (b *Backend) Set(ctx context.Context, cfg *link.Config) (*link.Config, error) {
	var errs []error
	reached := &link.Config{}
	for _, name := range slices.Sorted(maps.Keys(cfg.IPv4)) {
		got, err := b.setIPv4(name, cfg.IPv4[name])
		errs = append(errs, err...)
		if got != nil {
			if reached.IPv4 == nil {
				reached.IPv4 = map[string][]netip.Prefix{}
			}
			reached.IPv4[name] = got
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Aliases)) {
		alias := cfg.Aliases[name]
		l, err := b.h.LinkByName(name)
		if err == nil && l.Attrs().Alias != alias {
			err = b.h.LinkSetAlias(l, alias)
		}
		if err != nil {
			errs = append(errs, &link.OpError{Op: "setting the alias", Link: name, Err: err})
			continue
		}
		if reached.Aliases == nil {
			reached.Aliases = map[string]string{}
		}
		reached.Aliases[name] = alias
	}
	if on := cfg.IPv4Forwarding; on != nil {
		if err := b.setForwarding(*on); err != nil {
			errs = append(errs, &link.OpError{Op: "setting IPv4 forwarding", Err: err})
		}
		if now, err := b.IPv4Forwarding(ctx); err == nil {
			reached.IPv4Forwarding = &now
		}
	}
	return reached, errors.Join(errs...)
}

// setIPv4 gives a link exactly the IPv4 addresses want: the missing ones
// first, then it removes the others. It returns the addresses the link
// has afterwards (nil if they cannot be read).
func (b *Backend) setIPv4(name string, want []netip.Prefix) ([]netip.Prefix, []error) {
	l, err := b.h.LinkByName(name)
	if err != nil {
		return nil, []error{&link.OpError{Op: "setting addresses", Link: name, Err: err}}
	}
	have, err := b.ipv4(l)
	if err != nil {
		return nil, []error{&link.OpError{Op: "listing addresses", Link: name, Err: err}}
	}
	add, del := link.Plan(have, want)
	var errs []error
	for _, p := range add {
		if err := b.h.AddrAdd(l, nlAddr(p)); err != nil {
			errs = append(errs, &link.OpError{Op: "adding address", Link: name, Arg: p.String(), Err: err})
		}
	}
	for _, p := range del {
		if err := b.h.AddrDel(l, nlAddr(p)); err != nil {
			errs = append(errs, &link.OpError{Op: "removing address", Link: name, Arg: p.String(), Err: err})
		}
	}
	got, err := b.ipv4(l)
	if err != nil {
		return nil, errs
	}
	return got, errs
}

// ipv4 returns a link's IPv4 addresses.
func (b *Backend) ipv4(l netlink.Link) ([]netip.Prefix, error) {
	as, err := retry(func() ([]netlink.Addr, error) { return b.h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

func (b *Backend) setForwarding(on bool) error {
	v := "0\n"
	if on {
		v = "1\n"
	}
	if err := b.inNS(func() error { return os.WriteFile(ipForward, []byte(v), 0o644) }); err != nil {
		return fmt.Errorf("writing %s: %w", ipForward, err)
	}
	return nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}

func (b *Backend) byName(name string) (netlink.Link, error) {
	l, err := b.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("link %q: %w", name, err)
	}
	return l, nil
}

// SetUp implements link.Backend. It puts back the IPv4 routes through the
// link that SetDown saw go (the kernel drops them with the link), such as
// a default route.
func (b *Backend) SetUp(ctx context.Context, name string) error {
	l, err := b.byName(name)
	if err != nil {
		return err
	}
	if err := b.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	b.mu.Lock()
	routes := b.saved[name]
	delete(b.saved, name)
	b.mu.Unlock()
	var errs []error
	for _, r := range routes {
		r.LinkIndex = l.Attrs().Index
		if err := b.h.RouteReplace(&r); err != nil {
			errs = append(errs, fmt.Errorf("restoring route %s: %w", r, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s is up, but: %w", name, errors.Join(errs...))
	}
	return nil
}

// SetDown implements link.Backend. It keeps the link's IPv4 routes (those
// not made by the kernel for its addresses) for SetUp to put back.
func (b *Backend) SetDown(ctx context.Context, name string) error {
	l, err := b.byName(name)
	if err != nil {
		return err
	}
	routes, err := retry(func() ([]netlink.Route, error) { return b.h.RouteList(l, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("listing the routes of %s: %w", name, err)
	}
	var keep []netlink.Route
	for _, r := range routes {
		if r.Protocol != unix.RTPROT_KERNEL {
			keep = append(keep, r)
		}
	}
	if err := b.h.LinkSetDown(l); err != nil {
		return fmt.Errorf("setting %s down: %w", name, err)
	}
	if len(keep) > 0 {
		b.mu.Lock()
		b.saved[name] = append(b.saved[name], keep...)
		b.mu.Unlock()
	}
	return nil
}

// Watch calls notify after each change to the namespace's links or
// addresses, until ctx is done.
func (b *Backend) Watch(ctx context.Context, notify func()) error {
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		close(done)
	}()
	lch := make(chan netlink.LinkUpdate, 64)
	ach := make(chan netlink.AddrUpdate, 64)
	var nsp *netns.NsHandle
	if b.ns.IsOpen() {
		nsp = &b.ns
	}
	if err := netlink.LinkSubscribeWithOptions(lch, done, netlink.LinkSubscribeOptions{Namespace: nsp}); err != nil {
		return fmt.Errorf("subscribing to link changes: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(ach, done, netlink.AddrSubscribeOptions{Namespace: nsp}); err != nil {
		return fmt.Errorf("subscribing to address changes: %w", err)
	}
	go func() {
		for {
			select {
			case _, ok := <-lch:
				if !ok {
					return
				}
			case _, ok := <-ach:
				if !ok {
					return
				}
			}
			notify()
		}
	}()
	return nil
}

// RouteInterface returns the interface the namespace routes dst through:
// for the peer of a connection, the interface the connection came in on
// (a TCP peer must be reached back the way it came, or its handshake does
// not complete).
func (b *Backend) RouteInterface(dst netip.Addr) (string, error) {
	routes, err := b.h.RouteGet(dst.AsSlice())
	if err != nil {
		return "", fmt.Errorf("looking up the route to %s: %w", dst, err)
	}
	if len(routes) == 0 || routes[0].LinkIndex == 0 {
		return "", fmt.Errorf("looking up the route to %s: no route", dst)
	}
	l, err := b.h.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", fmt.Errorf("looking up the route to %s: link %d: %w", dst, routes[0].LinkIndex, err)
	}
	return l.Attrs().Name, nil
}
