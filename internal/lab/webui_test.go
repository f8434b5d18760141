package lab_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/netshare/netshare/hnetcfg"
)

// TestWebUI opens the lab's web UI as a newcomer's browser would: on the
// host's loopback, while the daemon runs in gw. A mapping added over HTTP
// reaches the kernel; after a restart the UI answers at the same address
// with the same token, and old sessions are gone.
func TestWebUI(t *testing.T) {
	l, m := up(t)
	info, err := m.WebUI(ctx)
	if err != nil || !info.Enabled || info.URL != "http://"+l.UI+"/" {
		t.Fatalf("WebUI = %+v, %v; want the UI at %s", info, err, l.UI)
	}
	token := info.LoginURL[strings.Index(info.LoginURL, "#token=")+len("#token="):]

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	do := func(method, path, body, csrf string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, info.URL+strings.TrimPrefix(path, "/"), strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if csrf != "" {
			req.Header.Set("X-Netshare-CSRF", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	login := func() string {
		t.Helper()
		code, body := do("POST", "/ui/login", `{"token":"`+token+`"}`, "")
		var s struct{ CSRF string }
		if code != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil || s.CSRF == "" {
			t.Fatalf("login: %d %s", code, body)
		}
		return s.CSRF
	}

	if code, _ := do("GET", "/", "", ""); code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	if code, _ := do("GET", "/v1/connections", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/connections before login: %d; want 401", code)
	}
	csrf := login()
	code, body := do("GET", "/v1/connections/wan0", "", "")
	var wan hnetcfg.ConnectionProps
	if code != http.StatusOK || json.Unmarshal([]byte(body), &wan) != nil || wan.Sharing.Type != hnetcfg.ICSSHARINGTYPE_PUBLIC {
		t.Fatalf("GET wan0 over HTTP: %d %s; want it shared as public", code, body)
	}

	code, body = do("POST", "/v1/connections/wan0/mappings", `{"name":"web","protocol":"tcp","externalPort":8000,"internalPort":80,"targetIPAddress":"192.168.137.10"}`, csrf)
	var mp hnetcfg.PortMappingProps
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &mp) != nil || mp.Enabled {
		t.Fatalf("adding a mapping over HTTP: %d %s; want 201 and disabled", code, body)
	}
	if code, body = do("POST", "/v1/connections/wan0/mappings/"+mp.ID+"/enable", "", csrf); code != http.StatusOK {
		t.Fatalf("enabling it: %d %s", code, body)
	}
	if rs := ruleset(t, l); !strings.Contains(rs, "192.168.137.10 . 80") {
		t.Fatalf("the enabled mapping is not in the kernel:\n%s", rs)
	}

	must(t, l.RestartDaemon(ctx))
	again, err := m.WebUI(ctx)
	if err != nil || again != info {
		t.Fatalf("after a restart WebUI = %+v, %v; want %+v", again, err, info)
	}
	if code, _ := do("GET", "/v1/connections", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("an old session after a restart: %d; want 401", code)
	}
	login()
	if code, body = do("GET", "/v1/connections/wan0/mappings/"+mp.ID, "", ""); code != http.StatusOK || !strings.Contains(body, `"enabled":true`) {
		t.Fatalf("the mapping after a restart, over HTTP: %d %s", code, body)
	}
}
