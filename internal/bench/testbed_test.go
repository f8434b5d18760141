package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockDir: a bench starts clean of what a killed run left, and a
// second bench in the same directory is refused while the first runs.
func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "state"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "state", "netshare.db"), []byte("10,000 leases"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "daemon.log"), nil, 0o600))
	unlock, err := lockDir(dir, "port mapping")
	must(err)
	entries, err := os.ReadDir(dir)
	must(err)
	if len(entries) != 1 || entries[0].Name() != ".lock" {
		t.Errorf("the directory holds %v, want only the lock", entries)
	}
	if _, err := lockDir(dir, "port mapping"); err == nil || !strings.Contains(err.Error(), "another port mapping bench is running in "+dir) {
		t.Errorf("a second bench in the directory: %v", err)
	}
	unlock()
	unlock, err = lockDir(dir, "port mapping")
	must(err)
	unlock()
}
