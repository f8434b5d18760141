//go:build !linux

package daemon

import (
	"errors"
	"log/slog"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/link"
)

// kernelBackends refuses: netshare's kernel backends are Linux's netlink
// and nftables. The fake backend runs anywhere.
func kernelBackends(links link.Backend, firewall fw.Backend, _ *slog.Logger) (link.Backend, fw.Backend, func(), error) {
	if links != nil && firewall != nil {
		return links, firewall, func() {}, nil
	}
	return nil, nil, func() {}, errors.New("the kernel backend needs Linux (netlink and nftables); use --backend fake to try netshare here")
}
