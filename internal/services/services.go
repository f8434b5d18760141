// Package services runs the DHCP server, the DNS forwarder and (where it
// is switched on) the NAT-PMP and PCP server of each private network. Backend is the seam the model drives with the whole
// desired state; Runner is the real one, Fake keeps the state in memory.
package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"github.com/netshare/netshare/internal/dhcp"
	"github.com/netshare/netshare/internal/dns"
	"github.com/netshare/netshare/internal/portmap"
	"github.com/netshare/netshare/internal/ratelimit"
)

// Network is one private network's services.
type Network struct {
	Connection string // the connection's id
	Interface  string
	// Address is the gateway's address on the network, with its prefix.
	Address netip.Prefix
	DHCP    dhcp.Config
	// PortMap serves NAT-PMP and PCP to the network's devices, each
	// client at most PortMapRate requests a second.
	PortMap     bool
	PortMapRate float64
}

// Config is the services' desired state.
type Config struct {
	Networks  []Network
	Upstreams []netip.AddrPort
	// PortMapEpoch is when the devices' mapping state began: when it
	// changes, the NAT-PMP and PCP servers announce it, so that their
	// clients map again.
	PortMapEpoch time.Time
}

// Equal reports whether c and o are the same.
func (c *Config) Equal(o *Config) bool {
	return o != nil && reflect.DeepEqual(c, o)
}

// Backend runs the services of a Config. Apply may be called with the same
// Config many times.
type Backend interface {
	Apply(ctx context.Context, cfg *Config) error
}

// Leases keeps the leases of the DHCP servers; the model implements it.
type Leases interface {
	// Leases returns the leases and declined addresses of a connection.
	Leases(conn string) ([]dhcp.Lease, map[netip.Addr]time.Time)
	Bind(conn string, l dhcp.Lease) error
	Release(conn string, l dhcp.Lease) error
	Decline(conn string, ip netip.Addr, until time.Time) error
}

// Runner is the Backend that serves DHCP on port 67 and DNS on port 53 of
// each private network.
type Runner struct {
	leases Leases
	names  dns.Names
	probe  func(iface string, server netip.Addr) dhcp.Prober
	log    *slog.Logger
	cache  *dns.Cache
	pm     *portmap.Handler // answers NAT-PMP and PCP; nil: never served

	mu      sync.Mutex // guards running and ups
	running map[string]*running
	ups     *[]netip.AddrPort // the upstreams last applied
	epoch   time.Time         // the devices' mapping epoch last applied
}

type running struct {
	net  Network
	ups  []netip.AddrPort
	dhcp *dhcp.Server
	dns  *dns.Server
	pm   *portmap.Server
}

var _ Backend = (*Runner)(nil)

// NewRunner returns a Runner. probe makes the prober of a network's DHCP
// server (dhcp.NewProber); nil means addresses are offered unprobed.
func NewRunner(leases Leases, names dns.Names, probe func(iface string, server netip.Addr) dhcp.Prober, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{leases: leases, names: names, probe: probe, log: log, cache: dns.NewCache(dns.DefaultCacheSize), running: map[string]*running{}}
}

// SetCacheSize gives the DNS forwarders a cache of n bytes, in place of
// the default one; call it before the first Apply.
func (r *Runner) SetCacheSize(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache = dns.NewCache(n)
}

// SetPortMap sets the handler of NAT-PMP and PCP, served on the networks
// that ask for it; call it before the first Apply.
func (r *Runner) SetPortMap(h *portmap.Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pm = h
}

// Apply implements Backend.
func (r *Runner) Apply(ctx context.Context, cfg *Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[string]Network{}
	for _, n := range cfg.Networks {
		want[n.Connection] = n
	}
	var errs []error
	if r.ups != nil && !reflect.DeepEqual(*r.ups, cfg.Upstreams) {
		// Answers of the old upstreams are not what the new ones say.
		r.cache.Flush()
	}
	r.ups = &cfg.Upstreams
	announce := !r.epoch.IsZero() && !cfg.PortMapEpoch.Equal(r.epoch)
	r.epoch = cfg.PortMapEpoch
	for id, run := range r.running {
		n, ok := want[id]
		if ok && n.Interface == run.net.Interface && n.Address == run.net.Address {
			continue
		}
		r.stop(run)
		delete(r.running, id)
	}
	for id, n := range want {
		run := r.running[id]
		if run == nil {
			run = &running{net: n}
			if err := r.startDHCP(run); err != nil {
				errs = append(errs, err)
				continue
			}
			r.running[id] = run
		} else if !reflect.DeepEqual(run.net.DHCP, n.DHCP) {
			run.dhcp.Allocator().SetConfig(n.DHCP)
		}
		if run.dns == nil || run.net.DHCP.Domain != n.DHCP.Domain || !reflect.DeepEqual(run.ups, cfg.Upstreams) {
			if run.dns != nil {
				run.dns.Close()
				run.dns = nil
			}
			h := &dns.Handler{Domain: n.DHCP.Domain, Names: r.names, Upstreams: cfg.Upstreams, Log: r.log, Cache: r.cache}
			s, err := dns.Serve(h, []netip.AddrPort{netip.AddrPortFrom(n.Address.Addr(), 53)})
			if err != nil {
				errs = append(errs, err)
			} else {
				run.dns = s
				run.ups = cfg.Upstreams
				r.log.Info("DNS serving", "address", n.Address.Addr(), "domain", n.DHCP.Domain, "upstreams", cfg.Upstreams)
			}
		}
		if run.pm != nil && n.PortMapRate != run.net.PortMapRate {
			run.pm.Close() // started again below, at the new rate
			run.pm = nil
		}
		switch {
		case n.PortMap && run.pm == nil && r.pm != nil:
			limits := portmap.DefaultLimits
			if n.PortMapRate > 0 {
				limits.PerClient = ratelimit.Limit{Rate: n.PortMapRate, Burst: 2 * n.PortMapRate}
			}
			s, err := portmap.Serve(r.pm, n.Interface, n.Address, limits, r.log.With("interface", n.Interface))
			if err != nil {
				errs = append(errs, err)
			} else {
				run.pm = s
				r.log.Info("NAT-PMP and PCP serving", "address", s.Addr())
			}
		case !n.PortMap && run.pm != nil:
			run.pm.Close()
			run.pm = nil
			r.log.Info("NAT-PMP and PCP stopped", "interface", n.Interface)
		case announce && run.pm != nil:
			run.pm.Announce()
		}
		run.net = n
	}
	return errors.Join(errs...)
}

func (r *Runner) startDHCP(run *running) error {
	n := run.net
	leases, declined := r.leases.Leases(n.Connection)
	var probe dhcp.Prober
	if r.probe != nil {
		probe = r.probe(n.Interface, n.Address.Addr())
	}
	a := dhcp.NewAllocator(n.DHCP, leases, declined, connLeases{r.leases, n.Connection}, probe, r.log.With("interface", n.Interface), nil)
	s, err := dhcp.Serve(n.Interface, a, dhcp.DefaultLimits, r.log.With("interface", n.Interface))
	if err != nil {
		return fmt.Errorf("starting DHCP on %s: %w", n.Interface, err)
	}
	run.dhcp = s
	r.log.Info("DHCP serving", "interface", n.Interface, "pool", fmt.Sprintf("%s-%s", n.DHCP.PoolStart, n.DHCP.PoolEnd), "leaseTime", n.DHCP.LeaseTime)
	return nil
}

func (r *Runner) stop(run *running) {
	if run.dhcp != nil {
		run.dhcp.Close()
	}
	if run.dns != nil {
		run.dns.Close()
	}
	if run.pm != nil {
		run.pm.Close()
	}
	r.log.Info("services stopped", "interface", run.net.Interface)
}

// Close stops every service.
func (r *Runner) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, run := range r.running {
		r.stop(run)
		delete(r.running, id)
	}
}

// connLeases is the dhcp.Store of one connection.
type connLeases struct {
	l    Leases
	conn string
}

func (c connLeases) Bind(l dhcp.Lease) error    { return c.l.Bind(c.conn, l) }
func (c connLeases) Release(l dhcp.Lease) error { return c.l.Release(c.conn, l) }
func (c connLeases) Decline(ip netip.Addr, until time.Time) error {
	return c.l.Decline(c.conn, ip, until)
}

// Fake is an in-memory Backend.
type Fake struct {
	mu   sync.Mutex
	cfg  *Config
	fail error
}

var _ Backend = (*Fake)(nil)

// Apply implements Backend.
func (f *Fake) Apply(ctx context.Context, cfg *Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail; err != nil {
		f.fail = nil
		return err
	}
	f.cfg = cfg
	return nil
}

// Config returns the last Config applied.
func (f *Fake) Config() *Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg == nil {
		return &Config{}
	}
	return f.cfg
}

// FailNext makes the next Apply fail with err.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}
