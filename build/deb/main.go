// Command deb builds netshare's Debian package with nfpm:
//
//	go run ./build/deb [--out DIR] [--version VERSION]
//
// writes DIR/netshare_VERSION-1_amd64.deb (DIR is dist by default) and
// prints its path. The package holds the binary (stamped with the
// version), the systemd unit (netshare.service), the sysusers.d entry of
// the netshare group (whose members use the CLI without root), man pages
// and shell completions generated from the CLI's own command tree, the
// licence and a changelog; its maintainer scripts (scripts/) enable and
// start the service, and delete the state on purge. The version is the
// tag vX.Y.Z on the commit, else 0.0~gitYYYYMMDD.HASH of the commit (with
// .dirty when the tree has changes).
package main

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/spf13/cobra/doc"

	"github.com/netshare/netshare/internal/cli"
	"github.com/netshare/netshare/internal/version"
)

//go:embed netshare.service sysusers.conf lintian-overrides scripts
var assets embed.FS

func main() {
	out := flag.String("out", "dist", "the `DIR` the package is written to")
	ver := flag.String("version", "", "the package's `VERSION` (default: from git)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "deb: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	path, err := build(options{Out: *out, Version: *ver, Progress: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "deb: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// options say what to build.
type options struct {
	Root     string // the module's directory; the current one if ""
	Out      string
	Version  string // from git if ""
	Progress io.Writer
}

// commit is what the package says of the commit it is built from.
type commit struct {
	hash    string
	time    time.Time
	dirty   bool
	tag     string   // vX.Y.Z on the commit, if any
	changes []string // subjects of the commits since the last tag (at most 50)
}

// build writes the package and returns its path.
func build(o options) (string, error) {
	if o.Root == "" {
		o.Root = "."
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	c, err := gitCommit(o.Root)
	if err != nil {
		return "", err
	}
	v := o.Version
	if v == "" {
		v = c.version()
	}
	if !version.Valid(v) {
		return "", fmt.Errorf("version %q: a Debian upstream version starts with a digit and holds only letters, digits and . + ~ -", v)
	}
	work, err := os.MkdirTemp("", "netshare-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	fmt.Fprintf(o.Progress, "building netshare %s (commit %s)\n", v, c.hash)
	bin := filepath.Join(work, "netshare")
	gobuild := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X github.com/netshare/netshare/internal/version.Release="+v, "-o", bin, "./cmd/netshare")
	gobuild.Dir = o.Root
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := gobuild.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}

	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/netshare", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
	}
	add := func(dst string, data []byte, mode os.FileMode) error {
		src := filepath.Join(work, "files", dst)
		if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(src, data, mode); err != nil {
			return err
		}
		contents = append(contents, &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}})
		return nil
	}
	for _, a := range []struct{ asset, dst string }{
		{"netshare.service", "/usr/lib/systemd/system/netshare.service"},
		{"sysusers.conf", "/usr/lib/sysusers.d/netshare.conf"},
		{"lintian-overrides", "/usr/share/lintian/overrides/netshare"},
	} {
		data, err := assets.ReadFile(a.asset)
		if err != nil {
			return "", err
		}
		if err := add(a.dst, data, 0o644); err != nil {
			return "", err
		}
	}
	licence, err := os.ReadFile(filepath.Join(o.Root, "LICENSE"))
	if err != nil {
		return "", err
	}
	if err := add("/usr/share/doc/netshare/copyright", copyright(licence, c.time), 0o644); err != nil {
		return "", err
	}
	docs, err := generated(v, c.time)
	if err != nil {
		return "", err
	}
	for _, d := range docs {
		if err := add(d.dst, d.data, 0o644); err != nil {
			return "", err
		}
	}
	scripts := map[string]string{}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		data, err := assets.ReadFile("scripts/" + s)
		if err != nil {
			return "", err
		}
		p := filepath.Join(work, s)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			return "", err
		}
		scripts[s] = p
	}
	changelog := filepath.Join(work, "changelog.yml")
	if err := os.WriteFile(changelog, c.changelog(v), 0o644); err != nil {
		return "", err
	}

	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "netshare",
		Arch:          "amd64",
		Platform:      "linux",
		Version:       v,
		VersionSchema: "none",
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer,
		Homepage:      "https://github.com/netshare/netshare",
		License:       "BSD-3-Clause",
		Description: "Internet Connection Sharing and Firewall for Linux\n" +
			"netshare shares one upstream connection with private networks (NAT,\n" +
			"forwarding, DHCP, DNS with private names), guards connections with a\n" +
			"stateful firewall, and publishes services with port mappings, which\n" +
			"devices on the private networks may also lease for themselves\n" +
			"(NAT-PMP, PCP). A daemon keeps the state and applies it to the kernel\n" +
			"(nftables, netlink); a command line, a Go client and a web UI drive it.",
		Changelog: changelog,
		MTime:     c.time,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Suggests: []string{"nftables"},
			Scripts:  nfpm.Scripts{PostInstall: scripts["postinst"], PreRemove: scripts["prerm"], PostRemove: scripts["postrm"]},
			Deb:      nfpm.Deb{Compression: "xz"},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.Out, deb.Default.ConventionalFileName(info))
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return "", fmt.Errorf("nfpm: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(o.Progress, "wrote %s (%d KiB)\n", path, buf.Len()>>10)
	return path, nil
}

// maintainer is the package's maintainer field.
const maintainer = "The netshare Authors <netshare@users.noreply.github.com>"

// gitCommit reads the commit the tree is at.
func gitCommit(root string) (commit, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return strings.TrimSpace(string(out)), err
	}
	var c commit
	line, err := git("log", "-1", "--format=%H %ct")
	if err != nil {
		return c, fmt.Errorf("the version comes from git: %w", err)
	}
	hash, ts, _ := strings.Cut(line, " ")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return c, fmt.Errorf("git log: %q", line)
	}
	c.hash, c.time = hash, time.Unix(sec, 0).UTC()
	status, err := git("status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return c, err
	}
	c.dirty = status != ""
	tags, _ := git("tag", "--points-at", "HEAD", "--list", "v[0-9]*")
	if t, _, _ := strings.Cut(tags, "\n"); t != "" {
		c.tag = t
	}
	since := "HEAD"
	if last, err := git("describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", "HEAD^"); err == nil && last != "" {
		since = last + "..HEAD"
	}
	log, err := git("log", "--format=%s", "-n", "50", since)
	if err != nil {
		return c, err
	}
	c.changes = strings.Split(log, "\n")
	return c, nil
}

// version is the tag without its v, or a snapshot version of the commit.
func (c commit) version() string {
	if c.tag != "" && !c.dirty {
		return strings.TrimPrefix(c.tag, "v")
	}
	v := "0.0~git" + c.time.Format("20060102") + "." + c.hash[:12]
	if c.dirty {
		v += ".dirty"
	}
	return v
}

// changelog is a chglog file with one entry, this version's: the
// subjects of the commits since the last release.
func (c commit) changelog(v string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "- semver: %q\n  date: %s\n  packager: %q\n  deb:\n    urgency: medium\n    distributions: [unstable]\n  changes:\n",
		v+"-1", c.time.Format(time.RFC3339), maintainer)
	for _, s := range c.changes {
		if s = strings.TrimSpace(s); s != "" {
			fmt.Fprintf(&b, "    - note: %q\n", shorten(s, 74))
		}
	}
	if len(c.changes) == 0 {
		fmt.Fprintf(&b, "    - note: %q\n", "built from commit "+c.hash)
	}
	return []byte(b.String())
}

// copyright is the package's machine-readable copyright file (DEP-5)
// around the licence's text.
func copyright(licence []byte, t time.Time) []byte {
	var b strings.Builder
	b.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
	b.WriteString("Upstream-Name: netshare\nSource: https://github.com/netshare/netshare\n\n")
	fmt.Fprintf(&b, "Files: *\nCopyright: %d The netshare Authors\nLicense: BSD-3-Clause\n", t.Year())
	// The licence's text, without its title and copyright lines, each
	// line indented and blank lines as " .".
	text := string(licence)
	if i := strings.Index(text, "Redistribution"); i >= 0 {
		text = text[i:]
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString(" .\n")
		} else {
			b.WriteString(" " + strings.TrimSpace(line) + "\n")
		}
	}
	return []byte(b.String())
}

type file struct {
	dst  string
	data []byte
}

// generated are the man pages (gzipped) and the shell completions, made
// from the CLI's command tree.
func generated(v string, t time.Time) ([]file, error) {
	root := cli.Command(cli.Env{Stdout: io.Discard, Stderr: io.Discard})
	dir, err := os.MkdirTemp("", "netshare-man-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Title: "NETSHARE", Section: "1", Source: "netshare " + v, Manual: "netshare manual", Date: &t}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return nil, fmt.Errorf("man pages: %w", err)
	}
	pages, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("man pages: none generated (%v)", err)
	}
	var out []file
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		w.Write(data)
		if err := w.Close(); err != nil {
			return nil, err
		}
		out = append(out, file{"/usr/share/man/man1/" + filepath.Base(p) + ".gz", gz.Bytes()})
	}
	var bash, zsh, fish bytes.Buffer
	if err := root.GenBashCompletionV2(&bash, true); err != nil {
		return nil, err
	}
	if err := root.GenZshCompletion(&zsh); err != nil {
		return nil, err
	}
	if err := root.GenFishCompletion(&fish, true); err != nil {
		return nil, err
	}
	return append(out,
		file{"/usr/share/bash-completion/completions/netshare", bash.Bytes()},
		file{"/usr/share/zsh/vendor-completions/_netshare", zsh.Bytes()},
		file{"/usr/share/fish/vendor_completions.d/netshare.fish", fish.Bytes()},
	), nil
}

// shorten cuts s to at most n bytes at a word, marking the cut with
// "...": a changelog line holds 80 characters (the subjects are whole in
// git).
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndexByte(s[:n-3], ' ')
	if cut <= 0 {
		cut = n - 3
	}
	return strings.TrimRight(s[:cut], " ,;:") + "..."
}
