package webui

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

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
}

// Listen opens the web UI's listener. Without AllowRemote, only a loopback
// address is allowed. Without AllowPublic, it refuses to listen on an
// address of the public connection, and a listener on every address drops
// the connections made to the public connection's addresses (checked on
// each connection, so that it holds when the public connection or its
// addresses change).
func Listen(cfg ListenConfig) (net.Listener, error) {
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
	if cfg.AllowPublic || cfg.PublicAddrs == nil {
		return ln, nil
	}
	return &guard{Listener: ln, public: cfg.PublicAddrs}, nil
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

// guard is a listener that closes the connections made to a public
// address.
type guard struct {
	net.Listener
	public func() []netip.Addr
}

func (g *guard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil && slices.Contains(g.public(), ap.Addr().Unmap()) {
			c.Close()
			continue
		}
		return c, nil
	}
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
