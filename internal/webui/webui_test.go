package webui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef-token"

// fakeState is a State whose generation the test sets.
type fakeState struct{ gen atomic.Uint64 }

func (f *fakeState) Generation() uint64 { return f.gen.Load() }

// fakeAPI records the requests that reach the API.
type fakeAPI struct {
	mu    sync.Mutex
	calls []string
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls = append(a.calls, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

func (a *fakeAPI) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

type fixture struct {
	s     *Server
	api   *fakeAPI
	state *fakeState
	now   time.Time
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{api: &fakeAPI{}, state: &fakeState{}, now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	f.s = New(Config{API: f.api, Token: testToken, State: f.state, EventInterval: 10 * time.Millisecond, Now: func() time.Time { return f.now }})
	t.Cleanup(f.s.Close)
	return f
}

// do sends a request; headers are name, value pairs.
func (f *fixture) do(method, path, body string, cookie *http.Cookie, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://127.0.0.1:8137"+path, strings.NewReader(body))
	if cookie != nil {
		r.AddCookie(cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	f.s.ServeHTTP(w, r)
	return w
}

// login logs in and returns the session cookie and the CSRF token.
func (f *fixture) login(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	w := f.do("POST", "/ui/login", `{"token":"`+testToken+`"}`, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var info SessionInfo
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil || info.CSRF == "" {
		t.Fatalf("login answer %s: %v", w.Body, err)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cookies))
	}
	return cookies[0], info.CSRF
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Code string }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	return e.Code
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	for _, body := range []string{`{"token":"wrong"}`, `{"token":""}`, `{}`, `not json`, `{"token":"` + testToken + `x"}`} {
		w := f.do("POST", "/ui/login", body, nil)
		if w.Code == http.StatusOK || len(w.Result().Cookies()) != 0 {
			t.Errorf("login with %s: %d, cookies %v; want refused without a cookie", body, w.Code, w.Result().Cookies())
		}
	}
	if n := len(f.s.sessions); n != 0 {
		t.Errorf("refused logins made %d sessions", n)
	}
	c, _ := f.login(t)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Name != CookieName {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
	}
	if w := f.do("GET", "/ui/session", "", c); w.Code != http.StatusOK {
		t.Errorf("GET /ui/session with the cookie: %d", w.Code)
	}
}

func TestAccessNeedsASessionAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	stranger := &http.Cookie{Name: CookieName, Value: "made-up"}
	for _, c := range []*http.Cookie{nil, stranger} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/v1/connections"},
			{"POST", "/v1/connections/wan0/mappings"},
			{"DELETE", "/v1/connections/wan0/mappings/1"},
			{"GET", "/ui/events"},
			{"GET", "/ui/session"},
		} {
			w := f.do(req.method, req.path, `{}`, c)
			if w.Code != http.StatusUnauthorized || errorCode(t, w) != "E_ACCESSDENIED" {
				t.Errorf("%s %s with cookie %v: %d %s; want 401 E_ACCESSDENIED", req.method, req.path, c, w.Code, w.Body)
			}
		}
	}
	if calls := f.api.Calls(); len(calls) != 0 {
		t.Errorf("requests without a session reached the API: %v", calls)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	c, csrf := f.login(t)
	cases := []struct {
		name    string
		headers []string
		want    int
	}{
		{"no CSRF header", nil, http.StatusForbidden},
		{"wrong CSRF header", []string{CSRFHeader, "nope"}, http.StatusForbidden},
		{"cross-site, right header", []string{CSRFHeader, csrf, "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"other origin, right header", []string{CSRFHeader, csrf, "Origin", "http://evil.example"}, http.StatusForbidden},
		{"same origin, right header", []string{CSRFHeader, csrf, "Sec-Fetch-Site", "same-origin"}, http.StatusOK},
	}
	for _, tc := range cases {
		before := len(f.api.Calls())
		w := f.do("POST", "/v1/connections/wan0/connect", "", c, tc.headers...)
		if w.Code != tc.want {
			t.Errorf("%s: %d %s; want %d", tc.name, w.Code, w.Body, tc.want)
		}
		reached := len(f.api.Calls()) > before
		if reached != (tc.want == http.StatusOK) {
			t.Errorf("%s: reached the API = %v", tc.name, reached)
		}
	}
	// Reading needs no CSRF header.
	if w := f.do("GET", "/v1/connections", "", c); w.Code != http.StatusOK {
		t.Errorf("GET without CSRF header: %d", w.Code)
	}
	// A cross-site login is refused too.
	if w := f.do("POST", "/ui/login", `{"token":"`+testToken+`"}`, nil, "Sec-Fetch-Site", "cross-site"); w.Code != http.StatusForbidden {
		t.Errorf("cross-site login: %d; want 403", w.Code)
	}
}

func TestSocketOnlyPaths(t *testing.T) {
	f := newFixture(t)
	c, _ := f.login(t)
	if w := f.do("GET", "/v1/ui", "", c); w.Code != http.StatusNotFound {
		t.Errorf("GET /v1/ui over HTTP: %d; want 404 (it holds the token)", w.Code)
	}
	if calls := f.api.Calls(); len(calls) != 0 {
		t.Errorf("GET /v1/ui reached the API: %v", calls)
	}
}

func TestSessionsEndAndAreBounded(t *testing.T) {
	f := newFixture(t)
	c, _ := f.login(t)
	f.now = f.now.Add(SessionLifetime - time.Minute)
	if w := f.do("GET", "/v1/connections", "", c); w.Code != http.StatusOK {
		t.Fatalf("a session used within its lifetime: %d", w.Code)
	}
	f.now = f.now.Add(SessionLifetime + time.Second)
	if w := f.do("GET", "/v1/connections", "", c); w.Code != http.StatusUnauthorized {
		t.Errorf("an idle session after its lifetime: %d; want 401", w.Code)
	}

	c, csrf := f.login(t)
	if w := f.do("POST", "/ui/logout", "", c, CSRFHeader, csrf); w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if w := f.do("GET", "/v1/connections", "", c); w.Code != http.StatusUnauthorized {
		t.Errorf("after logout: %d; want 401", w.Code)
	}

	first, _ := f.login(t)
	for range MaxSessions {
		f.now = f.now.Add(10 * time.Second) // within the login rate
		f.login(t)
	}
	if n := len(f.s.sessions); n != MaxSessions {
		t.Errorf("%d sessions kept; want at most %d", n, MaxSessions)
	}
	if w := f.do("GET", "/v1/connections", "", first); w.Code != http.StatusUnauthorized {
		t.Errorf("the least recently used session past the limit: %d; want 401", w.Code)
	}
}

func TestPagesAndHeaders(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/", "/login", "/assets/app.js", "/assets/style.css"} {
		w := f.do("GET", path, "", nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, w.Code)
		}
		h := w.Result().Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers %v", path, h)
		}
	}
	for _, path := range []string{"/assets/", "/assets/nope.js", "/assets/../webui.go", "/nope"} {
		if w := f.do("GET", path, "", nil); w.Code == http.StatusOK {
			t.Errorf("GET %s: 200; want an error", path)
		}
	}
	// The page runs no inline script (the CSP forbids it).
	page := f.do("GET", "/", "", nil).Body.String()
	if strings.Contains(page, "<script>") || strings.Contains(page, " onclick=") {
		t.Errorf("index.html has inline script")
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t)
	c, _ := f.login(t)
	srv := httptest.NewServer(f.s)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/ui/events", nil)
	req.AddCookie(c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the stream ended waiting for %s", what)
				}
				if l == "event: change" {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no change event for %s", what)
			}
		}
	}
	next("the start")
	f.state.gen.Add(1)
	next("a new generation")
	f.state.gen.Add(2)
	next("another generation")
	// Nothing changes: no event within a few intervals.
	select {
	case l := <-lines:
		if l == "event: change" {
			t.Errorf("a change event without a change")
		}
	case <-time.After(100 * time.Millisecond):
	}
	// Close ends the stream (http.Server.Shutdown would wait for it).
	f.s.Close()
	for range lines {
	}
}

func TestToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tok, err := LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o; want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateToken(dir)
	if err != nil || again != tok {
		t.Errorf("second load = %q, %v; want the same token", again, err)
	}
	os.Chmod(filepath.Join(dir, TokenFile), 0o644)
	if _, err := LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "others may read it") {
		t.Errorf("a token readable by others: %v; want refused", err)
	}
	os.WriteFile(filepath.Join(dir, TokenFile), []byte("\n"), 0o600)
	os.Chmod(filepath.Join(dir, TokenFile), 0o600)
	if _, err := LoadOrCreateToken(dir); err == nil {
		t.Errorf("an empty token was accepted")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, TokenFile)); string(b) != "\n" {
		t.Errorf("a refused token file was changed: %q", b)
	}
}

func TestListenRules(t *testing.T) {
	public := func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.2")} }
	cases := []struct {
		cfg  ListenConfig
		want string // part of the error; "" for success
	}{
		{ListenConfig{Addr: "127.0.0.1:0"}, ""},
		{ListenConfig{Addr: "localhost:0"}, ""},
		{ListenConfig{Addr: "[::1]:0"}, ""},
		{ListenConfig{Addr: ":0"}, "every address"},
		{ListenConfig{Addr: "0.0.0.0:0"}, "every address"},
		{ListenConfig{Addr: "192.0.2.1:0"}, "not a loopback address"},
		{ListenConfig{Addr: "example.com:80"}, "IP address or localhost"},
		{ListenConfig{Addr: "8137"}, "host:port"},
		{ListenConfig{Addr: "127.0.0.2:0", PublicAddrs: public, AllowRemote: true}, "public connection"},
		{ListenConfig{Addr: "127.0.0.2:0", PublicAddrs: public, AllowPublic: true}, ""},
		{ListenConfig{Addr: "0.0.0.0:0", AllowRemote: true, PublicAddrs: public}, ""},
	}
	for _, tc := range cases {
		ln, err := Listen(tc.cfg)
		if ln != nil {
			ln.Close()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Listen(%+v): %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Listen(%+v) = %v; want an error with %q", tc.cfg, err, tc.want)
		}
	}
}

// TestGuardDropsPublicConnections checks that a listener on every address
// does not answer on the public connection's addresses, which change
// while it runs.
func TestGuardDropsPublicConnections(t *testing.T) {
	var mu sync.Mutex
	var publicAddrs []netip.Addr
	ln, err := Listen(ListenConfig{Addr: "0.0.0.0:0", AllowRemote: true, PublicAddrs: func() []netip.Addr {
		mu.Lock()
		defer mu.Unlock()
		return publicAddrs
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	get := func(host string) error {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get("127.0.0.2"); err != nil {
		t.Fatalf("before 127.0.0.2 is public: %v", err)
	}
	mu.Lock()
	publicAddrs = []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	mu.Unlock()
	if err := get("127.0.0.2"); err == nil {
		t.Errorf("the UI answered on a public address")
	}
	if err := get("127.0.0.1"); err != nil {
		t.Errorf("loopback, not public: %v", err)
	}
}

func TestLoginURL(t *testing.T) {
	cases := []struct {
		addr        string
		base, login string
	}{
		{"127.0.0.1:8137", "http://127.0.0.1:8137/", "http://127.0.0.1:8137/login#token=tok"},
		{"0.0.0.0:8137", "http://127.0.0.1:8137/", "http://127.0.0.1:8137/login#token=tok"},
		{"[::]:8137", "http://[::1]:8137/", "http://[::1]:8137/login#token=tok"},
		{"[::1]:80", "http://[::1]:80/", "http://[::1]:80/login#token=tok"},
	}
	for _, tc := range cases {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		base, login := LoginURL(a, "tok")
		if base != tc.base || login != tc.login {
			t.Errorf("LoginURL(%s) = %s, %s; want %s, %s", tc.addr, base, login, tc.base, tc.login)
		}
	}
}

func TestLoopbackHosts(t *testing.T) {
	s := New(Config{API: &fakeAPI{}, Token: testToken, State: &fakeState{}, LoopbackHosts: true})
	defer s.Close()
	for host, want := range map[string]int{
		"127.0.0.1:8137":      http.StatusOK,
		"localhost:8137":      http.StatusOK,
		"LOCALHOST":           http.StatusOK,
		"[::1]:8137":          http.StatusOK,
		"127.1.2.3":           http.StatusOK,
		"evil.example:8137":   http.StatusForbidden,
		"192.168.137.1:8137":  http.StatusForbidden,
		"localhost.evil.test": http.StatusForbidden,
		"":                    http.StatusForbidden,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d; want %d", host, w.Code, want)
		}
	}
}
