// Package fwtest reads the golden files of the firewall compiler: each
// holds a fw.Config as JSON, a line of dashes, and the ruleset text that
// Config compiles to, as `nft list table` prints it.
package fwtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/netshare/netshare/internal/fw"
)

// Separator divides a golden file's Config from its ruleset.
const Separator = "----------\n"

// Golden is one golden file.
type Golden struct {
	Path   string
	Config *fw.Config
	Want   string
}

// ReadGoldens reads every *.golden file in dir.
func ReadGoldens(t testing.TB, dir string) []Golden {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.golden"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files in %s (%v)", dir, err)
	}
	var out []Golden
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cfgText, want, ok := strings.Cut(string(data), Separator)
		if !ok {
			t.Fatalf("%s: no %q line", p, strings.TrimSpace(Separator))
		}
		var cfg fw.Config
		dec := json.NewDecoder(strings.NewReader(cfgText))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("%s: config: %v", p, err)
		}
		out = append(out, Golden{Path: p, Config: &cfg, Want: want})
	}
	return out
}

// Write rewrites g's file with a new ruleset text.
func (g Golden) Write(got string) error {
	data, _ := os.ReadFile(g.Path)
	cfgText, _, _ := strings.Cut(string(data), Separator)
	return os.WriteFile(g.Path, []byte(cfgText+Separator+got), 0o644)
}

var elementsRE = regexp.MustCompile(`(?s)elements = \{ (.*?) \}\n`)

// Normalize makes nft's listing comparable with fw.Ruleset.String: the
// elements of each set, which the kernel lists in hash order and nft wraps
// over several lines, go on one line in sorted order.
func Normalize(s string) string {
	return elementsRE.ReplaceAllStringFunc(s, func(m string) string {
		inner := elementsRE.FindStringSubmatch(m)[1]
		var es []string
		for _, e := range strings.Split(inner, ",") {
			es = append(es, strings.TrimSpace(e))
		}
		slices.Sort(es)
		return fmt.Sprintf("elements = { %s }\n", strings.Join(es, ", "))
	})
}

// Diff returns "" when a and b are equal, and otherwise the first lines
// where they differ.
func Diff(got, want string) string {
	if got == want {
		return ""
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b bytes.Buffer
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "line %d:\n  got:  %q\n  want: %q\n", i+1, gl, wl)
		}
	}
	return b.String()
}
