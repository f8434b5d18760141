package daemon

import (
	"log/slog"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd how the daemon is, for a unit of Type=notify:
// ready once the stored state is applied to the kernel and the socket
// answers; alive after each round of the main loop, so that with
// WatchdogSec a daemon stuck on its state or on the kernel is restarted;
// stopping when asked to stop. Without NOTIFY_SOCKET (not run by
// systemd) it sends nothing.
type notifier struct {
	log   *slog.Logger
	every time.Duration // the keep-alive period; 0 without a watchdog
	last  atomic.Int64  // when the last keep-alive went, Unix ns
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log}
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd's watchdog settings are unreadable; no keep-alives will be sent", "err", err)
	}
	if d > 0 {
		// Twice a period, as sd_watchdog_enabled(3) advises; the main
		// loop goes round once every watchInterval, so WatchdogSec must
		// be above twice that.
		n.every = d / 2
		if d <= 2*watchInterval {
			log.Warn("systemd's watchdog period is too short for the main loop; give WatchdogSec above twice the loop's period", "watchdog", d, "loop", watchInterval)
		}
	}
	return n
}

func (n *notifier) send(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Warn("telling systemd", "state", state, "err", err)
	}
}

// ready says the daemon serves.
func (n *notifier) ready() { n.send(sd.SdNotifyReady + "\nSTATUS=serving") }

// alive sends a keep-alive if one is due.
func (n *notifier) alive() {
	if n.every == 0 {
		return
	}
	now := time.Now().UnixNano()
	if now-n.last.Load() < int64(n.every) {
		return
	}
	n.last.Store(now)
	n.send(sd.SdNotifyWatchdog)
}

// stopping says the daemon is stopping.
func (n *notifier) stopping() { n.send(sd.SdNotifyStopping) }
