package webui

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/netshare/netshare/internal/trust"
)

// TokenFile is the name of the token's file in the state directory.
const TokenFile = "ui-token"

// LoadOrCreateToken returns the web UI's token from dir, making a new one
// (mode 0600) the first time. It refuses a token file that others than its
// owner may read, one that is empty, one that is a symbolic link or
// belongs to another user (trust.Open): it never serves with a token that
// may have leaked or been planted. dir must already be trusted (the daemon
// checks it with trust.Dir).
func LoadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	f, err := trust.Open(path, true)
	switch {
	case err == nil:
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 4096))
		if err != nil {
			return "", fmt.Errorf("reading the web UI token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("the web UI token %s is empty or too short: remove the file for a new token", path)
		}
		return tok, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("the web UI token: %w: remove the file for a new token (chmod 600 and chown it to this user to keep it)", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the state directory: %w", err)
	}
	tok := randomString()
	// Write it under a temporary name, synced, then move it into place:
	// a crash leaves either no token or a whole one.
	tmp, err := os.CreateTemp(dir, TokenFile+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("writing the web UI token: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return tok, nil
}
