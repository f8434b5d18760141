//go:build !linux

package dns

import (
	"errors"
	"net"
	"time"
)

// serve reads and answers one query at a time.
func (u *udpServer) serve() {
	defer close(u.done)
	in := make([]byte, maxQuery)
	out := make([]byte, maxFastAnswer)
	name := make([]byte, 256)
	for {
		n, src, err := u.conn.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		k, general := u.handle(in[:n], src, out, name, time.Now())
		if general {
			k = u.dispatch(append([]byte(nil), in[:n]...), src, out, name)
		}
		if k > 0 {
			u.conn.WriteToUDPAddrPort(out[:k], src)
		}
	}
}
