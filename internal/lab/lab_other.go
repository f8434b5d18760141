//go:build !linux

package lab

import (
	"context"
	"errors"
	"io"
	"syscall"
)

var errLinuxOnly = errors.New("the lab needs Linux (network namespaces, netlink)")

// DHCPClient needs Linux.
func DHCPClient(ctx context.Context, iface, hostname string, w io.Writer) error {
	return errLinuxOnly
}

func broadcastOn(string) func(_, _ string, c syscall.RawConn) error {
	return func(_, _ string, _ syscall.RawConn) error { return errLinuxOnly }
}
