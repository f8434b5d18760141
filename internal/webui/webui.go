// Package webui serves netshare's web UI: the pages (embedded in the
// binary, no build step), a login with the daemon's token, sessions, and
// the daemon's own API behind them, so that the UI, the CLI and the Go
// client always show the same state.
//
// Access: a client logs in by posting the token (the login link of
// 'netshare ui url' carries it in the URL fragment, which browsers never
// send to a server); it gets a session cookie (HttpOnly, SameSite=Strict)
// and a CSRF token it must send in the X-Netshare-CSRF header of every
// request that changes something. Cross-origin requests that change
// something are refused as well (net/http's CrossOriginProtection). A
// request without a valid session gets 401 E_ACCESSDENIED and changes
// nothing.
package webui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/api"
	"github.com/netshare/netshare/internal/ratelimit"
)

//go:embed assets
var assets embed.FS

// Names of the cookie and the header that carry the session and its CSRF
// token.
const (
	CookieName = "netshare_session"
	CSRFHeader = "X-Netshare-CSRF"
)

// Session limits.
const (
	// SessionLifetime is how long a session lasts after its last use.
	SessionLifetime = 12 * time.Hour
	// MaxSessions bounds the sessions kept; the least recently used one
	// goes first.
	MaxSessions = 64
)

// socketOnly are API paths that the web UI does not pass on: they are for
// the daemon's local socket (the login link holds the token).
var socketOnly = map[string]bool{"/v1/ui": true}

// State is what the events stream watches.
type State interface {
	// Generation grows with every change clients show, the connections'
	// live status included.
	Generation() uint64
}

// Config is what New needs. API, Token and State are required.
type Config struct {
	// API is the daemon's API handler, the one it serves on its socket.
	API http.Handler
	// Token is the secret a client logs in with.
	Token string
	State State
	Log   *slog.Logger
	// EventInterval is how often the events stream looks at the
	// generation; a quarter of a second if zero.
	EventInterval time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// LoopbackHosts refuses requests whose Host is not localhost or a
	// loopback address: for a UI on loopback, it keeps a web page whose
	// name was rebound to 127.0.0.1 (DNS rebinding) from reading it.
	LoopbackHosts bool
}

// Server is the web UI's http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	pages   fs.FS

	mu       sync.Mutex
	sessions map[string]*session // by the cookie's value

	// streams ends the event streams when the server stops (they never
	// go idle, so http.Server.Shutdown would wait for them).
	streams context.Context
	stop    context.CancelFunc

	// Login attempts are limited per source and in all; the log lines of
	// refused ones are sampled.
	loginsBySource *ratelimit.Table[netip.Addr]
	loginMu        sync.Mutex
	logins         ratelimit.Bucket
	loginLog       *ratelimit.Sampler
}

// Login rates: a person mistypes a few times; a guesser gets a try every
// few seconds.
var (
	LoginsPerSource = ratelimit.Limit{Rate: 0.2, Burst: 10}
	LoginsInAll     = ratelimit.Limit{Rate: 2, Burst: 30}
)

type session struct {
	csrf     string
	lastUsed time.Time
}

// New returns the web UI's handler.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EventInterval == 0 {
		cfg.EventInterval = 250 * time.Millisecond
	}
	pages, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	s := &Server{cfg: cfg, log: cfg.Log, pages: pages, sessions: map[string]*session{},
		loginsBySource: ratelimit.NewTable[netip.Addr](LoginsPerSource, 1024), loginLog: ratelimit.NewSampler(0.2, 5)}
	s.streams, s.stop = context.WithCancel(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /login", s.page)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.HandlerFunc(s.asset)))
	mux.HandleFunc("POST /ui/login", s.login)
	mux.Handle("POST /ui/logout", s.authed(http.HandlerFunc(s.logout)))
	mux.Handle("GET /ui/session", s.authed(http.HandlerFunc(s.session)))
	mux.Handle("GET /ui/events", s.authed(http.HandlerFunc(s.events)))
	mux.Handle("/v1/", s.authed(http.HandlerFunc(s.api)))
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusForbidden, hresult.New(hresult.AccessDenied, "cross-origin request refused: %s %s", r.Method, r.URL.Path))
	}))
	s.handler = cop.Handler(mux)
	return s
}

// Close ends the event streams; call it before shutting the http.Server
// down.
func (s *Server) Close() { s.stop() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	if !strings.HasPrefix(r.URL.Path, "/assets/") && r.URL.Path != "/" && r.URL.Path != "/login" {
		h.Set("Cache-Control", "no-store")
	}
	if s.cfg.LoopbackHosts && !loopbackHost(r.Host) {
		api.WriteError(w, http.StatusForbidden, hresult.New(hresult.AccessDenied, "Host %q: the web UI answers to localhost and loopback addresses only; start the daemon with --http-remote to reach it by other names", r.Host))
		return
	}
	s.handler.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine's
// loopback: localhost or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// page serves the single page; the script decides what to show.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.pages, "index.html")
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "" || r.URL.Path == "index.html" || strings.HasSuffix(r.URL.Path, "/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.pages, r.URL.Path)
}

// LoginRequest is the body of POST /ui/login.
type LoginRequest struct {
	Token string `json:"token"`
}

// SessionInfo answers a login and GET /ui/session.
type SessionInfo struct {
	// CSRF goes in the X-Netshare-CSRF header of every request that
	// changes something.
	CSRF string `json:"csrf"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	src := netip.Addr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		src = ap.Addr().Unmap()
	}
	s.loginMu.Lock()
	ok := s.loginsBySource.Allow(src, now) && s.logins.Allow(LoginsInAll, now)
	s.loginMu.Unlock()
	if !ok {
		if ok, n := s.loginLog.Allow(now); ok {
			s.log.Warn("web UI logins refused: too many tries", "remote", src, "suppressed", n)
		}
		w.Header().Set("Retry-After", "5")
		api.WriteError(w, http.StatusTooManyRequests, hresult.New(hresult.AccessDenied, "too many login attempts: wait a few seconds, then use the link that 'netshare ui url' prints"))
		return
	}
	var req LoginRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	if err := dec.Decode(&req); err != nil {
		api.WriteError(w, http.StatusBadRequest, hresult.Invalid("token", "the request body must be a JSON object {\"token\": \"...\"}"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(req.Token)), []byte(s.cfg.Token)) != 1 {
		if ok, n := s.loginLog.Allow(now); ok {
			s.log.Warn("web UI login refused: wrong token", "remote", r.RemoteAddr, "suppressed", n)
		}
		api.WriteError(w, http.StatusUnauthorized, &hresult.Error{Code: hresult.AccessDenied, Field: "token", Message: "token: wrong token; 'netshare ui url' prints a login link with the right one"})
		return
	}
	id, csrf := randomString(), randomString()
	s.mu.Lock()
	s.sessions[id] = &session{csrf: csrf, lastUsed: now}
	s.pruneLocked(now)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	s.log.Info("web UI login", "remote", r.RemoteAddr)
	api.WriteJSON(w, http.StatusOK, SessionInfo{CSRF: csrf})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, SessionInfo{CSRF: sessionOf(r).csrf})
}

// api passes a request on to the daemon's API.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	if socketOnly[r.URL.Path] {
		api.WriteError(w, http.StatusNotFound, &hresult.Error{Code: hresult.InvalidArg, Reason: hresult.NotFound, Message: r.URL.Path + " is served on the daemon's socket only"})
		return
	}
	s.cfg.API.ServeHTTP(w, r)
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	ss, _ := r.Context().Value(sessionKey{}).(*session)
	return ss
}

// authed lets a request through with a live session and, if it changes
// something, the session's CSRF token.
func (s *Server) authed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		if err != nil {
			api.WriteError(w, http.StatusUnauthorized, hresult.New(hresult.AccessDenied, "not logged in: open the login link that 'netshare ui url' prints"))
			return
		}
		now := s.cfg.Now()
		s.mu.Lock()
		ss := s.sessions[c.Value]
		if ss != nil && now.Sub(ss.lastUsed) > SessionLifetime {
			delete(s.sessions, c.Value)
			ss = nil
		}
		var csrf string
		if ss != nil {
			ss.lastUsed = now
			csrf = ss.csrf
		}
		s.mu.Unlock()
		if ss == nil {
			api.WriteError(w, http.StatusUnauthorized, hresult.New(hresult.AccessDenied, "the session has ended: log in again with the link that 'netshare ui url' prints"))
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(csrf)) != 1 {
				api.WriteError(w, http.StatusForbidden, hresult.New(hresult.AccessDenied, "the %s header is missing or wrong: reload the page", CSRFHeader))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, ss)))
	})
}

// pruneLocked drops ended sessions and, above MaxSessions, the least
// recently used ones.
func (s *Server) pruneLocked(now time.Time) {
	for id, ss := range s.sessions {
		if now.Sub(ss.lastUsed) > SessionLifetime {
			delete(s.sessions, id)
		}
	}
	for len(s.sessions) > MaxSessions {
		var oldest string
		for id, ss := range s.sessions {
			if oldest == "" || ss.lastUsed.Before(s.sessions[oldest].lastUsed) {
				oldest = id
			}
		}
		delete(s.sessions, oldest)
	}
}

// randomString returns 256 random bits, URL-safe.
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
