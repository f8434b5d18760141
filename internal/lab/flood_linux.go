package lab

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// broadcastOn returns a socket control that lets a socket send to the
// broadcast address and binds it to iface.
func broadcastOn(iface string) func(_, _ string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr == nil {
				serr = unix.BindToDevice(int(fd), iface)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
