// Package trust decides whether root (or the daemon's user) may act on
// what a directory or file holds: it must belong to this process's user or
// to root, no one else may write it, and no symbolic link may stand where
// it is. Another user who could write a daemon's state directory could
// plant a token of theirs, a state file, or a link that makes root write
// elsewhere.
package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Dir checks the directory dir: a real directory (not a link), of this
// user's or root's, writable by no one else; and every directory above it
// of this user's or root's, writable by no one else unless sticky (where
// others cannot rename or remove what is not theirs). Links above dir are
// followed.
func Dir(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (a symbolic link is refused)", dir)
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if err := owned(p, fi); err != nil {
			return err
		}
		sticky := fi.Mode()&fs.ModeSticky != 0
		if fi.Mode().Perm()&0o022 != 0 && (p == dir || !sticky) {
			return fmt.Errorf("%s may be written by others (mode %04o): it must be writable by its owner only", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// MakeDir creates dir (mode 0700) if it is missing, then checks it as Dir
// does.
func MakeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return Dir(dir)
}

// File checks an open file: a regular file of this user's or root's,
// writable by no one else; with secret, readable by no one else either.
func File(f *os.File, secret bool) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", f.Name())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s may be written by others (mode %04o)", f.Name(), fi.Mode().Perm())
	case secret && fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s has mode %04o and others may read it", f.Name(), fi.Mode().Perm())
	}
	return owned(f.Name(), fi)
}

// Open opens path for reading without following a symbolic link, and
// checks it as File does.
func Open(path string, secret bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: refused", path)
	}
	if err != nil {
		return nil, err
	}
	if err := File(f, secret); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Path checks what stands at path, if anything, without opening it: not
// a symbolic link, and a regular file as File says. A missing path is
// fine.
func Path(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link: refused", path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s may be written by others (mode %04o)", path, fi.Mode().Perm())
	}
	return owned(path, fi)
}

func owned(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid && st.Uid != 0 {
		return fmt.Errorf("%s belongs to user %d, not to this user (%d) or root", path, st.Uid, uid)
	}
	return nil
}
