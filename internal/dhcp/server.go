package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/netshare/netshare/internal/ping"
)

// Server runs an Allocator on one interface, port 67.
type Server struct {
	srv *server4.Server
	a   *Allocator
	log *slog.Logger
}

// Serve starts serving a on the interface iface; Close stops it.
func Serve(iface string, a *Allocator, log *slog.Logger) (*Server, error) {
	s := &Server{a: a, log: log}
	srv, err := server4.NewServer(iface, &net.UDPAddr{Port: dhcpv4.ServerPort}, s.handle, server4.WithLogger(logAdapter{log}))
	if err != nil {
		return nil, fmt.Errorf("DHCP server on %s: %w", iface, err)
	}
	s.srv = srv
	go srv.Serve()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// Allocator returns the server's allocator.
func (s *Server) Allocator() *Allocator { return s.a }

func (s *Server) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("DHCP request dropped: handler panic", "panic", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp := s.a.Handle(ctx, m)
	if resp == nil {
		return
	}
	to := peer
	if !m.GatewayIPAddr.IsUnspecified() && m.GatewayIPAddr != nil {
		to = &net.UDPAddr{IP: m.GatewayIPAddr, Port: dhcpv4.ServerPort}
	} else if resp.MessageType() == dhcpv4.MessageTypeNak {
		to = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
	if _, err := conn.WriteTo(resp.ToBytes(), to); err != nil {
		s.log.Warn("sending a DHCP reply", "to", to, "err", err)
	}
}

// logAdapter sends server4's log lines to slog: parse errors as warnings
// (a malformed packet is dropped with a log line), the rest as debug.
type logAdapter struct{ log *slog.Logger }

func (l logAdapter) Printf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Error") {
		l.log.Warn("DHCP: " + msg)
		return
	}
	l.log.Debug("DHCP: " + msg)
}

func (l logAdapter) PrintMessage(prefix string, m *dhcpv4.DHCPv4) {
	l.log.Debug("DHCP: "+prefix, "message", m.Summary())
}

// PingProber probes an address with one ICMP echo request.
type PingProber struct {
	Timeout time.Duration
}

// InUse implements Prober.
func (p PingProber) InUse(ctx context.Context, ip netip.Addr) bool {
	_, err := ping.Ping(ip, p.Timeout)
	return err == nil
}
