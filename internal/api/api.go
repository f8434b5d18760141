// Package api serves the sharing model as HTTP+JSON on the daemon's unix
// socket. Every route is in one table (routes), which the OpenAPI document
// openapi.json describes; a test keeps the two equal.
//
// Handlers return a value or an error and never write the response
// themselves, so that status codes and the error shape
// {"code": "E_INVALIDARG", "message": "..."} are decided in one place.
package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/sharing"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI document of the API.
func OpenAPI() []byte { return openAPI }

// maxBody bounds a request body.
const maxBody = 1 << 20

// Limits of the API's server: the socket holds at most MaxConns
// connections (the rest wait in the kernel's backlog); a request's headers
// must arrive within HeaderTimeout and the whole request within
// ReadTimeout, so that a slow client cannot hold a connection; an idle
// connection is closed after IdleTimeout.
const (
	MaxConns      = 256
	HeaderTimeout = 10 * time.Second
	ReadTimeout   = 30 * time.Second
	IdleTimeout   = 2 * time.Minute
)

// NewHTTPServer returns the HTTP server for the API's handler, with its
// timeouts.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: HeaderTimeout, ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout}
}

// route is one entry of the route table.
type route struct {
	method  string
	path    string // a net/http pattern path, with {conn} and {id} wildcards
	status  int    // the status of a successful answer; 200 if zero
	handler func(s *Server, r *http.Request) (any, error)
}

// routes is the API. Keep openapi.json in step with it.
var routes = []route{
	{"GET", "/v1/openapi.json", 0, (*Server).openAPI},
	{"GET", "/v1/sharing", 0, (*Server).sharing},
	{"GET", "/v1/connections", 0, (*Server).listConnections},
	{"GET", "/v1/connections/{conn}", 0, (*Server).getConnection},
	{"DELETE", "/v1/connections/{conn}", 0, (*Server).deleteConnection},
	{"POST", "/v1/connections/{conn}/connect", 0, (*Server).connect},
	{"POST", "/v1/connections/{conn}/disconnect", 0, (*Server).disconnect},
	{"POST", "/v1/connections/{conn}/rename", 0, (*Server).rename},
	{"POST", "/v1/connections/{conn}/duplicate", 0, (*Server).duplicate},
	{"POST", "/v1/connections/{conn}/sharing/enable", 0, (*Server).enableSharing},
	{"POST", "/v1/connections/{conn}/sharing/disable", 0, (*Server).disableSharing},
	{"POST", "/v1/connections/{conn}/firewall/enable", 0, (*Server).enableFirewall},
	{"POST", "/v1/connections/{conn}/firewall/disable", 0, (*Server).disableFirewall},
	{"POST", "/v1/connections/{conn}/nat-traversal/enable", 0, (*Server).enableNATTraversal},
	{"POST", "/v1/connections/{conn}/nat-traversal/disable", 0, (*Server).disableNATTraversal},
	{"GET", "/v1/connections/{conn}/mappings", 0, (*Server).listMappings},
	{"POST", "/v1/connections/{conn}/mappings", http.StatusCreated, (*Server).addMapping},
	{"GET", "/v1/connections/{conn}/mappings/{id}", 0, (*Server).getMapping},
	{"PATCH", "/v1/connections/{conn}/mappings/{id}", 0, (*Server).editMapping},
	{"DELETE", "/v1/connections/{conn}/mappings/{id}", http.StatusNoContent, (*Server).removeMapping},
	{"POST", "/v1/connections/{conn}/mappings/{id}/enable", 0, (*Server).enableMapping},
	{"POST", "/v1/connections/{conn}/mappings/{id}/disable", 0, (*Server).disableMapping},
	{"GET", "/v1/connections/{conn}/dhcp", 0, (*Server).getDHCP},
	{"PATCH", "/v1/connections/{conn}/dhcp", 0, (*Server).setDHCP},
	{"POST", "/v1/connections/{conn}/dhcp/reservations", 0, (*Server).reserve},
	{"DELETE", "/v1/connections/{conn}/dhcp/reservations/{mac}", 0, (*Server).unreserve},
	{"GET", "/v1/leases", 0, (*Server).leases},
	{"GET", "/v1/nat-traversal/policy", 0, (*Server).getPortMapPolicy},
	{"PUT", "/v1/nat-traversal/policy", 0, (*Server).setPortMapPolicy},
	{"GET", "/v1/dns", 0, (*Server).getDNS},
	{"PATCH", "/v1/dns", 0, (*Server).setDNS},
	{"POST", "/v1/dns/hosts", 0, (*Server).addHost},
	{"DELETE", "/v1/dns/hosts/{name}", 0, (*Server).removeHost},
	{"GET", "/v1/ui", 0, (*Server).webUI},
	{"GET", "/v1/config", 0, (*Server).getConfig},
	{"PUT", "/v1/config", 0, (*Server).putConfig},
}

// Server is the API's http.Handler.
type Server struct {
	m   *sharing.Manager
	log *slog.Logger
	mux *http.ServeMux
	ui  hnetcfg.WebUIInfo
}

// SetWebUI records where the web UI answers, for GET /v1/ui. Call it
// before serving.
func (s *Server) SetWebUI(info hnetcfg.WebUIInfo) { s.ui = info }

func (s *Server) webUI(r *http.Request) (any, error) { return s.ui, nil }

// New returns a Server for m; log may be nil.
func New(m *sharing.Manager, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{m: m, log: log, mux: http.NewServeMux()}
	for _, rt := range routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	return s
}

// ServeHTTP implements http.Handler. A request no route matches gets a
// JSON error too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		r2 := r.Clone(r.Context())
		r2.Method = method
		if _, pattern := s.mux.Handler(r2); pattern != "" {
			WriteError(w, http.StatusMethodNotAllowed, hresult.New(hresult.NotImpl, "%s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
	}
	WriteError(w, http.StatusNotFound, &hresult.Error{Code: hresult.InvalidArg, Reason: hresult.NotFound, Message: "no such API path: " + r.URL.Path})
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := rt.handler(s, r)
		if err != nil {
			e := hresult.From(err)
			status := StatusOf(e)
			lvl := slog.LevelDebug
			if status >= 500 && e.Code != hresult.NotImpl {
				lvl = slog.LevelWarn
			}
			s.log.Log(r.Context(), lvl, "request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", e.Message)
			WriteError(w, status, e)
			return
		}
		status := rt.status
		if status == 0 {
			status = http.StatusOK
		}
		if t, ok := v.(tagged); ok {
			w.Header().Set("ETag", strconv.Quote(t.etag))
			v = t.v
		}
		if l, ok := v.(linked); ok {
			w.Header().Set("Link", "<"+l.next+`>; rel="next"`)
			v = l.v
		}
		if raw, ok := v.([]byte); ok {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
			w.WriteHeader(status)
			w.Write(raw)
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		WriteJSON(w, status, v)
	})
}

// StatusOf returns the HTTP status that carries e.
func StatusOf(e *hresult.Error) int {
	switch {
	case e.Reason == hresult.NotFound:
		return http.StatusNotFound
	case e.Reason == hresult.Conflict:
		return http.StatusConflict
	case e.Reason == hresult.Stale:
		return http.StatusPreconditionFailed
	}
	switch e.Code {
	case hresult.InvalidArg, hresult.Pointer:
		return http.StatusBadRequest
	case hresult.NotImpl:
		return http.StatusNotImplemented
	case hresult.Abort:
		return http.StatusConflict
	case hresult.AccessDenied:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// WriteJSON writes v as the JSON answer, with status. The answer is
// compact: indenting cost more than half of the time of a list of 100
// mappings (pipe it to jq to read it).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WriteError writes e as the JSON error answer, with status.
func WriteError(w http.ResponseWriter, status int, e *hresult.Error) {
	WriteJSON(w, status, e)
}

// decodeOptional is decode for a body that may be empty.
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decode(r, v)
}

// invalidUTF8 returns the offset of the first byte of b that is not part
// of valid UTF-8.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// fieldAt returns the name of the top-level field whose value holds byte
// off of a JSON object, or "".
func fieldAt(body []byte, off int) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	depth, key, expectKey := 0, "", false
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if int(dec.InputOffset()) > off {
			return key
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				depth++
				expectKey = t == '{' && depth == 1
			} else {
				depth--
				expectKey = depth == 1
			}
		case string:
			if depth == 1 && expectKey {
				key, expectKey = t, false
				continue
			}
			if depth == 1 {
				expectKey = true
			}
		default:
			if depth == 1 {
				expectKey = true
			}
		}
	}
}

// decode reads a JSON request body into v, refusing unknown fields, a
// body over maxBody, one that does not come within ReadTimeout and one
// that is not UTF-8 (encoding/json would put U+FFFD in place of the bytes
// without a word), each with its own message.
func decode(r *http.Request, v any) error { return decodeUpTo(r, v, maxBody) }

// decodeUpTo is decode with a limit of its own.
func decodeUpTo(r *http.Request, v any, limit int) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	var ne net.Error
	switch {
	case len(body) > limit:
		return hresult.New(hresult.InvalidArg, "request body: larger than the limit of %d MiB", limit>>20)
	case errors.As(err, &ne) && ne.Timeout():
		return hresult.New(hresult.InvalidArg, "request body: not received within %v", ReadTimeout)
	case err != nil:
		return hresult.New(hresult.InvalidArg, "request body: %w (%d bytes received)", err, len(body))
	case !utf8.Valid(body):
		off := invalidUTF8(body)
		if field := fieldAt(body, off); field != "" {
			return hresult.Invalid(field, "is not valid UTF-8 (byte %d of the request body)", off)
		}
		return hresult.New(hresult.InvalidArg, "request body: not valid UTF-8 at byte %d", off)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return hresult.New(hresult.InvalidArg, "request body: a JSON object is required")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return hresult.New(hresult.InvalidArg, "request body: the JSON object ends early (%d bytes received)", len(body))
		}
		return hresult.New(hresult.InvalidArg, "request body: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return hresult.New(hresult.InvalidArg, "request body: one JSON object is allowed")
	}
	return nil
}

func (s *Server) openAPI(r *http.Request) (any, error) { return openAPI, nil }

// tagged is an answer with an ETag.
type tagged struct {
	etag string
	v    any
}

// linked is an answer with a next page, named in its Link header.
type linked struct {
	next string
	v    any
}

// maxConfig bounds a configuration document: 50,000 mappings take about
// 8 MiB.
const maxConfig = 64 << 20

func (s *Server) getConfig(r *http.Request) (any, error) {
	doc, err := s.m.Config(r.Context())
	if err != nil {
		return nil, err
	}
	return tagged{doc.Revision, configDoc(doc)}, nil
}

// putConfig applies a whole document. The revision it is based on is the
// If-Match header's, or else the document's own; "*" (or neither) applies
// it whatever the revision. ?dryRun=true only lists the changes.
func (s *Server) putConfig(r *http.Request) (any, error) {
	var wire hnetcfg.Config
	if err := decodeUpTo(r, &wire, maxConfig); err != nil {
		return nil, err
	}
	dry, err := boolQuery(r, "dryRun")
	if err != nil {
		return nil, err
	}
	doc, err := configFrom(wire)
	if err != nil {
		return nil, err
	}
	rev := doc.Revision
	if m := r.Header.Get("If-Match"); m != "" {
		rev = strings.Trim(strings.TrimPrefix(m, "W/"), `"`)
	}
	if rev == "*" {
		rev = ""
	}
	res, err := s.m.ApplyConfig(r.Context(), doc, rev, dry)
	if err != nil {
		return nil, err
	}
	return tagged{res.Config.Revision, configResult(res)}, nil
}

// boolQuery reads a query parameter that is true, false or absent.
func boolQuery(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, hresult.Invalid(name, "%q is not allowed; use true or false", v)
	}
}

// conn answers with the connection that do returns.
func conn(c sharing.Connection, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return connectionProps(c), nil
}

// mapping answers with the mapping that do returns. A change that is
// stored but not yet in the kernel is answered with its error (E_FAIL);
// the mapping shows it as applyError until the kernel holds it.
func mapping(m sharing.Mapping, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return append(appendMapping(make([]byte, 0, 256), &m), '\n'), nil
}

func dhcp(d sharing.DHCPSettings, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return dhcpSettings(d), nil
}

func dns(d sharing.DNSSettings, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return dnsSettings(d), nil
}

func (s *Server) sharing(r *http.Request) (any, error) {
	o, err := s.m.Sharing(r.Context())
	if err != nil {
		return nil, err
	}
	return overview(o), nil
}

func (s *Server) listConnections(r *http.Request) (any, error) {
	cs, err := s.m.EnumEveryConnection(r.Context())
	if err != nil {
		return nil, err
	}
	return connectionList(cs), nil
}

func (s *Server) getConnection(r *http.Request) (any, error) {
	return conn(s.m.NetConnectionProps(r.Context(), r.PathValue("conn")))
}

func (s *Server) deleteConnection(r *http.Request) (any, error) {
	return nil, s.m.Delete(r.Context(), r.PathValue("conn"))
}

func (s *Server) connect(r *http.Request) (any, error) {
	return conn(s.m.Connect(r.Context(), r.PathValue("conn")))
}

func (s *Server) disconnect(r *http.Request) (any, error) {
	return conn(s.m.Disconnect(r.Context(), r.PathValue("conn")))
}

func (s *Server) rename(r *http.Request) (any, error) {
	var req hnetcfg.NameRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return conn(s.m.Rename(r.Context(), r.PathValue("conn"), req.Name))
}

func (s *Server) duplicate(r *http.Request) (any, error) {
	var req hnetcfg.NameRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return nil, s.m.Duplicate(r.Context(), r.PathValue("conn"), req.Name)
}

func (s *Server) enableSharing(r *http.Request) (any, error) {
	var req hnetcfg.SharingRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	role, err := sharingRole("type", req.Type)
	if err != nil {
		return nil, err
	}
	addr, err := privateAddress(req.Address)
	if err != nil {
		return nil, err
	}
	return conn(s.m.EnableSharing(r.Context(), r.PathValue("conn"), role, addr))
}

func (s *Server) disableSharing(r *http.Request) (any, error) {
	return conn(s.m.DisableSharing(r.Context(), r.PathValue("conn")))
}

func (s *Server) enableFirewall(r *http.Request) (any, error) {
	var req hnetcfg.FirewallRequest
	if err := decodeOptional(r, &req); err != nil {
		return nil, err
	}
	return conn(s.m.EnableInternetFirewall(r.Context(), r.PathValue("conn"), req.AllowPing))
}

func (s *Server) disableFirewall(r *http.Request) (any, error) {
	return conn(s.m.DisableInternetFirewall(r.Context(), r.PathValue("conn")))
}

func (s *Server) enableNATTraversal(r *http.Request) (any, error) {
	return conn(s.m.SetNATTraversal(r.Context(), r.PathValue("conn"), true))
}

func (s *Server) disableNATTraversal(r *http.Request) (any, error) {
	return conn(s.m.SetNATTraversal(r.Context(), r.PathValue("conn"), false))
}

func (s *Server) getPortMapPolicy(r *http.Request) (any, error) {
	return policyWire(s.m.PortMapPolicy(r.Context())), nil
}

func (s *Server) setPortMapPolicy(r *http.Request) (any, error) {
	var w hnetcfg.PortMapPolicy
	if err := decode(r, &w); err != nil {
		return nil, err
	}
	p, err := policyFrom(w)
	if err != nil {
		return nil, err
	}
	p, err = s.m.SetPortMapPolicy(r.Context(), p)
	if err != nil {
		return nil, err
	}
	return policyWire(p), nil
}

// listMappings answers with a connection's mappings, those the query
// selects (enabled, origin, client), a page at a time when it has a limit
// (after: the last id of the page before). When more follow, the answer's
// Link header names the next page (rel="next", RFC 8288).
func (s *Server) listMappings(r *http.Request) (any, error) {
	q := r.URL.Query()
	f, err := mappingFilter(q)
	if err != nil {
		return nil, err
	}
	ms, more, err := s.m.EnumPortMappings(r.Context(), r.PathValue("conn"), f)
	if err != nil {
		return nil, err
	}
	body := appendMappings(make([]byte, 0, 256*len(ms)+4), ms)
	if !more {
		return body, nil
	}
	q.Set("after", ms[len(ms)-1].ID.String())
	next := (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()
	return linked{next: next, v: body}, nil
}

func (s *Server) addMapping(r *http.Request) (any, error) {
	var w hnetcfg.PortMappingSpec
	if err := decode(r, &w); err != nil {
		return nil, err
	}
	spec, err := mappingSpec(w.Name, w.Protocol, w.ExternalPort, w.InternalPort, w.Options, w.TargetName, w.TargetIPAddress)
	if err != nil {
		return nil, err
	}
	return mapping(s.m.AddPortMapping(r.Context(), r.PathValue("conn"), spec))
}

// withMapping runs do with the mapping id of the request's path.
func withMapping(r *http.Request, do func(sharing.MappingID) (sharing.Mapping, error)) (any, error) {
	id, err := mappingID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return mapping(do(id))
}

func (s *Server) getMapping(r *http.Request) (any, error) {
	return withMapping(r, func(id sharing.MappingID) (sharing.Mapping, error) {
		return s.m.PortMapping(r.Context(), r.PathValue("conn"), id)
	})
}

func (s *Server) editMapping(r *http.Request) (any, error) {
	var w hnetcfg.PortMappingEdit
	if err := decode(r, &w); err != nil {
		return nil, err
	}
	e, err := mappingEdit(w)
	if err != nil {
		return nil, err
	}
	return withMapping(r, func(id sharing.MappingID) (sharing.Mapping, error) {
		return s.m.EditPortMapping(r.Context(), r.PathValue("conn"), id, e)
	})
}

func (s *Server) removeMapping(r *http.Request) (any, error) {
	return withMapping(r, func(id sharing.MappingID) (sharing.Mapping, error) {
		return sharing.Mapping{}, s.m.RemovePortMapping(r.Context(), r.PathValue("conn"), id)
	})
}

func (s *Server) enableMapping(r *http.Request) (any, error) {
	return withMapping(r, func(id sharing.MappingID) (sharing.Mapping, error) {
		return s.m.EnablePortMapping(r.Context(), r.PathValue("conn"), id)
	})
}

func (s *Server) disableMapping(r *http.Request) (any, error) {
	return withMapping(r, func(id sharing.MappingID) (sharing.Mapping, error) {
		return s.m.DisablePortMapping(r.Context(), r.PathValue("conn"), id)
	})
}

func (s *Server) getDHCP(r *http.Request) (any, error) {
	return dhcp(s.m.DHCPSettings(r.Context(), r.PathValue("conn")))
}

func (s *Server) setDHCP(r *http.Request) (any, error) {
	var w hnetcfg.DHCPEdit
	if err := decode(r, &w); err != nil {
		return nil, err
	}
	e, err := dhcpEdit(w)
	if err != nil {
		return nil, err
	}
	return dhcp(s.m.SetDHCP(r.Context(), r.PathValue("conn"), e))
}

func (s *Server) reserve(r *http.Request) (any, error) {
	var w hnetcfg.Reservation
	if err := decode(r, &w); err != nil {
		return nil, err
	}
	res, err := reservation(w)
	if err != nil {
		return nil, err
	}
	return dhcp(s.m.Reserve(r.Context(), r.PathValue("conn"), res))
}

func (s *Server) unreserve(r *http.Request) (any, error) {
	return dhcp(s.m.Unreserve(r.Context(), r.PathValue("conn"), r.PathValue("mac")))
}

func (s *Server) leases(r *http.Request) (any, error) {
	ls, err := s.m.LeaseList(r.Context())
	if err != nil {
		return nil, err
	}
	return leaseList(ls), nil
}

func (s *Server) getDNS(r *http.Request) (any, error) { return dns(s.m.DNSSettings(r.Context())) }

func (s *Server) setDNS(r *http.Request) (any, error) {
	var w hnetcfg.DNSEdit
	if err := decode(r, &w); err != nil {
		return nil, err
	}
	ups, err := upstreams(w.Upstreams)
	if err != nil {
		return nil, err
	}
	return dns(s.m.SetDNS(r.Context(), ups))
}

func (s *Server) addHost(r *http.Request) (any, error) {
	var w hnetcfg.DNSHost
	if err := decode(r, &w); err != nil {
		return nil, err
	}
	h, err := dnsHost(w)
	if err != nil {
		return nil, err
	}
	return dns(s.m.AddHost(r.Context(), h))
}

func (s *Server) removeHost(r *http.Request) (any, error) {
	return dns(s.m.RemoveHost(r.Context(), r.PathValue("name")))
}

// Routes returns the route table as "METHOD /path" strings, for tests and
// documentation.
func Routes() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = fmt.Sprintf("%s %s", rt.method, rt.path)
	}
	return out
}
