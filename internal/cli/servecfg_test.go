package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSettings: a setting comes from its flag, else the environment,
// else the configuration file; mistakes name where they were made.
func TestServeSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.conf", `# netshare serve
state-dir = /var/lib/netshare-test
log-level = debug
log-format = "json"

http = 127.0.0.1:8137
dns-cache = 8MiB
`)
	for _, tt := range []struct {
		name     string
		flags    []string
		env      map[string]string
		path     string
		explicit bool
		chmod    os.FileMode
		want     map[string]string // flag values
		err      string
	}{
		{name: "the file", path: good, explicit: true,
			want: map[string]string{"state-dir": "/var/lib/netshare-test", "log-level": "DEBUG", "log-format": "json", "http": "127.0.0.1:8137", "dns-cache": "8MiB"}},
		{name: "the environment over the file", path: good, env: map[string]string{"NETSHARE_STATE_DIR": "/srv/ns", "NETSHARE_SOCKET": "/tmp/x.sock"},
			want: map[string]string{"state-dir": "/srv/ns", "socket": "/tmp/x.sock", "log-level": "DEBUG"}},
		{name: "a flag over both", path: good, flags: []string{"--log-level", "warn"}, env: map[string]string{"NETSHARE_LOG_LEVEL": "error"},
			want: map[string]string{"log-level": "WARN", "log-format": "json"}},
		{name: "no default file", path: filepath.Join(dir, "missing.conf"),
			want: map[string]string{"state-dir": "/var/lib/netshare", "log-format": "text"}},
		{name: "a missing file given", path: filepath.Join(dir, "missing.conf"), explicit: true, err: "configuration file: open " + filepath.Join(dir, "missing.conf")},
		{name: "an unknown name", path: write("unknown.conf", "\nstate_dir = /x\n"), err: "unknown.conf:2: \"state_dir\" is not a setting; the settings are socket, state-dir"},
		{name: "not name = value", path: write("bad.conf", "http 127.0.0.1:1\n"), err: "bad.conf:1: \"http 127.0.0.1:1\" is not name = value"},
		{name: "written by others", path: write("open.conf", "http = a\n"), chmod: 0o666, err: "open.conf may be written by others (mode 0666)"},
		{name: "set twice", path: write("twice.conf", "http = a\nhttp = b\n"), err: "twice.conf:2: http is set again (first on line 1)"},
		{name: "a bad value in the file", path: write("value.conf", "log-format = xml\n"), err: "value.conf:1: log-format \"xml\": give text or json"},
		{name: "a bad value in the environment", path: good, env: map[string]string{"NETSHARE_HTTP_REMOTE": "maybe"}, err: "environment variable NETSHARE_HTTP_REMOTE: http-remote \"maybe\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.chmod != 0 {
				if err := os.Chmod(tt.path, tt.chmod); err != nil {
					t.Fatal(err)
				}
			}
			a := &app{env: Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return tt.env[k] }}}
			root := a.root()
			serve, _, err := root.Find([]string{"serve"})
			if err != nil {
				t.Fatal(err)
			}
			if err := serve.ParseFlags(tt.flags); err != nil {
				t.Fatal(err)
			}
			err = applyServeSettings(serve, a.env.Getenv, tt.path, tt.explicit)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				f := serve.Flags().Lookup(name)
				if f == nil {
					f = serve.InheritedFlags().Lookup(name)
				}
				if got := f.Value.String(); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}
