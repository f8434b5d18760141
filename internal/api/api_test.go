package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/hresult"
	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/link"
	"github.com/netshare/netshare/internal/sharing"
	"github.com/netshare/netshare/internal/store"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadDoc(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := Routes()
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.json documents\n%s\nbut the route table serves\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

// jsonFields returns the JSON field names of a struct type.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadDoc(t)
	types := map[string]any{
		"Connection":       hnetcfg.ConnectionProps{},
		"SharingState":     hnetcfg.SharingState{},
		"SharingOverview":  hnetcfg.SharingOverview{},
		"PortMapping":      hnetcfg.PortMappingProps{},
		"PortMappingSpec":  hnetcfg.PortMappingSpec{},
		"PortMappingEdit":  hnetcfg.PortMappingEdit{},
		"NameRequest":      hnetcfg.NameRequest{},
		"SharingRequest":   hnetcfg.SharingRequest{},
		"FirewallRequest":  hnetcfg.FirewallRequest{},
		"Reservation":      hnetcfg.Reservation{},
		"DHCPSettings":     hnetcfg.DHCPSettings{},
		"DHCPEdit":         hnetcfg.DHCPEdit{},
		"Lease":            hnetcfg.LeaseInfo{},
		"DNSHost":          hnetcfg.DNSHost{},
		"DNSSettings":      hnetcfg.DNSSettings{},
		"DNSEdit":          hnetcfg.DNSEdit{},
		"Error":            hresult.Error{},
		"WebUIInfo":        hnetcfg.WebUIInfo{},
		"Config":           hnetcfg.Config{},
		"ConnectionConfig": hnetcfg.ConnectionConfig{},
		"DHCPConfig":       hnetcfg.DHCPConfig{},
		"MappingConfig":    hnetcfg.MappingConfig{},
		"DNSConfig":        hnetcfg.DNSConfig{},
		"ConfigResult":     hnetcfg.ConfigResult{},
		"PortMapPolicy":    hnetcfg.PortMapPolicy{},
		"PortMapRule":      hnetcfg.PortMapRule{},
	}
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		slices.Sort(props)
		if want := jsonFields(reflect.TypeOf(v)); !slices.Equal(props, want) {
			t.Errorf("schema %s has %v, the Go type has %v", name, props, want)
		}
	}
	if len(doc.Components.Schemas) != len(types) {
		t.Errorf("openapi.json has %d schemas, the test knows %d", len(doc.Components.Schemas), len(types))
	}
}

func newServer(t testing.TB) *Server {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	links := link.NewFake(
		link.Link{Name: "wan0", Kind: "device", Up: true, Carrier: true},
		link.Link{Name: "lan0", Kind: "device", Up: true, Carrier: true},
	)
	m, err := sharing.New(context.Background(), sharing.Options{Desired: st.Desired, Runtime: st.Runtime, Links: links, Firewall: fw.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	return New(m, nil)
}

func call(s *Server, method, path, body string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func TestStatusesAndErrors(t *testing.T) {
	s := newServer(t)
	if code, body := call(s, "POST", "/v1/connections/wan0/mappings", `{"name":"web","protocol":"tcp","externalPort":80,"internalPort":80,"targetIPAddress":"10.0.0.2"}`); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	tests := []struct {
		method, path, body string
		status             int
		code               hresult.Code
		msg                string
	}{
		{"GET", "/v1/connections/wan0", "", 200, "", ""},
		{"GET", "/v1/connections/eth7", "", 404, hresult.InvalidArg, `connection "eth7"`},
		{"GET", "/v1/connections/wan0/mappings/1", "", 200, "", ""},
		{"GET", "/v1/connections/wan0/mappings/2", "", 404, hresult.InvalidArg, "mapping 2"},
		{"GET", "/v1/connections/wan0/mappings?enabled=maybe", "", 400, hresult.InvalidArg, "enabled:"},
		{"POST", "/v1/connections/wan0/mappings", `{"name":"web2","protocol":"tcp","externalPort":80,"internalPort":80,"targetIPAddress":"10.0.0.2"}`, 409, hresult.InvalidArg, "externalPort:"},
		{"POST", "/v1/connections/wan0/mappings", `{"name":"x","protocol":"gre","externalPort":81,"internalPort":80,"targetIPAddress":"10.0.0.2"}`, 400, hresult.InvalidArg, "protocol:"},
		{"POST", "/v1/connections/wan0/mappings", `{"name":"x","protocol":"tcp","externalPort":-1,"internalPort":80,"targetIPAddress":"10.0.0.2"}`, 400, hresult.InvalidArg, "externalPort:"},
		{"POST", "/v1/connections/wan0/mappings", `{"name":"x","colour":"red"}`, 400, hresult.InvalidArg, `unknown field "colour"`},
		{"POST", "/v1/connections/wan0/mappings", "{\"protocol\":\"tcp\",\"name\":\"bad\xff\",\"externalPort\":81}", 400, hresult.InvalidArg, "name: is not valid UTF-8 (byte 29 of the request body)"},
		{"POST", "/v1/connections/wan0/mappings", "{\"name\":\"evil\u202etxt.exe\",\"protocol\":\"tcp\",\"externalPort\":81,\"internalPort\":80,\"targetIPAddress\":\"10.0.0.2\"}", 400, hresult.InvalidArg, "invisible formatting character (U+202E)"},
		{"POST", "/v1/connections/wan0/rename", "{\"name\":\"lan\u200b0\"}", 400, hresult.InvalidArg, "invisible formatting character (U+200B)"},
		{"POST", "/v1/connections/wan0/mappings", `{"name":`, 400, hresult.InvalidArg, "the JSON object ends early (8 bytes received)"},
		{"POST", "/v1/connections/wan0/mappings", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 400, hresult.InvalidArg, "larger than the limit of 1 MiB"},
		{"POST", "/v1/connections/wan0/mappings", `{"name":"x"} {}`, 400, hresult.InvalidArg, "one JSON object"},
		{"POST", "/v1/connections/wan0/mappings", ``, 400, hresult.InvalidArg, "a JSON object is required"},
		{"POST", "/v1/connections/wan0/mappings", `{"externalPort":"80"}`, 400, hresult.InvalidArg, "externalPort"},
		{"PATCH", "/v1/connections/wan0/mappings/1", `{"internalPort":8080}`, 200, "", ""},
		{"PATCH", "/v1/connections/wan0/mappings/1", `{"internalPort":0}`, 400, hresult.InvalidArg, "internalPort:"},
		{"POST", "/v1/connections/wan0/sharing/enable", `{"type":"public"}`, 200, "", ""},
		{"POST", "/v1/connections/wan0/sharing/enable", `{"type":"semi"}`, 400, hresult.InvalidArg, "type:"},
		{"POST", "/v1/connections/wan0/sharing/enable", `{}`, 400, hresult.InvalidArg, "type:"},
		{"POST", "/v1/connections/wan0/rename", `{"name":"lan0"}`, 409, hresult.InvalidArg, "name:"},
		{"DELETE", "/v1/connections/wan0", "", 501, hresult.NotImpl, "does not delete"},
		{"POST", "/v1/connections/wan0/duplicate", `{"name":"copy"}`, 501, hresult.NotImpl, "cannot be duplicated"},
		{"DELETE", "/v1/connections/wan0/mappings/1", "", 204, "", ""},
		{"DELETE", "/v1/connections/wan0/mappings/1", "", 404, hresult.InvalidArg, "no such mapping"},
		{"PUT", "/v1/connections/wan0", "", 405, hresult.NotImpl, "PUT is not allowed"},
		{"GET", "/v2/connections", "", 404, hresult.InvalidArg, "no such API path"},
		{"GET", "/v1/openapi.json", "", 200, "", ""},
	}
	for _, tt := range tests {
		status, body := call(s, tt.method, tt.path, tt.body)
		if status != tt.status {
			t.Errorf("%s %s %s: status %d, want %d (%s)", tt.method, tt.path, tt.body, status, tt.status, body)
			continue
		}
		if tt.code == "" {
			continue
		}
		var e hresult.Error
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("%s %s %s: body %s, want code %s and a message with %q", tt.method, tt.path, tt.body, body, tt.code, tt.msg)
		}
	}
}

func TestPathEscaping(t *testing.T) {
	s := newServer(t)
	if code, body := call(s, "POST", "/v1/connections/lan0/rename", `{"name":"Home / Office"}`); code != http.StatusOK {
		t.Fatalf("rename: %d %s", code, body)
	}
	code, body := call(s, "GET", "/v1/connections/Home%20%2F%20Office", "")
	if code != 200 || !strings.Contains(body, `"interface":"lan0"`) {
		t.Fatalf("lookup by an escaped name: %d %s", code, body)
	}
}

// TestSlowBodyCut replays a client that sends its headers and then its
// body a byte at a time, forever: the connection was held without end.
// The API's server cuts it at its read timeout and says why.
func TestSlowBodyCut(t *testing.T) {
	s := newServer(t)
	srv := NewHTTPServer(s)
	if srv.ReadTimeout != ReadTimeout || srv.ReadHeaderTimeout != HeaderTimeout || srv.IdleTimeout != IdleTimeout {
		t.Fatalf("the API's server has timeouts %v/%v/%v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
	srv.ReadTimeout = 500 * time.Millisecond // the same server, quicker to test
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /v1/connections/wan0/mappings HTTP/1.1\r\nHost: netshare\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	start := time.Now()
	go func() {
		for range 20 {
			time.Sleep(100 * time.Millisecond)
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, _ := io.ReadAll(c)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a slow body held the connection %v", took)
	}
	if !strings.Contains(string(answer), "not received within") {
		t.Fatalf("answer to a slow body:\n%s", answer)
	}
}

// fuzzRoutes are the routes that take a body, as FuzzDecode drives them.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/connections/wan0/mappings"},
	{"PATCH", "/v1/connections/wan0/mappings/1"},
	{"POST", "/v1/connections/lan0/rename"},
	{"POST", "/v1/connections/wan0/sharing/enable"},
	{"POST", "/v1/connections/lan0/sharing/enable"},
	{"POST", "/v1/connections/wan0/firewall/enable"},
	{"PATCH", "/v1/connections/lan0/dhcp"},
	{"POST", "/v1/connections/lan0/dhcp/reservations"},
	{"PATCH", "/v1/dns"},
	{"POST", "/v1/dns/hosts"},
}

// FuzzDecode sends whatever bytes to the routes that take a JSON body: the
// API must never fail with a server error or panic, must answer JSON, and
// a refused request must change nothing.
func FuzzDecode(f *testing.F) {
	for i, body := range []string{
		`{"name":"web","protocol":"tcp","externalPort":80,"internalPort":80,"targetIPAddress":"10.0.0.2"}`,
		`{"internalPort":8080}`, `{"name":"Home"}`, `{"type":"public"}`, `{"type":"private","address":"10.1.0.1/24"}`,
		`{"allowPing":true}`, `{"poolStart":"192.168.137.20","leaseTime":"30m"}`,
		`{"mac":"52:54:00:00:00:01","ip":"192.168.137.7","name":"pc"}`, `{"upstreams":["192.0.2.53"]}`, `{"name":"nas","ip":"192.168.137.5"}`,
		"{\"name\":\"bad\xff\"}", `{"name":"x"} {}`, `[`, ``,
	} {
		f.Add(byte(i), []byte(body))
	}
	s := newServer(f)
	if code, body := call(s, "POST", "/v1/connections/wan0/mappings", `{"name":"one","protocol":"tcp","externalPort":1,"internalPort":1,"targetIPAddress":"10.0.0.9"}`); code != 201 {
		f.Fatalf("seeding a mapping: %d %s", code, body)
	}
	state := func() string {
		_, a := call(s, "GET", "/v1/connections", "")
		_, b := call(s, "GET", "/v1/connections/wan0/mappings", "")
		_, c := call(s, "GET", "/v1/dns", "")
		_, d := call(s, "GET", "/v1/connections/lan0/dhcp", "")
		return a + b + c + d
	}
	f.Fuzz(func(t *testing.T, route byte, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		before := state()
		code, answer := call(s, rt.method, rt.path, string(body))
		if code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, code, answer)
		}
		if code != http.StatusNoContent && !json.Valid([]byte(answer)) {
			t.Fatalf("%s %s %q: the answer is not JSON: %s", rt.method, rt.path, body, answer)
		}
		if code >= 400 {
			var e hresult.Error
			if json.Unmarshal([]byte(answer), &e) != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%s %s %q: an error without a code and a message: %s", rt.method, rt.path, body, answer)
			}
			if after := state(); after != before {
				t.Fatalf("%s %s %q was refused (%d) but changed the state", rt.method, rt.path, body, code)
			}
		}
	})
}

func TestConfigDocument(t *testing.T) {
	s := newServer(t)
	req := httptest.NewRequest("GET", "/v1/config", nil)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var doc hnetcfg.Config
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &doc) != nil || w.Header().Get("ETag") != `"`+doc.Revision+`"` || len(doc.Connections) != 2 {
		t.Fatalf("GET /v1/config: %d %s %v", w.Code, w.Body, w.Header())
	}
	doc.Connections[1].Sharing = "public"
	doc.Connections[1].Firewall = true
	body, _ := json.Marshal(doc)
	put := func(query, ifMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("PUT", "/v1/config"+query, strings.NewReader(string(body)))
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w
	}
	w = put("?dryRun=true", "")
	var res hnetcfg.ConfigResult
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &res) != nil || !res.DryRun || len(res.Changes) != 2 || res.Config.Revision != doc.Revision {
		t.Fatalf("dry run: %d %s", w.Code, w.Body)
	}
	if w = put("", `"41"`); w.Code != http.StatusPreconditionFailed || !strings.Contains(w.Body.String(), "changed since the document was read") {
		t.Fatalf("a stale If-Match: %d %s", w.Code, w.Body)
	}
	if w = put("?dryRun=maybe", ""); w.Code != http.StatusBadRequest {
		t.Fatalf("dryRun=maybe: %d %s", w.Code, w.Body)
	}
	w = put("", "")
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &res) != nil || res.DryRun || res.Config.Revision == doc.Revision || w.Header().Get("ETag") != `"`+res.Config.Revision+`"` {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	// The same document again is stale now.
	if w = put("", ""); w.Code != http.StatusPreconditionFailed {
		t.Fatalf("the same document again: %d %s", w.Code, w.Body)
	}
	if w = put("", "*"); w.Code != 200 {
		t.Fatalf("If-Match *: %d %s", w.Code, w.Body)
	}
}

// A mapping list can be read a page at a time, and filtered; the Link
// header names the next page.
func TestMappingPages(t *testing.T) {
	s := newServer(t)
	for i := range 5 {
		if code, body := call(s, "POST", "/v1/connections/lan0/mappings", fmt.Sprintf(`{"name":"m","protocol":"tcp","externalPort":%d,"internalPort":80,"targetIPAddress":"10.0.0.2"}`, 1000+i)); code != 201 {
			t.Fatal(body)
		}
	}
	get := func(path string) (int, []hnetcfg.PortMappingProps, string) {
		req := httptest.NewRequest("GET", path, nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		var ps []hnetcfg.PortMappingProps
		json.Unmarshal(w.Body.Bytes(), &ps)
		return w.Code, ps, w.Header().Get("Link")
	}
	var got []string
	path := "/v1/connections/lan0/mappings?limit=2&origin=user"
	for pages := 0; path != ""; pages++ {
		code, ps, link := get(path)
		if code != 200 || len(ps) == 0 || len(ps) > 2 || pages > 3 {
			t.Fatalf("GET %s: %d, %d mappings, link %q", path, code, len(ps), link)
		}
		for _, p := range ps {
			got = append(got, p.ID)
		}
		path = ""
		if link != "" {
			if !strings.HasPrefix(link, "</v1/connections/lan0/mappings?") || !strings.HasSuffix(link, `>; rel="next"`) || !strings.Contains(link, "origin=user") {
				t.Fatalf("Link: %q", link)
			}
			path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	if want := []string{"1", "2", "3", "4", "5"}; !slices.Equal(got, want) {
		t.Errorf("the pages hold %v, want %v", got, want)
	}
	if _, ps, link := get("/v1/connections/lan0/mappings?origin=natpmp"); len(ps) != 0 || link != "" {
		t.Errorf("devices' mappings: %v, %q", ps, link)
	}
	for q, field := range map[string]string{
		"limit=0": "limit", "limit=x": "limit", "limit=10001": "limit", "origin=admin": "origin",
		"client=lanhost": "client", "after=-1": "after", "enabled=yes": "enabled",
	} {
		code, body := call(s, "GET", "/v1/connections/lan0/mappings?"+q, "")
		if code != 400 || !strings.Contains(body, `"field":"`+field+`"`) {
			t.Errorf("?%s: %d %s", q, code, body)
		}
	}
}
