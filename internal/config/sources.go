package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
)

// ReadFile reads a TOML config file: top-level `key = value` pairs where a
// value is a string, integer, boolean or (for repeatable keys) an array of
// them, e.g.
//
//	announce_interval = 1800
//	listen_http = ["0.0.0.0:2710", "[::]:2710"]
//
// Unknown keys, tables and lists given to single-value keys are errors naming
// the key, the file and the line. Values themselves are checked by Build.
func ReadFile(path string) (Layer, error) {
	l := Layer{Source: File, Origin: path, Values: map[string][]string{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return l, fmt.Errorf("config: %w", err)
	}
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return l, fmt.Errorf("config: %s:%d: malformed TOML: %s", path, pe.Position.Line, pe.Message)
		}
		return l, fmt.Errorf("config: %s: malformed TOML: %w", path, err)
	}
	at := func(name string) string {
		if n := keyLine(string(data), name); n > 0 {
			return path + ":" + strconv.Itoa(n)
		}
		return path
	}
	var errs []error
	for _, k := range md.Keys() {
		if len(k) != 1 {
			continue // inside a table: reported with the table
		}
		name := k[0]
		v := raw[name]
		sp := lookup(name)
		if _, isTable := v.(map[string]any); isTable || sp == nil {
			what := "unknown key"
			if isTable {
				what = "unknown table"
			}
			errs = append(errs, fmt.Errorf("config: %s: %s %q: want one of the keys in docs/CONFIGURATION.md, at the top level", at(name), what, name))
			continue
		}
		var vals []string
		if arr, ok := v.([]any); ok {
			if !sp.Repeatable {
				errs = append(errs, fmt.Errorf("config: %s = %s (from %s): want a single value, not a list", name, sp.mask(showList(arr)), at(name)))
				continue
			}
			vals = make([]string, 0, len(arr))
			for _, e := range arr {
				s, ok := tomlScalar(e)
				if !ok {
					break
				}
				vals = append(vals, s)
			}
			if len(vals) != len(arr) {
				errs = append(errs, fmt.Errorf("config: %s = %s (from %s): want a list of strings or numbers", name, sp.mask(showList(arr)), at(name)))
				continue
			}
		} else {
			s, ok := tomlScalar(v)
			if !ok {
				errs = append(errs, fmt.Errorf("config: %s (from %s): want a string, number or boolean", name, at(name)))
				continue
			}
			vals = []string{s}
		}
		l.Values[name] = vals
	}
	return l, errors.Join(errs...)
}

// tomlScalar turns a TOML string, integer, float, boolean or date into the
// raw string Build parses.
func tomlScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	case []any, map[string]any:
		return "", false
	}
	return fmt.Sprint(v), true
}

// showList prints a TOML array for messages.
func showList(arr []any) string {
	parts := make([]string, len(arr))
	for i, e := range arr {
		if s, ok := e.(string); ok {
			parts[i] = strconv.Quote(s)
		} else {
			parts[i] = fmt.Sprint(e)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// keyLine finds the line that sets key (or opens table key) in a TOML text;
// 0 when not found.
func keyLine(text, key string) int {
	for i, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		t = strings.TrimSpace(strings.TrimLeft(t, "["))
		for _, cand := range []string{key, `"` + key + `"`, "'" + key + "'"} {
			rest, ok := strings.CutPrefix(t, cand)
			if !ok {
				continue
			}
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, "]") || strings.HasPrefix(rest, ".") {
				return i + 1
			}
		}
	}
	return 0
}

// FromEnv takes XBT_<KEY> variables naming a known key from environ
// ("NAME=value" strings, as os.Environ returns). Other XBT_ variables
// (XBT_CONFIG, XBT_TEST_DSN, ...) are ignored. Values of repeatable keys are
// comma-separated; an empty value sets an empty list.
func FromEnv(environ []string) Layer {
	l := Layer{Source: Env, Origin: "environment", Values: map[string][]string{}}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "XBT_") {
			continue
		}
		sp := lookup(strings.ToLower(name[len("XBT_"):]))
		if sp == nil || sp.Env() != name {
			continue
		}
		if sp.Repeatable {
			l.Values[sp.Name] = splitList(val)
		} else {
			l.Values[sp.Name] = []string{val}
		}
	}
	return l
}

// splitList splits comma-separated values, trimming spaces and dropping
// empty ones.
func splitList(vals ...string) []string {
	out := []string{}
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// FromDatabase takes xbt_config rows (name -> values in row order; several
// rows with one name give several values). Names that are not keys (a
// catalog's own rows) and keys that may not come from the database (dsn,
// listen_http, ...) are ignored. For a single-value key the last row wins.
func FromDatabase(rows map[string][]string) Layer {
	l := Layer{Source: Database, Origin: "xbt_config", Values: map[string][]string{}}
	for name, vals := range rows {
		sp := lookup(name)
		if sp == nil || !sp.FromDatabase || len(vals) == 0 {
			continue
		}
		l.Values[name] = append([]string(nil), vals...)
	}
	return l
}

// ConfigFlag is the flag naming the config file; XBT_CONFIG is its
// environment variable.
const ConfigFlag = "config"

// Flags returns one flag per key (--announce-interval, --listen-http, ...;
// StringSlice for repeatable keys, which also take comma-separated values)
// plus --config. The flags have no EnvVars: the environment is its own layer.
// Every value, booleans included, is a string checked by Build, so
// `--gzip-scrape 0` and `--gzip-scrape=false` both work.
func Flags() []cli.Flag {
	flags := []cli.Flag{&cli.StringFlag{
		Name:      ConfigFlag,
		Usage:     "read settings from this TOML file (default: $XBT_CONFIG)",
		TakesFile: true,
	}}
	for i := range specTable {
		sp := &specTable[i]
		usage := sp.Help
		if sp.FromDatabase {
			usage += " [xbt_config]"
		}
		if sp.Repeatable {
			flags = append(flags, &cli.StringSliceFlag{Name: sp.Flag(), Usage: usage, DefaultText: sp.Default})
		} else {
			flags = append(flags, &cli.StringFlag{Name: sp.Flag(), Usage: usage, DefaultText: sp.Default})
		}
	}
	return flags
}

// FromFlags takes the flags the user actually set on the command line.
func FromFlags(c *cli.Context) Layer {
	l := Layer{Source: Flag, Origin: "command line", Values: map[string][]string{}}
	if c == nil {
		return l
	}
	for i := range specTable {
		sp := &specTable[i]
		name := sp.Flag()
		if !c.IsSet(name) {
			continue
		}
		if sp.Repeatable {
			l.Values[sp.Name] = splitList(c.StringSlice(name)...)
		} else {
			l.Values[sp.Name] = []string{c.String(name)}
		}
	}
	return l
}

// Sources are the operator's layers, read once at start: everything above
// the database.
type Sources struct {
	File, Env, Flags Layer
}

// LoadSources reads the environment, the flags set on c (may be nil) and the
// config file named by --config, else by XBT_CONFIG in environ (none when
// neither is set).
func LoadSources(c *cli.Context, environ []string) (Sources, error) {
	s := Sources{
		File:  Layer{Source: File, Values: map[string][]string{}},
		Env:   FromEnv(environ),
		Flags: FromFlags(c),
	}
	path := ""
	if c != nil && c.IsSet(ConfigFlag) {
		path = c.String(ConfigFlag)
	} else {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "XBT_CONFIG="); ok {
				path = v
			}
		}
	}
	if path == "" {
		return s, nil
	}
	f, err := ReadFile(path)
	if err != nil {
		return s, err
	}
	s.File = f
	return s, nil
}

// Build returns defaults -> db (xbt_config rows, may be nil) -> file -> env
// -> flags. Call it with nil before the database is open (to get the dsn and
// catch operator mistakes early), then with the rows at every
// read_config_interval.
func (s Sources) Build(db map[string][]string) (Config, error) {
	return Build(FromDatabase(db), s.File, s.Env, s.Flags)
}
