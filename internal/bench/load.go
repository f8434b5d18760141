package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Load runs clients that, for duration, open TCP connections to addr and
// read the first byte of the answer (proto "tcp"), or send a datagram and
// wait for the answer (proto "udp"); it returns how many exchanges
// succeeded. TCP connections are closed with a reset, so that the client
// keeps no TIME_WAIT ports.
func Load(proto, addr string, clients int, duration time.Duration) (int64, error) {
	var ok, failed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			var uc net.Conn
			buf := make([]byte, 512)
			for ctx.Err() == nil {
				var err error
				switch proto {
				case "tcp":
					err = tcpOnce(addr, buf)
				case "udp":
					if uc == nil {
						if uc, err = net.Dial("udp", addr); err != nil {
							break
						}
					}
					err = udpOnce(uc, buf)
					if err != nil {
						uc.Close()
						uc = nil
					}
				default:
					err = fmt.Errorf("protocol %q", proto)
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
			if uc != nil {
				uc.Close()
			}
		})
	}
	wg.Wait()
	if ok.Load() == 0 {
		return 0, errors.New("no exchange succeeded")
	}
	return ok.Load(), nil
}

func tcpOnce(addr string, buf []byte) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	c.SetDeadline(time.Now().Add(time.Second))
	_, err = c.Read(buf[:1])
	return err
}

func udpOnce(c net.Conn, buf []byte) error {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	_, err := c.Read(buf)
	return err
}
