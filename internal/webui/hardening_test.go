package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingHandler counts the log lines written.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countingHandler) WithGroup(string) slog.Handler             { return h }

// TestLoginRateLimited replays the token guesser: about 1,900 tries a
// second, each answered and logged. Tries are now limited per source and
// in all, and their log lines sampled.
func TestLoginRateLimited(t *testing.T) {
	f := newFixture(t)
	lines := &countingHandler{}
	f.s.log = slog.New(lines)
	try := func(from, token string) int {
		r := httptest.NewRequest("POST", "http://127.0.0.1:8137/ui/login", strings.NewReader(`{"token":"`+token+`"}`))
		r.RemoteAddr = from
		w := httptest.NewRecorder()
		f.s.ServeHTTP(w, r)
		return w.Code
	}
	codes := map[int]int{}
	for range 1900 {
		codes[try("192.0.2.7:4000", "guess")]++
	}
	if codes[http.StatusUnauthorized] != int(LoginsPerSource.Burst) || codes[http.StatusTooManyRequests] != 1900-int(LoginsPerSource.Burst) {
		t.Fatalf("1,900 guesses from one source: %v; want %v answered, the rest 429", codes, LoginsPerSource.Burst)
	}
	if n := lines.n.Load(); n > 6 {
		t.Errorf("%d log lines for 1,900 guesses", n)
	}
	// Even the right token waits its turn from that source...
	if code := try("192.0.2.7:4000", testToken); code != http.StatusTooManyRequests {
		t.Errorf("the right token from a limited source: %d", code)
	}
	// ...but not from another one, and not later.
	if code := try("192.0.2.8:4000", testToken); code != http.StatusOK {
		t.Errorf("the right token from another source: %d", code)
	}
	f.now = f.now.Add(5 * time.Second)
	if code := try("192.0.2.7:4000", testToken); code != http.StatusOK {
		t.Errorf("the right token 5 s later: %d", code)
	}
	// Many sources together are held to the overall rate.
	codes = map[int]int{}
	for i := range 200 {
		codes[try(fmt.Sprintf("198.51.100.%d:4000", i), "guess")]++
	}
	if codes[http.StatusUnauthorized] > int(LoginsInAll.Burst) {
		t.Errorf("200 sources at once: %v; want at most %v answered", codes, LoginsInAll.Burst)
	}
}

// slowRequest opens a connection and sends a login request's headers but
// never its body. It reports whether the server held the connection open
// for a moment.
func slowRequest(t *testing.T, addr, local string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /ui/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && strings.Contains(err.Error(), "timeout") {
		return c, true
	}
	c.Close()
	return nil, false
}

// TestSlowBodiesBounded replays the slow login bodies that held 21,000
// connections and took the daemon to its descriptor limit: one source
// holds at most MaxConnsPerSource connections, each for at most the
// read timeout, and others are served meanwhile.
func TestSlowBodiesBounded(t *testing.T) {
	f := newFixture(t)
	srv := NewHTTPServer(f.s)
	if srv.ReadTimeout != ReadTimeout || srv.ReadHeaderTimeout != HeaderTimeout || srv.IdleTimeout != IdleTimeout {
		t.Fatalf("the UI's server has timeouts %v/%v/%v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
	srv.ReadTimeout = time.Second // the same server, quicker to test
	ln, err := Listen(ListenConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	goroutines := runtime.NumGoroutine()

	var held []net.Conn
	for range 200 {
		if c, ok := slowRequest(t, addr, "127.0.0.1"); ok {
			held = append(held, c)
		}
	}
	if len(held) != MaxConnsPerSource {
		t.Fatalf("one source holds %d slow connections, want %d", len(held), MaxConnsPerSource)
	}
	if g := runtime.NumGoroutine(); g > goroutines+3*MaxConnsPerSource {
		t.Errorf("goroutines %d -> %d", goroutines, g)
	}
	// Another source logs in meanwhile.
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}
	c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	resp, err := c.Post("http://"+addr+"/ui/login", "application/json", strings.NewReader(`{"token":"`+testToken+`"}`))
	if err != nil {
		t.Fatalf("a login from another source during the slow ones: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	// The slow ones are cut at the read timeout.
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadAll(c); err != nil && strings.Contains(err.Error(), "timeout") {
			t.Fatal("a slow request was held past the read timeout")
		}
		c.Close()
	}
}

// TestGuardByArrival checks the guard that decides by where a connection
// came from (the interface it arrived on, for the daemon): connections
// from the public side are closed whatever address they were made to,
// IPv6 included.
func TestGuardByArrival(t *testing.T) {
	var public atomic.Pointer[netip.Addr]
	ln, err := Listen(ListenConfig{Addr: "[::]:0", AllowRemote: true, FromPublic: func(remote netip.AddrPort) bool {
		p := public.Load()
		return p != nil && remote.Addr() == *p
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	get := func(from, to string) error {
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
		c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + net.JoinHostPort(to, fmt.Sprint(port)) + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get("127.0.0.3", "127.0.0.1"); err != nil {
		t.Fatalf("before: %v", err)
	}
	p := netip.MustParseAddr("127.0.0.3")
	public.Store(&p)
	if get("127.0.0.3", "127.0.0.1") == nil {
		t.Error("a connection from the public side was answered")
	}
	if err := get("127.0.0.4", "127.0.0.1"); err != nil {
		t.Errorf("another source: %v", err)
	}
	p6 := netip.MustParseAddr("::1")
	public.Store(&p6)
	if get("::1", "::1") == nil {
		t.Error("an IPv6 connection from the public side was answered")
	}
}

// FuzzLogin posts whatever body to the login: it must never panic or
// fail with a server error, must answer JSON, and must make a session
// only for the right token.
func FuzzLogin(f *testing.F) {
	for _, body := range []string{`{"token":"` + testToken + `"}`, `{"token":"wrong"}`, `{}`, `{"token":`, "not json", `{"token":"` + testToken + `","x":1}`, "{\"token\":\"\xff\"}"} {
		f.Add(body, "192.0.2.1:1000")
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body, remote string) {
		fx.now = fx.now.Add(time.Minute) // within the login rate
		r := httptest.NewRequest("POST", "http://127.0.0.1:8137/ui/login", strings.NewReader(body))
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		before := fx.sessions()
		fx.s.ServeHTTP(w, r)
		if w.Code >= 500 || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("login %q from %q: %d %s", body, remote, w.Code, w.Body)
		}
		made := fx.sessions() > before || len(w.Result().Cookies()) > 0
		if w.Code == http.StatusOK != made {
			t.Fatalf("login %q: %d, session made %v", body, w.Code, made)
		}
		if made {
			var req LoginRequest
			if json.Unmarshal([]byte(body), &req) != nil || strings.TrimSpace(req.Token) != testToken {
				t.Fatalf("a session for %q", body)
			}
		}
	})
}

func (f *fixture) sessions() int {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return len(f.s.sessions)
}
