package webui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/netshare/netshare/internal/connlimit"
)

// Connection limits of the UI's listener: beyond MaxConns, connections wait
// in the kernel's backlog; beyond MaxConnsPerSource from one address, they
// are closed at once. A browser uses about six.
const (
	MaxConns          = 128
	MaxConnsPerSource = 16
)

// Timeouts of the UI's HTTP server: a request's headers must arrive within
// HeaderTimeout and the whole request, body included, within ReadTimeout;
// an idle connection is closed after IdleTimeout. The event stream, which
// the server writes for as long as the page is open, is exempt.
const (
	HeaderTimeout = 10 * time.Second
	ReadTimeout   = 30 * time.Second
	IdleTimeout   = 2 * time.Minute
)

// NewHTTPServer returns the HTTP server for the UI's handler, with its
// timeouts.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: HeaderTimeout, ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout}
}

// ListenConfig says where the web UI listens and who may reach it.
type ListenConfig struct {
	// Addr is host:port; the host is an IP address or "localhost", or
	// empty for every address.
	Addr string
	// Listener, if set, is used instead of Addr (a socket passed in by
	// the process that started the daemon); the same rules apply to its
	// address.
	Listener net.Listener
	// AllowRemote allows an address other than loopback.
	AllowRemote bool
	// AllowPublic allows answering on a public connection's address.
	AllowPublic bool
	// PublicAddrs returns the public connection's addresses now.
	PublicAddrs func() []netip.Addr
	// FromPublic reports whether a connection from remote arrived on the
	// public connection (IPv4 or IPv6, to any local address, the private
	// ones included); nil decides by PublicAddrs alone.
	FromPublic func(remote netip.AddrPort) bool
}

// Listen opens the web UI's listener. Without AllowRemote, only a loopback
// address is allowed. Without AllowPublic, it refuses to listen on an
// address of the public connection, and closes every connection that
// arrives on the public connection (checked on each connection, by the
// interface it came in on where FromPublic says, so that it holds for
// IPv6, for the private addresses reached over the public link, and when
// the public connection or its addresses change). The listener holds at
// most MaxConns connections, MaxConnsPerSource from one address.
func Listen(cfg ListenConfig) (net.Listener, error) {
	ln, err := listen(cfg)
	if err != nil {
		return nil, err
	}
	return connlimit.New(ln, MaxConns, MaxConnsPerSource), nil
}

func listen(cfg ListenConfig) (net.Listener, error) {
	ln := cfg.Listener
	if ln == nil {
		host, port, err := cfg.hostPort()
		if err != nil {
			return nil, err
		}
		if err := checkAddr(cfg, host); err != nil {
			return nil, err
		}
		ln, err = net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, fmt.Errorf("--http: %w", err)
		}
	} else {
		tcp, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("the web UI's listener is on %s, not TCP", ln.Addr())
		}
		host := tcp.IP.String()
		if tcp.IP.IsUnspecified() {
			host = ""
		}
		if err := checkAddr(cfg, host); err != nil {
			return nil, err
		}
	}
	if cfg.AllowPublic || (cfg.PublicAddrs == nil && cfg.FromPublic == nil) {
		return ln, nil
	}
	return &guard{Listener: ln, public: cfg.PublicAddrs, fromPublic: cfg.FromPublic}, nil
}

// Check applies the rules that need no public addresses to Addr: its
// form, and loopback unless AllowRemote. Listen applies them all; Check
// lets a caller refuse a bad address before it starts anything.
func (cfg ListenConfig) Check() error {
	if cfg.Listener != nil {
		return nil
	}
	host, _, err := cfg.hostPort()
	if err != nil {
		return err
	}
	cfg.PublicAddrs = nil
	return checkAddr(cfg, host)
}

// hostPort splits Addr; the host is an IP address, or "" for every
// address.
func (cfg ListenConfig) hostPort() (host, port string, err error) {
	host, port, err = net.SplitHostPort(cfg.Addr)
	if err != nil {
		return "", "", fmt.Errorf("--http %q: give host:port, such as 127.0.0.1:8137", cfg.Addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", fmt.Errorf("--http %q: the host must be an IP address or localhost", cfg.Addr)
		}
	}
	return host, port, nil
}

// checkAddr applies the rules to a host ("" is every address).
func checkAddr(cfg ListenConfig, host string) error {
	if host == "" {
		if !cfg.AllowRemote {
			return errors.New("--http: listening on every address makes the web UI reachable from other machines; give 127.0.0.1:PORT, or add --http-remote")
		}
		return nil
	}
	a, _ := netip.ParseAddr(host)
	a = a.Unmap()
	if a.IsUnspecified() {
		return checkAddr(cfg, "")
	}
	if !a.IsLoopback() && !cfg.AllowRemote {
		return fmt.Errorf("--http: %s is not a loopback address, so the web UI would be reachable from other machines; add --http-remote to allow that", a)
	}
	if !cfg.AllowPublic && cfg.PublicAddrs != nil && slices.Contains(cfg.PublicAddrs(), a) {
		return fmt.Errorf("--http: %s is an address of the public connection; the web UI would face the Internet: add --http-public to allow that", a)
	}
	return nil
}

// guard is a listener that closes the connections that arrive on the
// public connection.
type guard struct {
	net.Listener
	public     func() []netip.Addr
	fromPublic func(remote netip.AddrPort) bool
}

func (g *guard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if g.refuse(c) {
			c.Close()
			continue
		}
		return c, nil
	}
}

// refuse reports whether c came from the public side: to a public
// address, or in on the public connection. What cannot be parsed is
// refused.
func (g *guard) refuse(c net.Conn) bool {
	local, err1 := netip.ParseAddrPort(c.LocalAddr().String())
	remote, err2 := netip.ParseAddrPort(c.RemoteAddr().String())
	if err1 != nil || err2 != nil {
		return true
	}
	if g.public != nil && slices.Contains(g.public(), local.Addr().Unmap().WithZone("")) {
		return true
	}
	return g.fromPublic != nil && g.fromPublic(netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()))
}

// LoginURL returns the UI's address as a URL and the login link, which
// carries token in its fragment (never sent to the server, never in a
// log). A listener on every address is reached on loopback.
func LoginURL(addr net.Addr, token string) (base, login string) {
	host, port, _ := net.SplitHostPort(addr.String())
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		host = "127.0.0.1"
		if a.Is6() && !a.Is4In6() {
			host = "::1"
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	base = "http://" + net.JoinHostPort(host, port) + "/"
	return base, base + "login#token=" + url.QueryEscape(token)
}
