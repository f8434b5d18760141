package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/netshare/netshare/internal/ping"
)

// Greeting starts every answer of the test server; the rest is the
// address the server saw the client come from.
const Greeting = "netshare-lab: you are "

// Serve runs the test server on port, TCP and UDP, until ctx is done. To
// each TCP connection and each UDP datagram it answers with Greeting and
// the client's address, so that a test sees what NAT did.
func Serve(ctx context.Context, port int) error {
	tl, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return err
	}
	ul, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
	if err != nil {
		tl.Close()
		return err
	}
	go func() {
		<-ctx.Done()
		tl.Close()
		ul.Close()
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			ul.WriteTo([]byte(Greeting+from.String()+"\n"), from)
		}
	}()
	for {
		c, err := tl.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, Greeting+c.RemoteAddr().String()+"\n")
		}()
	}
}

// Probe sends one TCP connection or UDP datagram to addr and returns the
// server's answer, or an error if none came within timeout. For icmp, addr
// is an address without a port, and Probe pings it.
//
// from, if set, is the local address and port to send from (HOST:PORT,
// either part may be empty or 0 for any), for TCP and UDP.
func Probe(proto, addr, from string, timeout time.Duration) (string, error) {
	d := net.Dialer{Timeout: timeout}
	switch proto {
	case "tcp", "udp":
		if from != "" {
			local, err := net.ResolveUDPAddr("udp", from)
			if err != nil {
				return "", fmt.Errorf("from %q: %w", from, err)
			}
			if proto == "tcp" {
				d.LocalAddr = &net.TCPAddr{IP: local.IP, Port: local.Port}
			} else {
				d.LocalAddr = local
			}
		}
	case "icmp":
		return Ping(addr, timeout)
	default:
		return "", fmt.Errorf("protocol %q: use tcp, udp or icmp", proto)
	}
	c, err := d.Dial(proto, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return "", err
		}
	}
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// Stream sends a UDP datagram to addr every interval for duration, from
// one source port (one flow), and writes a line "<ms since start>" to w for
// each answer.
func Stream(addr string, duration, interval time.Duration, w io.Writer) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		for {
			c.SetReadDeadline(start.Add(duration + time.Second))
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return
				}
				// ICMP errors come back as read errors: keep listening.
				if time.Since(start) > duration+time.Second {
					return
				}
				continue
			}
			fmt.Fprintf(w, "%d\n", time.Since(start).Milliseconds())
		}
	}()
	for time.Since(start) < duration {
		c.Write([]byte("tick\n"))
		time.Sleep(interval)
	}
	<-done
	return nil
}

// Ping sends one ICMP echo request to addr and waits for the reply.
func Ping(addr string, timeout time.Duration) (string, error) {
	dst, err := netip.ParseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address", addr)
	}
	rtt, err := ping.Ping(dst, timeout)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("reply from %s in %v", dst, rtt.Round(time.Microsecond)), nil
}
