package daemon

import (
	"log/slog"

	"github.com/vishvananda/netns"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/fw/nftfw"
	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/link/linuxlink"
)

// kernelBackends opens the netlink and nftables backends of the daemon's
// network namespace where links or firewall is nil; closeAll closes what
// it opened.
func kernelBackends(links link.Backend, firewall fw.Backend, log *slog.Logger) (_ link.Backend, _ fw.Backend, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if links == nil {
		l, err := linuxlink.New(netns.None())
		if err != nil {
			return nil, nil, func() {}, err
		}
		closers = append(closers, l.Close)
		links = l
	}
	if firewall == nil {
		f, err := nftfw.New(netns.None(), log.With("component", "nftables"))
		if err != nil {
			closeAll()
			return nil, nil, func() {}, err
		}
		closers = append(closers, func() { f.Close() })
		firewall = f
	}
	return links, firewall, closeAll, nil
}
