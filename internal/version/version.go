// Package version says which netshare this is: the release a package
// build stamps in (go build -ldflags "-X .../version.Release=1.2.0"), or,
// in a build from a git checkout, a version made of the commit's date and
// hash, as Debian's snapshot versions are.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Release is set at link time by release builds (build/deb); empty in
// others.
var Release string

// Info describes the running binary.
type Info struct {
	// Version is Release, or "0.0~gitYYYYMMDD.HASH" (with ".dirty" when
	// the tree had changes) from the build's VCS stamp, or "unknown".
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commitTime,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// Get returns what the binary knows of itself.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return from(Release, bi)
}

// String is Get().Version.
func String() string { return Get().Version }

func from(release string, bi *debug.BuildInfo) Info {
	in := Info{Version: release, Go: runtime.Version()}
	if bi != nil {
		in.Go = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version != "" {
		return in
	}
	in.Version = "unknown"
	if in.Commit != "" {
		date := "00000000"
		if t, err := time.Parse(time.RFC3339, in.Time); err == nil {
			date = t.UTC().Format("20060102")
		}
		in.Version = "0.0~git" + date + "." + in.Commit[:min(12, len(in.Commit))]
		if in.Modified {
			in.Version += ".dirty"
		}
	}
	return in
}

// Valid reports whether v may be a release: it must start with a digit
// and hold only what a Debian version may (letters, digits, . + ~ -).
func Valid(v string) bool {
	if v == "" || v[0] < '0' || v[0] > '9' {
		return false
	}
	return strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+~-") == ""
}
