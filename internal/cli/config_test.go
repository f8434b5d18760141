package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/daemon/daemontest"
)

func TestConfigExportApply(t *testing.T) {
	d := daemontest.Start(t)
	ok(t, d.Socket, "sharing", "enable", "wan0", "--public")
	out := ok(t, d.Socket, "config", "export")
	doc := decode[hnetcfg.Config](t, out)
	if doc.Revision == "" || len(doc.Connections) == 0 {
		t.Fatalf("export: %s", out)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "netshare.json")
	ok(t, d.Socket, "config", "export", "--output", file)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported file: %v, %v", fi, err)
	}
	// Applying the export changes nothing.
	if got := ok(t, d.Socket, "config", "apply", file); !strings.HasPrefix(got, "no changes") {
		t.Fatalf("apply of the export: %q", got)
	}
	// An edit: a mapping, and lan0 shared as private.
	for i := range doc.Connections {
		c := &doc.Connections[i]
		switch c.Interface {
		case "wan0":
			c.Mappings = append(c.Mappings, hnetcfg.MappingConfig{Name: "web", Protocol: "tcp", ExternalPort: 80, InternalPort: 80, TargetIPAddress: "192.168.137.10", Enabled: true})
		case "lan0":
			c.Sharing = "private"
		}
	}
	data, _ := json.Marshal(doc)
	os.WriteFile(file, data, 0o600)
	dry := ok(t, d.Socket, "config", "apply", file, "--dry-run")
	if !strings.HasPrefix(dry, "2 changes would apply (dry run):") || !strings.Contains(dry, `mapping 1 ("web") added`) {
		t.Fatalf("dry run: %q", dry)
	}
	if ms := ok(t, d.Socket, "mapping", "list", "wan0"); strings.Contains(ms, "web") {
		t.Fatalf("a dry run added a mapping:\n%s", ms)
	}
	res := decode[hnetcfg.ConfigResult](t, ok(t, d.Socket, "config", "apply", file, "--json"))
	if res.DryRun || len(res.Changes) != 2 || res.Config.Revision == doc.Revision {
		t.Fatalf("apply --json: %+v", res)
	}
	// The file is now stale: refused, unless forced.
	errOut := fails(t, d.Socket, 1, "E_ABORT:", "config", "apply", file)
	if !strings.Contains(errOut, "changed since the document was read") {
		t.Fatalf("stale: %q", errOut)
	}
	if got := ok(t, d.Socket, "config", "apply", file, "--force"); !strings.HasPrefix(got, "no changes") {
		t.Fatalf("apply --force of what is there: %q", got)
	}
	// Bad documents: a clear error, nothing changed.
	os.WriteFile(file, []byte(`{"connections":[{"interface":"wan0","colour":"red"}]}`), 0o600)
	fails(t, d.Socket, 1, "E_INVALIDARG:", "config", "apply", file)
	os.WriteFile(file, []byte(`{"connections":[{"interface":"wan0","sharing":"public","mappings":[{"name":"x","protocol":"tcp","externalPort":0,"internalPort":1,"targetIPAddress":"10.0.0.1"}]}]}`), 0o600)
	errOut = fails(t, d.Socket, 1, "E_INVALIDARG: connections[0].mappings[0].externalPort:", "config", "apply", file, "--force")
	_ = errOut
	fails(t, d.Socket, 1, "E_INVALIDARG:", "config", "apply", filepath.Join(dir, "missing.json"))
	if ms := ok(t, d.Socket, "mapping", "list", "wan0"); !strings.Contains(ms, "web") {
		t.Fatalf("a refused document changed the mappings:\n%s", ms)
	}
}
