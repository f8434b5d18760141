package webui

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"time"
)

// heartbeat is how often an idle event stream sends a comment, so that
// proxies and the browser keep it open.
const heartbeat = 15 * time.Second

// events streams server-sent events: a "change" event whenever the state
// a client shows may have changed (the model's generation, or the
// connections' live status). The page then reads what it shows again.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Tell the browser to come back within a few seconds if the stream
	// breaks (a daemon restart).
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()

	t := time.NewTicker(s.cfg.EventInterval)
	defer t.Stop()
	var gen uint64
	var conns uint64
	lastSent := time.Now()
	first := true
	for {
		g := s.cfg.State.Generation()
		c := s.connectionsHash(r)
		if first || g != gen || c != conns {
			gen, conns = g, c
			data, _ := json.Marshal(map[string]uint64{"generation": g})
			if _, err := fmt.Fprintf(w, "event: change\ndata: %s\n\n", data); err != nil {
				return
			}
			fl.Flush()
			lastSent, first = time.Now(), false
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

// connectionsHash sums up the connections as listed now (status, names,
// roles); 0 if they cannot be listed.
func (s *Server) connectionsHash(r *http.Request) uint64 {
	cs, err := s.cfg.State.EnumEveryConnection(r.Context())
	if err != nil {
		return 0
	}
	b, _ := json.Marshal(cs)
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}
