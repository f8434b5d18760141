package netshare

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/netshare/netshare/"

// layers says which packages of this module each package may import (its
// non-test files), and which of the outside packages that mark a layer:
// HTTP, the CLI library, the kernel's (netlink, nftables) and the store's
// (bbolt). A package not listed may import none of them. Adding an import
// here is a design decision: say why beside it.
var layers = map[string][]string{
	// The vocabulary and the public client build anywhere and know
	// nothing of the daemon.
	"hresult":      {},
	"hnetcfg":      {"hresult", "net/http"},
	"cmd/netshare": {"internal/cli"},
	// The package build: the binary's version, and the man pages and
	// completions generated from the CLI's command tree.
	"build/deb": {"internal/cli", "internal/version", "github.com/spf13/cobra"},

	// Leaves: small tools with no layer of their own.
	"internal/connlimit": {},
	"internal/ipproto":   {},
	"internal/ratelimit": {},
	"internal/trust":     {},
	"internal/ping":      {},
	"internal/nettest":   {},
	"internal/version":   {},
	// Remote peer filters (PCP FILTER, later UPnP's RemoteHost): a value
	// the model, the firewall, the store and the protocols share.
	"internal/peers": {},

	// Wire formats of the protocols devices speak to the gateway: pure
	// parsing and writing, no state, no I/O.
	"internal/natpmp": {},
	"internal/pcp":    {},
	// The server devices ask for port mappings (NAT-PMP, PCP): the
	// protocols' logic on a socket; the model is behind its Leaser.
	"internal/portmap": {"internal/ipproto", "internal/natpmp", "internal/pcp", "internal/peers", "internal/ratelimit", "golang.org/x/net"},

	// Kernel seams: the interface packages import nothing; their Linux
	// backends import their interface and the kernel's libraries.
	"internal/fw":             {"internal/ipproto", "internal/peers"},
	"internal/fw/fwtest":      {"internal/fw"},
	"internal/fw/nftfw":       {"internal/fw", "internal/ipproto", "github.com/google/nftables", "github.com/vishvananda/netlink"},
	"internal/link":           {},
	"internal/link/linuxlink": {"internal/link", "github.com/vishvananda/netlink"},
	// The kernel's connection tracking table, one flow at a time (PCP
	// PEER): an interface, a fake and the ctnetlink backend.
	"internal/conntrack":       {"internal/ipproto"},
	"internal/store":           {"internal/ipproto", "internal/peers", "internal/trust", "go.etcd.io/bbolt"},
	"internal/store/storetest": {"internal/store"},

	// Services of the private networks.
	"internal/dhcp":     {"internal/ping", "internal/ratelimit"},
	"internal/dns":      {"internal/connlimit", "internal/ratelimit"},
	"internal/services": {"internal/dhcp", "internal/dns", "internal/portmap", "internal/ratelimit"},

	// The model: no wire format (hnetcfg), no HTTP, no CLI, no kernel
	// library, no store library. It owns its types; internal/api
	// converts them to and from the wire's.
	"internal/sharing": {"hresult", "internal/dhcp", "internal/dns", "internal/fw", "internal/ipproto", "internal/link",
		"internal/conntrack", "internal/peers", "internal/portmap", "internal/ratelimit", "internal/services", "internal/store"},

	// The API and the web UI: HTTP over the model.
	"internal/api":   {"hnetcfg", "hresult", "internal/ipproto", "internal/sharing", "net/http"},
	"internal/webui": {"hresult", "internal/api", "internal/connlimit", "internal/ratelimit", "internal/trust", "net/http"},

	// The daemon wires everything; the CLI drives the daemon, the lab and
	// the benches.
	"internal/daemon": {"hnetcfg", "internal/api", "internal/connlimit", "internal/conntrack", "internal/dhcp", "internal/fw", "internal/fw/nftfw",
		"internal/link", "internal/link/linuxlink", "internal/portmap", "internal/services", "internal/sharing", "internal/store", "internal/version", "internal/webui", "net/http"},
	"internal/daemon/daemontest": {"internal/daemon", "internal/fw", "internal/link", "internal/webui"},
	"internal/cli":               {"hnetcfg", "hresult", "internal/bench", "internal/daemon", "internal/lab", "internal/trust", "internal/version", "internal/webui", "github.com/spf13/cobra"},
	"internal/lab":               {"hnetcfg", "internal/ping", "internal/trust", "github.com/vishvananda/netlink"},
	// The bench's NAT-PMP load generator writes the wire format itself.
	"internal/bench": {"hnetcfg", "internal/fw", "internal/fw/nftfw", "internal/ipproto", "internal/lab", "internal/natpmp", "internal/store", "github.com/google/nftables"},
}

// marked says whether an import path is one the layers table governs:
// this module's packages and the outside packages that mark a layer.
func marked(path string) (string, bool) {
	if p, ok := strings.CutPrefix(path, module); ok {
		return p, true
	}
	for _, m := range []string{"net/http", "github.com/spf13/cobra", "github.com/google/nftables", "github.com/vishvananda/netlink", "go.etcd.io/bbolt"} {
		if path == m || strings.HasPrefix(path, m+"/") {
			return m, true
		}
	}
	return "", false
}

// TestLayering checks every package's imports against layers.
func TestLayering(t *testing.T) {
	imports := map[string]map[string]bool{} // package -> marked imports
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			return nil
		}
		if imports[pkg] == nil {
			imports[pkg] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if m, ok := marked(p); ok {
				imports[pkg][m] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg, imps := range imports {
		allowed, listed := layers[pkg]
		if !listed {
			t.Errorf("%s is not in the layers table: say what it may import", pkg)
			continue
		}
		for imp := range imps {
			if !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s, which its layer does not allow", pkg, imp)
			}
		}
	}
	for pkg := range layers {
		if imports[pkg] == nil {
			t.Errorf("layers lists %s, which has no Go files", pkg)
		}
	}
}
