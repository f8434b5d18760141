package version

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	stamp := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8"}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	const rev = "f955d54abcdef0123456789abcdef0123456789a"
	for _, tt := range []struct {
		name    string
		release string
		bi      *debug.BuildInfo
		want    string
	}{
		{"a release", "1.2.0", stamp("vcs.revision", rev), "1.2.0"},
		{"a checkout", "", stamp("vcs.revision", rev, "vcs.time", "2026-11-24T08:27:28Z"), "0.0~git20261124.f955d54abcde"},
		{"a checkout with changes", "", stamp("vcs.revision", rev, "vcs.time", "2026-11-24T08:27:28Z", "vcs.modified", "true"), "0.0~git20261124.f955d54abcde.dirty"},
		{"no VCS stamp", "", stamp(), "unknown"},
		{"no build info", "", nil, "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := from(tt.release, tt.bi)
			if in.Version != tt.want {
				t.Errorf("version %q, want %q", in.Version, tt.want)
			}
			if tt.want != "unknown" && !Valid(in.Version) {
				t.Errorf("%q is not a valid Debian version", in.Version)
			}
		})
	}
}

func TestValid(t *testing.T) {
	for v, want := range map[string]bool{"1.2.0": true, "0.0~git20261124.f955d54": true, "1.0+ds-1": true, "": false, "v1.2": false, "1.2 beta": false, "1.2_3": false} {
		if Valid(v) != want {
			t.Errorf("Valid(%q) = %v", v, !want)
		}
	}
}
