package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

var update = flag.Bool("update", false, "rewrite the key table in docs/CONFIGURATION.md")

// lines splits a joined error into its lines (nil: none).
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs a real cli.App with Flags() and args, loading the sources and
// building with db inside its action.
func run(t *testing.T, args, environ []string, db map[string][]string) (Config, error) {
	t.Helper()
	var (
		cfg  Config
		berr error
	)
	app := &cli.App{
		Name:      "x",
		Flags:     Flags(),
		Writer:    io.Discard,
		ErrWriter: io.Discard,
		Action: func(c *cli.Context) error {
			s, err := LoadSources(c, environ)
			if err != nil {
				berr = err
				return nil
			}
			cfg, berr = s.Build(db)
			return nil
		},
	}
	if err := app.Run(append([]string{"x"}, args...)); err != nil {
		t.Fatalf("app.Run(%q): %v", args, err)
	}
	return cfg, berr
}

func TestDefaultsMatchXBT(t *testing.T) {
	want := map[string]string{
		"announce_interval":        "1800",
		"anonymous_announce":       "0",
		"anonymous_scrape":         "0",
		"auto_register":            "0",
		"clean_up_interval":        "60",
		"full_scrape":              "0",
		"gzip_scrape":              "1",
		"log_access":               "0",
		"log_announce":             "0",
		"log_scrape":               "0",
		"read_config_interval":     "60",
		"up_multi":                 "100",
		"down_multi":               "100",
		"read_db_interval":         "60",
		"scrape_interval":          "0",
		"write_db_interval":        "15",
		"listen_port":              "2710",
		"listen_ipa":               "",
		"offline_message":          "",
		"redirect_url":             "",
		"torrent_pass_private_key": "",
		"table_files":              "xbt_files",
		"table_files_users":        "xbt_files_users",
		"table_users":              "xbt_users",
		"table_announce_log":       "xbt_announce_log",
		"table_scrape_log":         "xbt_scrape_log",
		"table_snatched":           "xbt_snatched",
		"table_deny_from_hosts":    "xbt_deny_from_hosts",
		"column_files_fid":         "fid",
		"column_files_leechers":    "leechers",
		"column_files_seeders":     "seeders",
		"column_files_completed":   "completed",
		"column_users_uid":         "uid",
		"dsn":                      "",
		"listen_http":              "",
		"listen_udp":               "",
		"admin_listen":             "",
		"trusted_proxies":          "",
		"max_numwant":              "50",
		"default_numwant":          "50",
		"max_request_bytes":        "8192",
		"max_connections":          "8192",
		"max_connections_per_ip":   "256",
		"max_credit_per_announce":  "1099511627776",
		"change_poll_interval":     "2s",
		"state_file":               "xbt-tracker.state",
		"http_event_loops":         "1",
		"cluster":                  "0",
		"read_timeout":             "10s",
		"idle_timeout":             "1m",
		"shutdown_timeout":         "30s",
		"ledger_max_entries":       "5000000",
		"gc_percent":               "25",
		"log_level":                "info",
	}
	keys := Keys()
	if len(keys) != len(want) {
		t.Errorf("Keys() has %d keys, the test knows %d", len(keys), len(want))
	}
	for _, k := range keys {
		w, ok := want[k.Name]
		if !ok {
			t.Errorf("key %s not in the test", k.Name)
			continue
		}
		if k.Default != w {
			t.Errorf("%s default = %q, want %q", k.Name, k.Default, w)
		}
	}

	c := Defaults()
	typed := []struct {
		name      string
		got, want any
	}{
		{"AnnounceInterval", c.AnnounceInterval, 1800 * time.Second},
		{"AnonymousAnnounce", c.AnonymousAnnounce, false},
		{"AnonymousScrape", c.AnonymousScrape, false},
		{"AutoRegister", c.AutoRegister, false},
		{"CleanUpInterval", c.CleanUpInterval, 60 * time.Second},
		{"FullScrape", c.FullScrape, false},
		{"GzipScrape", c.GzipScrape, true},
		{"LogAccess", c.LogAccess, false},
		{"LogAnnounce", c.LogAnnounce, false},
		{"LogScrape", c.LogScrape, false},
		{"ReadConfigInterval", c.ReadConfigInterval, 60 * time.Second},
		{"UpMulti", c.UpMulti, 100},
		{"DownMulti", c.DownMulti, 100},
		{"ReadDBInterval", c.ReadDBInterval, 60 * time.Second},
		{"ScrapeInterval", c.ScrapeInterval, time.Duration(0)},
		{"WriteDBInterval", c.WriteDBInterval, 15 * time.Second},
		{"ListenPorts", c.ListenPorts, []int{2710}},
		{"ListenIPAs", c.ListenIPAs, []netip.Addr{}},
		{"OfflineMessage", c.OfflineMessage, ""},
		{"RedirectURL", c.RedirectURL, ""},
		{"TorrentPassPrivateKey", c.TorrentPassPrivateKey, ""},
		{"TableFiles", c.TableFiles, "xbt_files"},
		{"TableFilesUsers", c.TableFilesUsers, "xbt_files_users"},
		{"TableUsers", c.TableUsers, "xbt_users"},
		{"TableAnnounceLog", c.TableAnnounceLog, "xbt_announce_log"},
		{"TableScrapeLog", c.TableScrapeLog, "xbt_scrape_log"},
		{"TableSnatched", c.TableSnatched, "xbt_snatched"},
		{"TableDenyFromHosts", c.TableDenyFromHosts, "xbt_deny_from_hosts"},
		{"ColumnFilesFID", c.ColumnFilesFID, "fid"},
		{"ColumnFilesLeechers", c.ColumnFilesLeechers, "leechers"},
		{"ColumnFilesSeeders", c.ColumnFilesSeeders, "seeders"},
		{"ColumnFilesCompleted", c.ColumnFilesCompleted, "completed"},
		{"ColumnUsersUID", c.ColumnUsersUID, "uid"},
		{"DSN", c.DSN, ""},
		{"ListenHTTP", c.ListenHTTP, []string{}},
		{"ListenUDP", c.ListenUDP, []string{}},
		{"AdminListen", c.AdminListen, ""},
		{"TrustedProxies", c.TrustedProxies, []netip.Prefix{}},
		{"MaxNumwant", c.MaxNumwant, 50},
		{"DefaultNumwant", c.DefaultNumwant, 50},
		{"MaxRequestBytes", c.MaxRequestBytes, 8192},
		{"MaxConnections", c.MaxConnections, 8192},
		{"MaxConnectionsPerIP", c.MaxConnectionsPerIP, 256},
		{"MaxCreditPerAnnounce", c.MaxCreditPerAnnounce, 1 << 40},
		{"ChangePollInterval", c.ChangePollInterval, 2 * time.Second},
		{"StateFile", c.StateFile, "xbt-tracker.state"},
		{"HTTPEventLoops", c.HTTPEventLoops, true},
		{"Cluster", c.Cluster, false},
		{"ReadTimeout", c.ReadTimeout, 10 * time.Second},
		{"IdleTimeout", c.IdleTimeout, 60 * time.Second},
		{"ShutdownTimeout", c.ShutdownTimeout, 30 * time.Second},
		{"LedgerMaxEntries", c.LedgerMaxEntries, 5_000_000},
		{"GCPercent", c.GCPercent, 25},
		{"LogLevel", c.LogLevel, "info"},
	}
	for _, tc := range typed {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("Defaults().%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	if n := reflect.TypeOf(c).NumField() - 1; n != len(typed) { // -1: origins
		t.Errorf("Config has %d key fields, the test checks %d", n, len(typed))
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Defaults().Validate() = %v", err)
	}
	if got, want := c.HTTPAddrs(), []string{":2710"}; !slices.Equal(got, want) {
		t.Errorf("Defaults().HTTPAddrs() = %q, want %q", got, want)
	}
	if got, err := Build(); err != nil || !reflect.DeepEqual(got.ListenPorts, c.ListenPorts) {
		t.Errorf("Build() = %v, %v", got.ListenPorts, err)
	}
}

func TestKeysTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if seen[k.Name] {
			t.Errorf("duplicate key %s", k.Name)
		}
		seen[k.Name] = true
		if !isIdent(k.Name) || strings.ToLower(k.Name) != k.Name {
			t.Errorf("key %q is not snake_case", k.Name)
		}
		if k.Help == "" || !strings.HasSuffix(k.Help, ".") {
			t.Errorf("key %s: help %q should be a sentence", k.Name, k.Help)
		}
	}
	for _, name := range []string{"dsn", "listen_http", "listen_udp", "admin_listen", "trusted_proxies", "log_level"} {
		if lookup(name).FromDatabase {
			t.Errorf("%s must not come from xbt_config", name)
		}
	}
	for _, name := range []string{"dsn", "torrent_pass_private_key"} {
		if !lookup(name).Secret {
			t.Errorf("%s must be secret", name)
		}
	}
	if k := lookup("listen_port"); !k.Repeatable || !k.FromDatabase {
		t.Errorf("listen_port must be repeatable and FromDatabase: %+v", k.Key)
	}
	if got := lookup("announce_interval").Env(); got != "XBT_ANNOUNCE_INTERVAL" {
		t.Errorf("Env() = %s", got)
	}
	if got := lookup("listen_http").Flag(); got != "listen-http" {
		t.Errorf("Flag() = %s", got)
	}

	flags := Flags()
	if len(flags) != len(Keys())+1 {
		t.Errorf("Flags() has %d flags, want one per key plus --config", len(flags))
	}
	names := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			if names[n] {
				t.Errorf("duplicate flag %s", n)
			}
			names[n] = true
		}
		if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 {
			t.Errorf("flag %v has EnvVars %v; the environment is its own layer", f.Names(), ev.GetEnvVars())
		}
		if sp := lookup(strings.ReplaceAll(f.Names()[0], "-", "_")); sp != nil {
			_, isSlice := f.(*cli.StringSliceFlag)
			if isSlice != sp.Repeatable {
				t.Errorf("flag %s: StringSlice = %v, repeatable = %v", f.Names()[0], isSlice, sp.Repeatable)
			}
		}
	}
	if !names["config"] || !names["announce-interval"] || !names["listen-http"] || !names["dsn"] {
		t.Errorf("missing flags in %v", names)
	}
	for _, s := range []Source{Default, Database, File, Env, Flag, Source(9)} {
		if s.String() == "" {
			t.Errorf("Source(%d).String() is empty", s)
		}
	}
}

func TestPrecedence(t *testing.T) {
	db := map[string][]string{"announce_interval": {"100"}, "listen_port": {"2710", "2711"}}
	file := writeFile(t, "xbt.toml", "announce_interval = 200\nlisten_port = [3000]\n")
	env := []string{"XBT_ANNOUNCE_INTERVAL=300", "XBT_CONFIG=" + file}
	flagArgs := []string{"--announce-interval", "400"}

	tests := []struct {
		name    string
		args    []string
		environ []string
		db      map[string][]string
		want    time.Duration
		wantSrc Source
		where   string
	}{
		{"flag wins over env, file, db", flagArgs, env, db, 400, Flag, "--announce-interval"},
		{"no flag: env wins", nil, env, db, 300, Env, "XBT_ANNOUNCE_INTERVAL"},
		{"no flag, no env: file wins", []string{"--config", file}, nil, db, 200, File, file},
		{"file from XBT_CONFIG", nil, []string{"XBT_CONFIG=" + file}, db, 200, File, file},
		{"only db", nil, nil, db, 100, Database, "xbt_config"},
		{"nothing: default", nil, nil, nil, 1800, Default, "default"},
		{"flag over db alone", flagArgs, nil, db, 400, Flag, "--announce-interval"},
		{"env over file", nil, []string{"XBT_ANNOUNCE_INTERVAL=300"}, nil, 300, Env, "XBT_ANNOUNCE_INTERVAL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := run(t, tc.args, tc.environ, tc.db)
			if err != nil {
				t.Fatal(err)
			}
			if c.AnnounceInterval != tc.want*time.Second {
				t.Errorf("AnnounceInterval = %v, want %ds", c.AnnounceInterval, tc.want)
			}
			if src, where := c.SourceOf("announce_interval"); src != tc.wantSrc || where != tc.where {
				t.Errorf("SourceOf = %v %q, want %v %q", src, where, tc.wantSrc, tc.where)
			}
		})
	}

	// --config beats XBT_CONFIG.
	other := writeFile(t, "other.toml", "announce_interval = 250\n")
	c, err := run(t, []string{"--config", other}, []string{"XBT_CONFIG=" + file}, nil)
	if err != nil || c.AnnounceInterval != 250*time.Second {
		t.Errorf("--config over XBT_CONFIG: %v, %v", c.AnnounceInterval, err)
	}
	// A missing file named by --config is an error.
	if _, err := run(t, []string{"--config", filepath.Join(t.TempDir(), "nope.toml")}, nil, nil); err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Errorf("missing config file: %v", err)
	}
}

func TestListenPorts(t *testing.T) {
	tests := []struct {
		name      string
		layers    []Layer
		http, udp []string
	}{
		{"xbt_config rows are several ports", []Layer{FromDatabase(map[string][]string{"listen_port": {"2711", "2710", "2711"}})},
			[]string{":2710", ":2711"}, []string{":2710", ":2711"}},
		{"explicit listen_http overrides, udp still from ports",
			[]Layer{FromDatabase(map[string][]string{"listen_port": {"2710", "2711"}}), FromEnv([]string{"XBT_LISTEN_HTTP=127.0.0.1:8080, [::1]:8080"})},
			[]string{"127.0.0.1:8080", "[::1]:8080"}, []string{":2710", ":2711"}},
		{"higher layer replaces the list",
			[]Layer{FromDatabase(map[string][]string{"listen_port": {"2710", "2711"}}), {Source: File, Values: map[string][]string{"listen_port": {"3000"}}}},
			[]string{":3000"}, []string{":3000"}},
		{"listen_ipa binds the ports",
			[]Layer{FromDatabase(map[string][]string{"listen_ipa": {"127.0.0.1", "::1", "*"}})},
			[]string{"127.0.0.1:2710", "[::1]:2710"}, []string{"127.0.0.1:2710", "[::1]:2710"}},
		{"udp off",
			[]Layer{FromEnv([]string{"XBT_LISTEN_UDP=off"})},
			[]string{":2710"}, []string{}},
		{"empty higher list reverts to ports",
			[]Layer{{Source: File, Values: map[string][]string{"listen_http": {"127.0.0.1:1"}}}, FromEnv([]string{"XBT_LISTEN_HTTP="})},
			[]string{":2710"}, []string{":2710"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Build(tc.layers...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.HTTPAddrs(); !slices.Equal(got, tc.http) {
				t.Errorf("HTTPAddrs() = %q, want %q", got, tc.http)
			}
			if got := c.UDPAddrs(); !slices.Equal(got, tc.udp) {
				t.Errorf("UDPAddrs() = %q, want %q", got, tc.udp)
			}
		})
	}
}

func TestInvalidValues(t *testing.T) {
	file := Layer{Source: File, Origin: "/etc/xbt.toml"}
	db := Layer{Source: Database, Origin: "xbt_config"}
	env := Layer{Source: Env, Origin: "environment"}
	fl := Layer{Source: Flag, Origin: "command line"}
	with := func(l Layer, kv ...string) Layer {
		l.Values = map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			l.Values[kv[i]] = append(l.Values[kv[i]], kv[i+1])
		}
		return l
	}
	tests := []struct {
		name   string
		layers []Layer
		want   []string
	}{
		{"seconds", []Layer{with(env, "announce_interval", "abc")},
			[]string{`config: announce_interval = "abc" (from XBT_ANNOUNCE_INTERVAL): want a whole number of seconds from 1 to 86400`}},
		{"seconds zero", []Layer{with(db, "write_db_interval", "0")},
			[]string{`config: write_db_interval = "0" (from xbt_config): want a whole number of seconds from 1 to 86400`}},
		{"seconds negative", []Layer{with(file, "scrape_interval", "-1")},
			[]string{`config: scrape_interval = "-1" (from /etc/xbt.toml): want a whole number of seconds from 0 to 86400`}},
		{"identifier", []Layer{with(db, "table_users", "xbt_users; drop")},
			[]string{`config: table_users = "xbt_users; drop" (from xbt_config): want a name of letters, digits and _ only`}},
		{"identifier empty", []Layer{with(fl, "column_users_uid", "")},
			[]string{`config: column_users_uid = "" (from --column-users-uid): want a name of letters, digits and _ only`}},
		{"bool", []Layer{with(fl, "gzip_scrape", "yes")},
			[]string{`config: gzip_scrape = "yes" (from --gzip-scrape): want 0 or 1 (or true/false)`}},
		{"bool 2", []Layer{with(db, "full_scrape", "2")},
			[]string{`config: full_scrape = "2" (from xbt_config): want 0 or 1 (or true/false)`}},
		{"number", []Layer{with(env, "max_numwant", "0")},
			[]string{`config: max_numwant = "0" (from XBT_MAX_NUMWANT): want a whole number from 1 to 1000`}},
		{"number too big", []Layer{with(file, "max_request_bytes", "99999999")},
			[]string{`config: max_request_bytes = "99999999" (from /etc/xbt.toml): want a whole number from 1024 to 1048576`}},
		{"duration", []Layer{with(env, "read_timeout", "10 parsecs")},
			[]string{`config: read_timeout = "10 parsecs" (from XBT_READ_TIMEOUT): want a duration such as 10s or 1m30s (a bare number means seconds) from 100ms to 10m`}},
		{"duration out of range", []Layer{with(fl, "shutdown_timeout", "2h")},
			[]string{`config: shutdown_timeout = "2h" (from --shutdown-timeout): want a duration such as 10s or 1m30s (a bare number means seconds) from 1s to 1h`}},
		{"port", []Layer{with(db, "listen_port", "2710", "listen_port", "70000")},
			[]string{`config: listen_port = "70000" (from xbt_config): want a port number from 1 to 65535`}},
		{"listen address", []Layer{with(fl, "listen_http", "2710")},
			[]string{`config: listen_http = "2710" (from --listen-http): want host:port such as 0.0.0.0:2710, [::]:2710 or :2710, or off`}},
		{"ipv6 without brackets", []Layer{with(env, "listen_udp", "::1:2710")},
			[]string{`config: listen_udp = "::1:2710" (from XBT_LISTEN_UDP): want host:port such as 0.0.0.0:2710, [::]:2710 or :2710, or off`}},
		{"off with addresses", []Layer{with(env, "listen_udp", ":2710", "listen_udp", "off")},
			[]string{`config: listen_udp = "off" (from XBT_LISTEN_UDP): want off alone, not together with addresses`}},
		{"listen_ipa", []Layer{with(db, "listen_ipa", "localhost")},
			[]string{`config: listen_ipa = "localhost" (from xbt_config): want an IP address such as 192.0.2.1 or ::1, or *`}},
		{"trusted proxy", []Layer{with(env, "trusted_proxies", "10.0.0.0/8", "trusted_proxies", "::1", "trusted_proxies", "bad")},
			[]string{`config: trusted_proxies = "bad" (from XBT_TRUSTED_PROXIES): want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1`}},
		{"admin_listen", []Layer{with(file, "admin_listen", "localhost")},
			[]string{`config: admin_listen = "localhost" (from /etc/xbt.toml): want host:port such as 127.0.0.1:2711 or [::1]:2711, or empty`}},
		{"redirect_url", []Layer{with(db, "redirect_url", "example.org")},
			[]string{`config: redirect_url = "example.org" (from xbt_config): want an http:// or https:// URL, or empty`}},
		{"log_level", []Layer{with(fl, "log_level", "loud")},
			[]string{`config: log_level = "loud" (from --log-level): want debug, info, warn or error`}},
		{"dsn, password masked", []Layer{with(env, "dsn", "xbt:hunter2@tcp(127.0.0.1:3306")},
			[]string{`config: dsn = "xbt:***@tcp(127.0.0.1:3306" (from XBT_DSN): want a go-sql-driver/mysql DSN such as user:password@tcp(127.0.0.1:3306)/xbt (invalid DSN: missing the slash separating the database name)`}},
		{"default_numwant above max_numwant", []Layer{with(file, "max_numwant", "40"), with(env, "default_numwant", "80")},
			[]string{`config: default_numwant = "80" (from XBT_DEFAULT_NUMWANT): want a whole number from 1 to max_numwant (40)`}},
		{"no ports, no addresses", []Layer{{Source: File, Origin: "/etc/xbt.toml", Values: map[string][]string{"listen_port": {}}}},
			[]string{`config: listen_port = "" (from /etc/xbt.toml): want at least one port from 1 to 65535 when listen_http or listen_udp is empty`}},
		{"everything off", []Layer{with(env, "listen_http", "off"), with(fl, "listen_udp", "OFF")},
			[]string{`config: listen_udp = "off" (from --listen-udp): want at least one listener, and listen_http is off too`}},
		{"admin on an HTTP listener", []Layer{with(env, "admin_listen", ":2710")},
			[]string{`config: admin_listen = ":2710" (from XBT_ADMIN_LISTEN): want an address that is not one of the HTTP listeners (leave empty to serve /statistics and /metrics there)`}},
		{"cluster with UDP", []Layer{with(fl, "cluster", "1"), with(env, "listen_udp", "127.0.0.1:2710")},
			[]string{`config: listen_udp = "127.0.0.1:2710" (from XBT_LISTEN_UDP): want off when cluster is 1: UDP announces cannot be routed to the instance that owns the torrent (docs/CLUSTER.md, "UDP")`}},
		{"unknown key in a hand-built layer", []Layer{with(env, "announce_intervall", "1")},
			[]string{`config: unknown key "announce_intervall" (from XBT_ANNOUNCE_INTERVALL)`}},
		{"several bad values: one line each", []Layer{
			with(db, "table_users", "a b", "gzip_scrape", "x"),
			with(env, "announce_interval", "abc", "trusted_proxies", "bad1,10.0.0.0/8", "trusted_proxies", "bad2"),
		}, []string{
			`config: announce_interval = "abc" (from XBT_ANNOUNCE_INTERVAL): want a whole number of seconds from 1 to 86400`,
			`config: gzip_scrape = "x" (from xbt_config): want 0 or 1 (or true/false)`,
			`config: table_users = "a b" (from xbt_config): want a name of letters, digits and _ only`,
			`config: trusted_proxies = "bad1,10.0.0.0/8" (from XBT_TRUSTED_PROXIES): want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1`,
			`config: trusted_proxies = "bad2" (from XBT_TRUSTED_PROXIES): want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1`,
		}},
		{"a bad xbt_config row overridden above is no error", []Layer{with(db, "gzip_scrape", "yes", "announce_interval", "-5"), with(file, "gzip_scrape", "0"), with(fl, "announce_interval", "60")}, nil},
		{"rows that are not ours are ignored", []Layer{FromDatabase(map[string][]string{"dsn": {"evil"}, "site_name": {"x"}, "listen_http": {"bad"}})}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.layers...)
			got := lines(err)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Build errors:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestValidateHandBuilt(t *testing.T) {
	c := Defaults()
	c.AnnounceInterval = 1500 * time.Millisecond
	c.TableFiles = "files`"
	c.TrustedProxies = []netip.Prefix{{}}
	c.LogLevel = "fatal"
	want := []string{
		`config: announce_interval = "1.5s" (from code): want a whole number of seconds from 1 to 86400`,
		`config: table_files = "files` + "`" + `" (from code): want a name of letters, digits and _ only`,
		`config: trusted_proxies = "invalid Prefix" (from code): want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1`,
		`config: log_level = "fatal" (from code): want debug, info, warn or error`,
	}
	if got := lines(c.Validate()); !slices.Equal(got, want) {
		t.Errorf("Validate:\n got %q\nwant %q", got, want)
	}
	d := Defaults()
	d.DefaultNumwant = 60
	if got := lines(d.Validate()); !slices.Equal(got, []string{`config: default_numwant = "60" (from code): want a whole number from 1 to max_numwant (50)`}) {
		t.Errorf("Validate: %q", got)
	}
}

func TestValuesParse(t *testing.T) {
	c, err := Build(Layer{Source: File, Origin: "f", Values: map[string][]string{
		"announce_interval":  {" 900 "},
		"anonymous_announce": {"TRUE"},
		"full_scrape":        {"1"},
		"gzip_scrape":        {"false"},
		"read_timeout":       {"15"},
		"idle_timeout":       {"1m30s"},
		"shutdown_timeout":   {"250ms"}, // below 1s: rejected below
		"trusted_proxies":    {"10.1.2.3/8", "::1", "192.0.2.7", "::1"},
		"log_level":          {"WARN"},
		"offline_message":    {" down, back soon "},
		"redirect_url":       {"https://example.org/"},
		"dsn":                {"xbt:p@ss:w/rd@tcp([::1]:3306)/xbt?parseTime=true"},
		"listen_http":        {"[::]:2710", "0.0.0.0:2710", "localhost:0", "[fe80::1%eth0]:80"},
		"table_files":        {"xbt_torrents"},
	}})
	if got := lines(err); !slices.Equal(got, []string{`config: shutdown_timeout = "250ms" (from f): want a duration such as 10s or 1m30s (a bare number means seconds) from 1s to 1h`}) {
		t.Fatalf("errors: %q", got)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"AnnounceInterval", c.AnnounceInterval, 900 * time.Second},
		{"AnonymousAnnounce", c.AnonymousAnnounce, true},
		{"FullScrape", c.FullScrape, true},
		{"GzipScrape", c.GzipScrape, false},
		{"ReadTimeout", c.ReadTimeout, 15 * time.Second},
		{"IdleTimeout", c.IdleTimeout, 90 * time.Second},
		{"ShutdownTimeout (kept default)", c.ShutdownTimeout, 30 * time.Second},
		{"TrustedProxies", c.TrustedProxies, []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.0.2.7/32")}},
		{"LogLevel", c.LogLevel, "warn"},
		{"OfflineMessage (verbatim)", c.OfflineMessage, " down, back soon "},
		{"RedirectURL", c.RedirectURL, "https://example.org/"},
		{"DSN", c.DSN, "xbt:p@ss:w/rd@tcp([::1]:3306)/xbt?parseTime=true"},
		{"ListenHTTP", c.ListenHTTP, []string{"[::]:2710", "0.0.0.0:2710", "localhost:0", "[fe80::1%eth0]:80"}},
		{"TableFiles", c.TableFiles, "xbt_torrents"},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
		err  string
	}{
		{[]string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, ""},
		{[]string{"::1"}, []string{"::1/128"}, ""},
		{[]string{"127.0.0.1", "2001:db8::/32"}, []string{"127.0.0.1/32", "2001:db8::/32"}, ""},
		{[]string{"10.0.0.0/8", "::1", "bad"}, nil, `config: trusted_proxies = "bad" (from XBT_TRUSTED_PROXIES): want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1`},
		{[]string{"10.0.0.0/33"}, nil, `config: trusted_proxies = "10.0.0.0/33" (from XBT_TRUSTED_PROXIES): want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1`},
		{[]string{"fe80::1%eth0"}, nil, `config: trusted_proxies = "fe80::1%eth0" (from XBT_TRUSTED_PROXIES): want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			c, err := Build(FromEnv([]string{"XBT_TRUSTED_PROXIES=" + strings.Join(tc.in, ",")}))
			if tc.err != "" {
				if got := lines(err); !slices.Equal(got, []string{tc.err}) {
					t.Errorf("errors %q, want %q", got, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range c.TrustedProxies {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("TrustedProxies = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteMasksSecrets(t *testing.T) {
	const key = "uBm6upQ2RziQL6QkYUcTp3XNbpL"
	const password = "hunter2@x"
	c, err := Build(
		FromDatabase(map[string][]string{"torrent_pass_private_key": {key}, "announce_interval": {"900"}}),
		FromEnv([]string{"XBT_DSN=xbt:" + password + "@tcp(127.0.0.1:3306)/xbt", "XBT_LISTEN_HTTP=[::]:2710", "XBT_OFFLINE_MESSAGE=say \"hi\"\n"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, key) || strings.Contains(out, "hunter2") {
		t.Fatalf("secret leaked:\n%s", out)
	}
	for _, want := range []string{
		"announce_interval = 900  # from xbt_config\n",
		"torrent_pass_private_key = \"***\"  # from xbt_config\n",
		"dsn = \"xbt:***@tcp(127.0.0.1:3306)/xbt\"  # from XBT_DSN\n",
		"listen_http = [\"[::]:2710\"]  # from XBT_LISTEN_HTTP\n",
		"listen_port = [2710]\n",
		"offline_message = \"say \\\"hi\\\"\\n\"  # from XBT_OFFLINE_MESSAGE\n",
		"read_timeout = \"10s\"\n",
		"gzip_scrape = 1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Write output lacks %q:\n%s", want, out)
		}
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(Keys()) {
		t.Fatalf("Write printed %d lines, want %d", len(got), len(Keys()))
	}
	for i, k := range Keys() {
		if !strings.HasPrefix(got[i], k.Name+" = ") {
			t.Errorf("line %d = %q, want key %s (Keys() order)", i, got[i], k.Name)
		}
	}

	// The output is TOML that reads back to the same configuration (but for
	// the masked secrets).
	l, err := ReadFile(writeFile(t, "effective.toml", out))
	if err != nil {
		t.Fatal(err)
	}
	back, err := Build(l)
	if err != nil {
		t.Fatal(err)
	}
	back.origins, c.origins = nil, nil
	back.TorrentPassPrivateKey, back.DSN = c.TorrentPassPrivateKey, c.DSN
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, c)
	}
}

func TestMaskDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"root:@tcp(127.0.0.1:3306)/xbt", "root:@tcp(127.0.0.1:3306)/xbt"},
		{"root@tcp(127.0.0.1:3306)/xbt", "root@tcp(127.0.0.1:3306)/xbt"},
		{"xbt:secret@tcp(127.0.0.1:3306)/xbt", "xbt:***@tcp(127.0.0.1:3306)/xbt"},
		{"xbt:se:c@r/et@unix(/run/mysqld.sock)/xbt?parseTime=true", "xbt:***@unix(/run/mysqld.sock)/xbt?parseTime=true"},
		{"/xbt", "/xbt"},
	}
	for _, tc := range tests {
		if got := maskDSN(tc.in); got != tc.want {
			t.Errorf("maskDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadFile(t *testing.T) {
	t.Run("values", func(t *testing.T) {
		path := writeFile(t, "ok.toml", `# comment
announce_interval = 900
anonymous_announce = true
gzip_scrape = 0
offline_message = "maintenance, back at 10:00"
listen_port = [2710, 2711]
listen_http = "127.0.0.1:2710"
listen_udp = []
trusted_proxies = ["10.0.0.0/8", "::1"]
read_timeout = "5s"
idle_timeout = 120
dsn = 'xbt:pw@tcp(db:3306)/xbt'
`)
		l, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"announce_interval":  {"900"},
			"anonymous_announce": {"true"},
			"gzip_scrape":        {"0"},
			"offline_message":    {"maintenance, back at 10:00"},
			"listen_port":        {"2710", "2711"},
			"listen_http":        {"127.0.0.1:2710"},
			"listen_udp":         {},
			"trusted_proxies":    {"10.0.0.0/8", "::1"},
			"read_timeout":       {"5s"},
			"idle_timeout":       {"120"},
			"dsn":                {"xbt:pw@tcp(db:3306)/xbt"},
		}
		if l.Source != File || l.Origin != path || !reflect.DeepEqual(l.Values, want) {
			t.Errorf("ReadFile = %+v\nwant values %v", l, want)
		}
		c, err := Build(l)
		if err != nil {
			t.Fatal(err)
		}
		if c.IdleTimeout != 2*time.Minute || !c.AnonymousAnnounce || c.GzipScrape || !slices.Equal(c.UDPAddrs(), []string{":2710", ":2711"}) {
			t.Errorf("Build: %+v", c)
		}
	})

	errorCases := []struct {
		name, text string
		want       []string // %s = path
	}{
		{"unknown key", "announce_interval = 900\n\nannounce_intervall = 900\n",
			[]string{`config: %s:3: unknown key "announce_intervall": want one of the keys in docs/CONFIGURATION.md, at the top level`}},
		{"quoted unknown key", "\"bogus\" = 1\n",
			[]string{`config: %s:1: unknown key "bogus": want one of the keys in docs/CONFIGURATION.md, at the top level`}},
		{"table", "announce_interval = 900\n[tracker]\nlisten_port = 1\n",
			[]string{`config: %s:2: unknown table "tracker": want one of the keys in docs/CONFIGURATION.md, at the top level`}},
		{"list for a single value", "announce_interval = [1, 2]\n",
			[]string{`config: announce_interval = [1, 2] (from %s:1): want a single value, not a list`}},
		{"secret list masked", "torrent_pass_private_key = [\"abc\"]\n",
			[]string{`config: torrent_pass_private_key = *** (from %s:1): want a single value, not a list`}},
		{"nested list", "listen_port = [[1], [2]]\n",
			[]string{`config: listen_port = [[1], [2]] (from %s:1): want a list of strings or numbers`}},
		{"malformed", "announce_interval = 900\nlisten_port = [2710\n",
			[]string{`config: %s:2: malformed TOML: expected a comma (',') or array terminator (']'), but got end of file`}},
		{"two problems", "x = 1\ny = 2\n",
			[]string{`config: %s:1: unknown key "x": want one of the keys in docs/CONFIGURATION.md, at the top level`,
				`config: %s:2: unknown key "y": want one of the keys in docs/CONFIGURATION.md, at the top level`}},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad.toml", tc.text)
			_, err := ReadFile(path)
			var want []string
			for _, w := range tc.want {
				want = append(want, strings.ReplaceAll(w, "%s", path))
			}
			if got := lines(err); !slices.Equal(got, want) {
				t.Errorf("ReadFile errors:\n got %q\nwant %q", got, want)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.toml")
		_, err := ReadFile(path)
		if err == nil || !strings.HasPrefix(err.Error(), "config: open "+path) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadFile(missing) = %v", err)
		}
	})
	t.Run("build names the file", func(t *testing.T) {
		path := writeFile(t, "v.toml", "max_numwant = 0\n")
		l, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Build(l)
		want := fmt.Sprintf(`config: max_numwant = "0" (from %s): want a whole number from 1 to 1000`, path)
		if got := lines(err); !slices.Equal(got, []string{want}) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestLoadSourcesWithoutContext(t *testing.T) {
	path := writeFile(t, "x.toml", "max_numwant = 70\n")
	s, err := LoadSources(nil, []string{"XBT_CONFIG=" + path, "XBT_DEFAULT_NUMWANT=60"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Build(map[string][]string{"announce_interval": {"900"}})
	if err != nil || c.MaxNumwant != 70 || c.DefaultNumwant != 60 || c.AnnounceInterval != 900*time.Second {
		t.Errorf("Build = %d %d %v, %v", c.MaxNumwant, c.DefaultNumwant, c.AnnounceInterval, err)
	}
	if s.File.Origin != path {
		t.Errorf("File.Origin = %q", s.File.Origin)
	}
	s, err = LoadSources(nil, nil)
	if err != nil || s.File.Source != File || len(s.File.Values) != 0 {
		t.Errorf("no file: %+v, %v", s.File, err)
	}
	if _, err := LoadSources(nil, []string{"XBT_CONFIG=" + writeFile(t, "bad.toml", "nope = 1\n")}); err == nil {
		t.Error("a bad file is an error")
	}
}

func TestFromEnv(t *testing.T) {
	l := FromEnv([]string{
		"XBT_TEST_DSN=root:@tcp(127.0.0.1:3306)/",
		"XBT_CONFIG=/etc/xbt.toml",
		"XBT_ANNOUNCE_INTERVAL=900",
		"xbt_full_scrape=1",          // lower case: not ours
		"XBT_full_scrape=1",          // mixed case: not ours
		"XBT_LISTEN_PORT=2710, 2711", // list: comma-separated
		"XBT_OFFLINE_MESSAGE=a, b",   // single value: commas kept
		"XBT_TRUSTED_PROXIES=",       // empty list
		"ANNOUNCE_INTERVAL=1",
		"XBT_",
		"garbage",
	})
	want := map[string][]string{
		"announce_interval": {"900"},
		"listen_port":       {"2710", "2711"},
		"offline_message":   {"a, b"},
		"trusted_proxies":   {},
	}
	if l.Source != Env || !reflect.DeepEqual(l.Values, want) {
		t.Errorf("FromEnv = %+v, want %v", l, want)
	}
}

func TestFromDatabase(t *testing.T) {
	l := FromDatabase(map[string][]string{
		"announce_interval": {"900", "1000"}, // last row wins in Build
		"listen_port":       {"2710", "2711"},
		"dsn":               {"x:y@tcp(evil)/db"}, // never from the database
		"admin_listen":      {":1"},
		"site_name":         {"my catalog"}, // the catalog's own row
		"auto_register":     {},
	})
	want := map[string][]string{
		"announce_interval": {"900", "1000"},
		"listen_port":       {"2710", "2711"},
	}
	if l.Source != Database || l.Origin != "xbt_config" || !reflect.DeepEqual(l.Values, want) {
		t.Errorf("FromDatabase = %+v", l)
	}
	c, err := Build(l)
	if err != nil || c.AnnounceInterval != 1000*time.Second || c.DSN != "" {
		t.Errorf("Build = %v %q, %v", c.AnnounceInterval, c.DSN, err)
	}
}

func TestFromFlags(t *testing.T) {
	var got Layer
	app := &cli.App{
		Name:      "x",
		Flags:     Flags(),
		Writer:    io.Discard,
		ErrWriter: io.Discard,
		Action: func(c *cli.Context) error {
			got = FromFlags(c)
			return nil
		},
	}
	if err := app.Run([]string{"x", "--announce-interval", "60", "--listen-http", "127.0.0.1:1,[::1]:1", "--listen-http", "0.0.0.0:2", "--gzip-scrape=0", "--dsn", "u:p@tcp(h)/d"}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"announce_interval": {"60"},
		"listen_http":       {"127.0.0.1:1", "[::1]:1", "0.0.0.0:2"},
		"gzip_scrape":       {"0"},
		"dsn":               {"u:p@tcp(h)/d"},
	}
	if got.Source != Flag || !reflect.DeepEqual(got.Values, want) {
		t.Errorf("FromFlags = %+v, want %v", got, want)
	}

	// Flags the user did not set are absent, even with a matching variable in
	// the process environment (the flags have no EnvVars).
	t.Setenv("XBT_MAX_NUMWANT", "7")
	if err := app.Run([]string{"x"}); err != nil {
		t.Fatal(err)
	}
	if len(got.Values) != 0 {
		t.Errorf("FromFlags with no flags = %v", got.Values)
	}
	if l := FromFlags(nil); len(l.Values) != 0 || l.Source != Flag {
		t.Errorf("FromFlags(nil) = %+v", l)
	}

	// A bad flag value is reported by Build, naming the flag.
	_, err := run(t, []string{"--announce-interval", "abc"}, nil, nil)
	want1 := `config: announce_interval = "abc" (from --announce-interval): want a whole number of seconds from 1 to 86400`
	if got := lines(err); !slices.Equal(got, []string{want1}) {
		t.Errorf("got %q, want %q", got, want1)
	}
}

// docsKeyTable renders the key table of docs/CONFIGURATION.md from Keys().
func docsKeyTable() string {
	var b strings.Builder
	b.WriteString("| key | default | xbt_config | meaning |\n|---|---|---|---|\n")
	for _, k := range Keys() {
		def := "*(empty)*"
		if k.Default != "" {
			def = "`" + k.Default + "`"
		}
		db := "no"
		if k.FromDatabase {
			db = "yes"
		}
		var tags []string
		if k.Repeatable {
			tags = append(tags, "*list*")
		}
		if k.Secret {
			tags = append(tags, "*secret*")
		}
		help := strings.NewReplacer("|", `\|`, "*", `\*`, "<", "&lt;", ">", "&gt;").Replace(k.Help)
		if len(tags) > 0 {
			help = strings.Join(tags, ", ") + ". " + help
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, def, db, help)
	}
	return b.String()
}

func TestDocsKeyTable(t *testing.T) {
	const path = "../../docs/CONFIGURATION.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	const begin, end = "<!-- BEGIN KEYS", "<!-- END KEYS -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s: no %q ... %q markers", path, begin, end)
	}
	i += strings.Index(doc[i:], "\n") + 1
	table := docsKeyTable()
	if *update {
		doc = doc[:i] + table + doc[j:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc[i:j] != table {
		t.Errorf("%s: key table is out of date with Keys(); run: go test ./internal/config -run TestDocsKeyTable -update", path)
	}
	for _, k := range Keys() {
		if !strings.Contains(doc, "`"+k.Name+"`") {
			t.Errorf("%s does not mention %s", path, k.Name)
		}
	}
}
