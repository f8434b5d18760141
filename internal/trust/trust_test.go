package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirAndFiles(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good")
	if err := MakeDir(good); err != nil {
		t.Fatalf("MakeDir: %v", err)
	}
	secret := filepath.Join(good, "secret")
	os.WriteFile(secret, []byte("x"), 0o600)
	open := filepath.Join(good, "open")
	os.WriteFile(open, []byte("x"), 0o644)
	loose := filepath.Join(good, "loose")
	os.WriteFile(loose, []byte("x"), 0o666)
	os.Chmod(loose, 0o666)
	link := filepath.Join(good, "link")
	os.Symlink(secret, link)
	writable := filepath.Join(root, "writable")
	os.Mkdir(writable, 0o777)
	os.Chmod(writable, 0o777)
	under := filepath.Join(writable, "under")
	os.Mkdir(under, 0o700)
	linkDir := filepath.Join(root, "linkdir")
	os.Symlink(good, linkDir)

	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"good dir", Dir(good), ""},
		{"dir others may write", Dir(writable), "may be written by others"},
		{"dir under one others may write", Dir(under), "may be written by others"},
		{"dir a link", Dir(linkDir), "symbolic link"},
		{"secret file", openErr(Open(secret, true)), ""},
		{"readable file, not secret", openErr(Open(open, false)), ""},
		{"readable file as a secret", openErr(Open(open, true)), "others may read it"},
		{"file others may write", openErr(Open(loose, false)), "may be written by others"},
		{"file a link", openErr(Open(link, false)), "symbolic link"},
		{"path a link", Path(link), "symbolic link"},
		{"path missing", Path(filepath.Join(good, "none")), ""},
		{"path good", Path(secret), ""},
		{"path loose", Path(loose), "may be written by others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" && tc.err != nil {
				t.Fatalf("refused: %v", tc.err)
			}
			if tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error saying %q", tc.err, tc.want)
			}
		})
	}
}

// TestOtherOwner needs root to give a directory and a file to another
// user.
func TestOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root, and CI must run it")
		}
		t.Skip("needs root (chown)")
	}
	dir := filepath.Join(t.TempDir(), "d")
	os.Mkdir(dir, 0o700)
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("x"), 0o600)
	os.Chown(f, 65534, 65534)
	if err := openErr(Open(f, true)); err == nil || !strings.Contains(err.Error(), "belongs to user 65534") {
		t.Errorf("a file of another user: %v", err)
	}
	os.Chown(dir, 65534, 65534)
	if err := Dir(dir); err == nil || !strings.Contains(err.Error(), "belongs to user 65534") {
		t.Errorf("a directory of another user: %v", err)
	}
}

func openErr(f *os.File, err error) error {
	if f != nil {
		f.Close()
	}
	return err
}
