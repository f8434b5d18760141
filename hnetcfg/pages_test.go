package hnetcfg

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
)

func TestNextPage(t *testing.T) {
	for link, want := range map[string]string{
		"":                                    "",
		`</v1/x?after=3&limit=2>; rel="next"`: "/v1/x?after=3&limit=2",
		`</a>; rel="prev", </b>; rel="next"`:  "/b",
		`<http://evil.example/x>; rel="next"`: "",
		`</v1/x>; rel="last"`:                 "",
		`/v1/x; rel="next"`:                   "",
	} {
		if got := nextPage(link); got != want {
			t.Errorf("nextPage(%q) = %q, want %q", link, got, want)
		}
	}
}

// TestQueryFollowsPages serves a list of 5 mappings 2 at a time, as the
// daemon pages it, and checks that the client reads them all.
func TestQueryFollowsPages(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.RawQuery)
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		end := min(after+2, 5)
		if end < 5 {
			w.Header().Set("Link", fmt.Sprintf(`</v1/connections/c/mappings?after=%d&limit=2&origin=pcp>; rel="next"`, end))
		}
		fmt.Fprint(w, "[")
		for id := after + 1; id <= end; id++ {
			if id > after+1 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, `{"id":"%d","origin":"pcp"}`, id)
		}
		fmt.Fprint(w, "]")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	m := NewSharingManager(sock)
	cfg := &SharingConfiguration{m: m, id: "c"}
	pms, err := cfg.QueryPortMappings(context.Background(), MappingQuery{Origin: OriginPCP})
	if err != nil || len(pms) != 5 || pms[4].Props().ID != "5" {
		t.Fatalf("QueryPortMappings = %d mappings, %v", len(pms), err)
	}
	if len(asked) != 3 || asked[0] != "limit=2000&origin=pcp" {
		t.Errorf("asked %q", asked)
	}
}
