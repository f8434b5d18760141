package fw_test

import (
	"flag"
	"testing"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/fw/fwtest"
)

var update = flag.Bool("update", false, "rewrite the golden files with the compiler's output")

// TestCompileGolden pins the ruleset each representative Config compiles
// to. nftfw's kernel test applies the same files in a namespace.
func TestCompileGolden(t *testing.T) {
	for _, g := range fwtest.ReadGoldens(t, "testdata") {
		got := fw.Compile(g.Config).String()
		if *update {
			if err := g.Write(got); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if d := fwtest.Diff(got, g.Want); d != "" {
			t.Errorf("%s:\n%s", g.Path, d)
		}
	}
}

// TestCompileIsPure checks that Compile neither changes its input nor
// depends on the order of its slices.
func TestCompileIsPure(t *testing.T) {
	cfg := &fw.Config{Public: "wan0", Private: []string{"lan1", "lan0"}, Firewalled: []string{"wan0"}}
	before := cfg.Clone()
	a := fw.Compile(cfg).String()
	if !cfg.Equal(before) || cfg.Private[0] != "lan1" {
		t.Fatal("Compile changed its input")
	}
	cfg.Private = []string{"lan0", "lan1"}
	if b := fw.Compile(cfg).String(); a != b {
		t.Fatalf("order matters:\n%s\n%s", a, b)
	}
}
