package webui

import (
	"fmt"
	"net/http"
	"time"
)

// heartbeat is how often an idle event stream sends a comment, so that
// proxies and the browser keep it open.
const heartbeat = 15 * time.Second

// events streams server-sent events: a "change" event at the start and
// whenever the model's generation moves (a change of the state, the leases
// or the links). The page then reads what it shows again.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported", http.StatusInternalServerError)
		return
	}
	// The stream outlives the server's ReadTimeout: the request has been
	// read, so lift the deadline, or the connection would be cut.
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Tell the browser to come back within a few seconds if the stream
	// breaks (a daemon restart).
	fmt.Fprint(w, "retry: 2000\n\n")

	t := time.NewTicker(s.cfg.EventInterval)
	defer t.Stop()
	var gen uint64
	var lastSent time.Time
	for first := true; ; first = false {
		if g := s.cfg.State.Generation(); first || g != gen {
			gen = g
			if _, err := fmt.Fprintf(w, "event: change\ndata: {\"generation\":%d}\n\n", g); err != nil {
				return
			}
			fl.Flush()
			lastSent = time.Now()
		} else if time.Since(lastSent) >= heartbeat {
			if _, err := fmt.Fprint(w, ": still here\n\n"); err != nil {
				return
			}
			fl.Flush()
			lastSent = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.streams.Done():
			return
		case <-t.C:
		}
	}
}
