package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/netshare/netshare/internal/trust"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// DefaultServeConfig is the daemon's configuration file. It is optional:
// without it, flags, the environment and the defaults decide.
const DefaultServeConfig = "/etc/netshare/netshare.conf"

// serveSettings are the names of the settings 'netshare serve' takes from
// its flags, the environment (NETSHARE_ and the name in capitals, - as _)
// and the configuration file (name = value), in that order of precedence.
var serveSettings = []string{"socket", "state-dir", "backend", "log-level", "log-format", "http", "http-remote", "http-public", "dns-cache"}

// envName is the environment variable of a setting.
func envName(setting string) string {
	return "NETSHARE_" + strings.ToUpper(strings.ReplaceAll(setting, "-", "_"))
}

// applyServeSettings gives every setting of c not set by a flag its value
// from the environment, or else from the configuration file at path. A
// missing file is no error unless explicit (given with --config); an
// unknown name, a name given twice or a bad value is, naming where it was
// found.
func applyServeSettings(c *cobra.Command, getenv func(string) string, path string, explicit bool) error {
	file, err := readServeConfig(path)
	if err != nil && (explicit || !errors.Is(err, fs.ErrNotExist)) {
		return err
	}
	for _, name := range serveSettings {
		f := c.Flags().Lookup(name)
		if f == nil {
			f = c.InheritedFlags().Lookup(name)
		}
		if f == nil {
			return fmt.Errorf("setting %q has no flag", name) // a mistake here, not the user's
		}
		if f.Changed {
			continue
		}
		var value, from string
		if v := getenv(envName(name)); v != "" {
			value, from = v, "environment variable "+envName(name)
		} else if s, ok := file[name]; ok {
			value, from = s.value, fmt.Sprintf("%s:%d", path, s.line)
		} else {
			continue
		}
		if err := f.Value.Set(value); err != nil {
			return fmt.Errorf("%s: %s %q: %w", from, name, value, err)
		}
		f.Changed = true
	}
	return nil
}

type setting struct {
	value string
	line  int
}

// readServeConfig reads a configuration file: "name = value" lines, with
// blank lines and lines starting with # ignored; a value may be quoted
// with "". The file must be root's (or the daemon user's) and writable by
// no one else: whoever writes it chooses where the daemon keeps its state.
func readServeConfig(path string) (map[string]setting, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	if err := trust.File(f, false); err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	out := map[string]setting{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: %q is not name = value", path, n, line)
		}
		if !slices.Contains(serveSettings, name) {
			return nil, fmt.Errorf("%s:%d: %q is not a setting; the settings are %s", path, n, name, strings.Join(serveSettings, ", "))
		}
		if prev, dup := out[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is set again (first on line %d)", path, n, name, prev.line)
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		out[name] = setting{value, n}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// settingsHelp is the serve command's help on where settings come from.
func settingsHelp() string {
	var b strings.Builder
	b.WriteString("Each setting comes from its flag, else from the environment, else from\n")
	b.WriteString("the configuration file (--config, default " + DefaultServeConfig + ", optional),\n")
	b.WriteString("one \"name = value\" a line:\n\n")
	for _, s := range serveSettings {
		fmt.Fprintf(&b, "  %-12s %s\n", s, envName(s))
	}
	return b.String()
}

var _ pflag.Value = (*logFormat)(nil)

// logFormat is text or json.
type logFormat string

func (l *logFormat) String() string { return string(*l) }
func (l *logFormat) Type() string   { return "format" }
func (l *logFormat) Set(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("give text or json")
	}
	*l = logFormat(s)
	return nil
}

// logLevel is a slog level by name.
type logLevel struct{ slog.Level }

func (l *logLevel) Type() string { return "level" }
func (l *logLevel) Set(s string) error {
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("give debug, info, warn or error")
	}
	return nil
}
