package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Key describes one configuration key. The table returned by [Keys] is the
// only list of keys: parsing, environment and flag names, printing and the
// key table in docs/CONFIGURATION.md are all derived from it.
type Key struct {
	Name    string // snake_case, as in the file and in xbt_config
	Default string // as written in the environment or a flag; lists comma-separated
	Help    string // one sentence: meaning and allowed values

	Secret       bool // masked when printed
	Repeatable   bool // a list: several xbt_config rows, a TOML array, or comma-separated in env and flags
	FromDatabase bool // may be set by an xbt_config row
}

// Env is the key's environment variable, e.g. XBT_ANNOUNCE_INTERVAL.
func (k Key) Env() string { return "XBT_" + strings.ToUpper(k.Name) }

// Flag is the key's command-line flag name without dashes, e.g. announce-interval.
func (k Key) Flag() string { return strings.ReplaceAll(k.Name, "_", "-") }

// Keys returns the descriptors of every key, in the order Write prints them.
func Keys() []Key {
	out := make([]Key, len(specTable))
	for i := range specTable {
		out[i] = specTable[i].Key
	}
	return out
}

// spec is a Key plus how to parse and print its value.
type spec struct {
	Key
	def []string // raw default values

	// set parses the effective raw values into c. It returns one problem per
	// invalid value and leaves c unchanged when there is any.
	set func(c *Config, vals []string) []problem
	// get returns the current value as raw strings that set accepts.
	get func(c *Config) []string
	// literal returns the current value as a TOML literal, secrets masked.
	literal func(c *Config) string
	// mask hides the secret part of a raw value (identity when not Secret).
	mask func(string) string
}

type problem struct{ value, want string }

// specTable is built once and never modified.
var specTable = newSpecTable()

func lookup(name string) *spec {
	for i := range specTable {
		if specTable[i].Name == name {
			return &specTable[i]
		}
	}
	return nil
}

const day = 86400

func newSpecTable() []spec {
	// XBT's keys: they may come from xbt_config.
	xbt := []spec{
		seconds("announce_interval", 1800, 1, day, "Seconds between a client's announces (the announce response's interval); peers not heard from in 1.5 times this expire.", func(c *Config) *time.Duration { return &c.AnnounceInterval }),
		boolean("anonymous_announce", false, "1: accept announces without a valid passkey (public tracker); 0: every announce needs a passkey.", func(c *Config) *bool { return &c.AnonymousAnnounce }),
		boolean("anonymous_scrape", false, "1: accept scrapes without a valid passkey.", func(c *Config) *bool { return &c.AnonymousScrape }),
		boolean("auto_register", false, "1: an announce for an unknown info_hash registers the torrent; 0: it fails with \"unregistered torrent\".", func(c *Config) *bool { return &c.AutoRegister }),
		seconds("clean_up_interval", 60, 1, day, "Seconds between sweeps that expire silent peers.", func(c *Config) *time.Duration { return &c.CleanUpInterval }),
		boolean("full_scrape", false, "1: a scrape without info_hash returns every torrent; 0: it is refused.", func(c *Config) *bool { return &c.FullScrape }),
		boolean("gzip_scrape", true, "1: gzip a scrape response when the client accepts it.", func(c *Config) *bool { return &c.GzipScrape }),
		boolean("log_access", false, "1: log one info line per HTTP request (address, method, path with the passkey cut to its first 8 characters, status, failure reason, bytes, duration); takes effect at the next read_config_interval.", func(c *Config) *bool { return &c.LogAccess }),
		boolean("log_announce", false, "1: write every announce to table_announce_log.", func(c *Config) *bool { return &c.LogAnnounce }),
		boolean("log_scrape", false, "1: write every scrape to table_scrape_log.", func(c *Config) *bool { return &c.LogScrape }),
		integer("down_multi", 100, 0, 100_000, "Site-wide download credit factor in percent: what an announce adds to xbt_users.downloaded is the reported delta times this, the torrent's and the user's down_multi; 0: site-wide freeleech, 50: half leech. Takes effect at the next read_config_interval. xbt_files_users keeps the real bytes.", func(c *Config) *int { return &c.DownMulti }),
		integer("up_multi", 100, 0, 100_000, "Site-wide upload credit factor in percent (xbt_users.uploaded), as down_multi; 200: double upload. Takes effect at the next read_config_interval.", func(c *Config) *int { return &c.UpMulti }),
		seconds("read_config_interval", 60, 1, day, "Seconds between re-reads of xbt_config.", func(c *Config) *time.Duration { return &c.ReadConfigInterval }),
		seconds("read_db_interval", 60, 1, day, "Seconds between reloads of users, torrents and the deny list from the database (only what changed, with change tracking; everything about hourly, and at every reload without it). Catalog changes to users and torrents also arrive every change_poll_interval in between.", func(c *Config) *time.Duration { return &c.ReadDBInterval }),
		seconds("scrape_interval", 0, 0, day, "Minimum seconds between scrapes, sent to clients as min_request_interval; 0 sends none.", func(c *Config) *time.Duration { return &c.ScrapeInterval }),
		seconds("write_db_interval", 15, 1, day, "Seconds between batched writes of statistics to the database.", func(c *Config) *time.Duration { return &c.WriteDBInterval }),
		ports("listen_port", []int{2710}, "TCP and UDP port to listen on; repeatable (several xbt_config rows = several ports). Used only where listen_http or listen_udp is empty.", func(c *Config) *[]int { return &c.ListenPorts }),
		addrs("listen_ipa", "IP address to bind the listen_port listeners to; repeatable; * or empty means every address.", func(c *Config) *[]netip.Addr { return &c.ListenIPAs }),
		text("offline_message", "", "When set, every announce fails with this message (maintenance).", func(c *Config) *string { return &c.OfflineMessage }),
		str("redirect_url", "", "When set, requests that are not tracker requests get a 302 redirect here (an http:// or https:// URL).", checkRedirect, func(c *Config) *string { return &c.RedirectURL }),
		secret("torrent_pass_private_key", "Secret from which passkeys are derived; generated and inserted into xbt_config on first start when missing. Keep it in xbt_config only: the catalog reads it from there.", func(c *Config) *string { return &c.TorrentPassPrivateKey }),
		ident("table_announce_log", "xbt_announce_log", "Name of the announce log table.", func(c *Config) *string { return &c.TableAnnounceLog }),
		ident("table_deny_from_hosts", "xbt_deny_from_hosts", "Name of the table of denied IP ranges.", func(c *Config) *string { return &c.TableDenyFromHosts }),
		ident("table_files", "xbt_files", "Name of the torrents table (xbt_torrents in XBT's 2019 schema).", func(c *Config) *string { return &c.TableFiles }),
		ident("table_files_users", "xbt_files_users", "Name of the per-user, per-torrent table (xbt_peers in XBT's 2019 schema).", func(c *Config) *string { return &c.TableFilesUsers }),
		ident("table_scrape_log", "xbt_scrape_log", "Name of the scrape log table.", func(c *Config) *string { return &c.TableScrapeLog }),
		ident("table_snatched", "xbt_snatched", "Name of the completion log table (Gazelle's xbt_snatched: one row per completion, written when the table exists).", func(c *Config) *string { return &c.TableSnatched }),
		ident("table_users", "xbt_users", "Name of the users table.", func(c *Config) *string { return &c.TableUsers }),
		ident("column_files_completed", "completed", "Column of table_files counting completed downloads.", func(c *Config) *string { return &c.ColumnFilesCompleted }),
		ident("column_files_fid", "fid", "Key column of table_files (tid in XBT's 2019 schema).", func(c *Config) *string { return &c.ColumnFilesFID }),
		ident("column_files_leechers", "leechers", "Column of table_files counting leechers.", func(c *Config) *string { return &c.ColumnFilesLeechers }),
		ident("column_files_seeders", "seeders", "Column of table_files counting seeders.", func(c *Config) *string { return &c.ColumnFilesSeeders }),
		ident("column_users_uid", "uid", "Key column of table_users.", func(c *Config) *string { return &c.ColumnUsersUID }),
	}
	for i := range xbt {
		xbt[i].FromDatabase = true
	}
	// The tracker's own keys: operator settings, never read from xbt_config.
	ours := []spec{
		dsnKey(func(c *Config) *string { return &c.DSN }),
		listeners("listen_http", "HTTP listen addresses (host:port, e.g. 0.0.0.0:2710, [::]:2710, 127.0.0.1:0); empty: :<port> for every listen_port; off: no HTTP listener.", func(c *Config) *[]string { return &c.ListenHTTP }),
		listeners("listen_udp", "UDP listen addresses, as listen_http; empty: :<port> for every listen_port; off: no UDP listener.", func(c *Config) *[]string { return &c.ListenUDP }),
		str("admin_listen", "", "Separate HTTP address for /statistics and /metrics only; empty: served on the tracker's HTTP listeners.", checkAdminListen, func(c *Config) *string { return &c.AdminListen }),
		prefixes("trusted_proxies", "Proxies (CIDR prefixes or single addresses, e.g. 10.0.0.0/8, ::1) whose X-Forwarded-For / X-Real-IP headers and ip= parameter are believed.", func(c *Config) *[]netip.Prefix { return &c.TrustedProxies }),
		integer("max_numwant", 50, 1, 1000, "Most peers returned by one announce, whatever numwant asks for.", func(c *Config) *int { return &c.MaxNumwant }),
		integer("default_numwant", 50, 1, 1000, "Peers returned when the announce has no numwant; at most max_numwant.", func(c *Config) *int { return &c.DefaultNumwant }),
		integer("max_request_bytes", 8192, 1024, 1<<20, "Largest HTTP request head (request line and headers) accepted, in bytes.", func(c *Config) *int { return &c.MaxRequestBytes }),
		integer("max_connections", 8192, 1, 1<<20, "Most simultaneous HTTP connections; at the cap the oldest idle keep-alive connections are closed to make room, and a new connection is closed at once if none is idle.", func(c *Config) *int { return &c.MaxConnections }),
		integer("max_connections_per_ip", 256, 1, 1<<20, "Most simultaneous HTTP connections from one client address; a connection over it is closed at once. Addresses in trusted_proxies are exempt.", func(c *Config) *int { return &c.MaxConnectionsPerIP }),
		boolean("http_event_loops", true, "Serve HTTP connections from epoll event loops, one per core (Linux; elsewhere always 0). 0: a goroutine per connection, as before; same answers, more CPU per keep-alive request.", func(c *Config) *bool { return &c.HTTPEventLoops }),
		boolean("cluster", false, "1: this instance is one of several behind a load balancer that routes every torrent to one instance (docs/CLUSTER.md); they share the database, so counts and active flags are written newest-announce-wins and only rows older than the peer timeout are treated as ghosts; UDP must be off. 0: the only tracker on this database.", func(c *Config) *bool { return &c.Cluster }),
		duration("read_timeout", 10*time.Second, 100*time.Millisecond, 10*time.Minute, "Time allowed to read one HTTP request.", func(c *Config) *time.Duration { return &c.ReadTimeout }),
		duration("idle_timeout", 60*time.Second, time.Second, time.Hour, "Time an idle keep-alive HTTP connection stays open.", func(c *Config) *time.Duration { return &c.IdleTimeout }),
		duration("shutdown_timeout", 30*time.Second, time.Second, time.Hour, "On SIGTERM/SIGINT, time allowed to finish requests and flush statistics before exiting.", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		integer("max_credit_per_announce", 1<<40, 0, 1<<62, "Largest uploaded or downloaded delta (bytes) one announce may credit; an announce over it credits nothing for that counter and is logged (uid, once per interval) and counted. 0: no cap.", func(c *Config) *int { return &c.MaxCreditPerAnnounce }),
		duration("change_poll_interval", 2*time.Second, 0, time.Hour, "Time between polls of the change log (migration 00004) for users and torrents the catalog inserted, changed or deleted (new users and torrents, bans, limits, revoked passkeys, deletions), so that such changes take effect within seconds between reloads; 0 (or not shorter than read_db_interval): only at read_db_interval. Unused without change tracking.", func(c *Config) *time.Duration { return &c.ChangePollInterval }),
		text("state_file", "xbt-tracker.state", "File the swarms are saved to at a clean stop and loaded from at start (warm restart: no peer list emptied, no byte lost across a restart); relative to the working directory; empty: no state file.", func(c *Config) *string { return &c.StateFile }),
		integer("ledger_max_entries", 5_000_000, 1000, 1_000_000_000, "Bound on statistics waiting to be written while the database is unreachable (entries); a warning is logged near it.", func(c *Config) *int { return &c.LedgerMaxEntries }),
		integer("gc_percent", 25, 10, 1000, "Garbage collector target (Go's GOGC) for serve: the heap may grow this many percent over the live data before a collection. The tracker's heap is long-lived peer records and an announce allocates nothing, so a low value costs little CPU and keeps RSS close to what the peers need. A GOGC environment variable, when set, wins.", func(c *Config) *int { return &c.GCPercent }),
		str("log_level", "info", "Least severe log level written: debug, info, warn or error.", checkLogLevel, func(c *Config) *string { return &c.LogLevel }),
	}
	t := append(xbt, ours...)
	for i := range t {
		if t[i].mask == nil {
			t[i].mask = func(s string) string { return s }
		}
	}
	return t
}

// ---- key constructors ------------------------------------------------------

// codec parses and prints one value of type T.
type codec[T any] struct {
	parse   func(string) (T, string) // value, or "want ..." when invalid
	format  func(T) string           // raw form that parse accepts
	literal func(T) string           // TOML literal
}

func scalarSpec[T any](name, help string, def string, ptr func(*Config) *T, cd codec[T]) spec {
	return spec{
		Key: Key{Name: name, Default: def, Help: help},
		def: []string{def},
		set: func(c *Config, vals []string) []problem {
			if len(vals) == 0 {
				vals = []string{""}
			}
			raw := vals[len(vals)-1] // several xbt_config rows: the last wins, as in XBT
			v, want := cd.parse(raw)
			if want != "" {
				return []problem{{raw, want}}
			}
			*ptr(c) = v
			return nil
		},
		get:     func(c *Config) []string { return []string{cd.format(*ptr(c))} },
		literal: func(c *Config) string { return cd.literal(*ptr(c)) },
	}
}

// listSpec: empty elements are dropped; skip reports elements that are valid
// but stored as nothing (listen_ipa's *).
func listSpec[T any](name, help string, def []string, ptr func(*Config) *[]T, cd codec[T], skip func(string) bool, norm func([]T) []T) spec {
	return spec{
		Key: Key{Name: name, Default: strings.Join(def, ","), Help: help, Repeatable: true},
		def: def,
		set: func(c *Config, vals []string) []problem {
			var probs []problem
			out := []T{}
			for _, raw := range vals {
				s := strings.TrimSpace(raw)
				if s == "" || (skip != nil && skip(s)) {
					continue
				}
				v, want := cd.parse(s)
				if want != "" {
					probs = append(probs, problem{raw, want})
					continue
				}
				out = append(out, v)
			}
			if probs != nil {
				return probs
			}
			if norm != nil {
				out = norm(out)
			}
			*ptr(c) = out
			return nil
		},
		get: func(c *Config) []string {
			var out []string
			for _, v := range *ptr(c) {
				out = append(out, cd.format(v))
			}
			return out
		},
		literal: func(c *Config) string {
			parts := make([]string, 0, len(*ptr(c)))
			for _, v := range *ptr(c) {
				parts = append(parts, cd.literal(v))
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
	}
}

func seconds(name string, def, lo, hi int, help string, ptr func(*Config) *time.Duration) spec {
	want := fmt.Sprintf("want a whole number of seconds from %d to %d", lo, hi)
	format := func(d time.Duration) string {
		if d%time.Second == 0 {
			return strconv.FormatInt(int64(d/time.Second), 10)
		}
		return d.String()
	}
	return scalarSpec(name, help, strconv.Itoa(def), ptr, codec[time.Duration]{
		parse: func(s string) (time.Duration, string) {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < lo || n > hi {
				return 0, want
			}
			return time.Duration(n) * time.Second, ""
		},
		format: format,
		literal: func(d time.Duration) string {
			if d%time.Second == 0 {
				return format(d)
			}
			return tomlString(format(d))
		},
	})
}

func integer(name string, def, lo, hi int, help string, ptr func(*Config) *int) spec {
	want := fmt.Sprintf("want a whole number from %d to %d", lo, hi)
	return scalarSpec(name, help, strconv.Itoa(def), ptr, codec[int]{
		parse: func(s string) (int, string) {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < lo || n > hi {
				return 0, want
			}
			return n, ""
		},
		format:  strconv.Itoa,
		literal: strconv.Itoa,
	})
}

func boolean(name string, def bool, help string, ptr func(*Config) *bool) spec {
	format := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	return scalarSpec(name, help, format(def), ptr, codec[bool]{
		parse: func(s string) (bool, string) {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "1", "true":
				return true, ""
			case "0", "false":
				return false, ""
			}
			return false, "want 0 or 1 (or true/false)"
		},
		format:  format,
		literal: format,
	})
}

func duration(name string, def, lo, hi time.Duration, help string, ptr func(*Config) *time.Duration) spec {
	want := fmt.Sprintf("want a duration such as 10s or 1m30s (a bare number means seconds) from %s to %s", fmtDuration(lo), fmtDuration(hi))
	return scalarSpec(name, help, fmtDuration(def), ptr, codec[time.Duration]{
		parse: func(s string) (time.Duration, string) {
			s = strings.TrimSpace(s)
			var d time.Duration
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				if n < 0 || n > int64(hi/time.Second) {
					return 0, want
				}
				d = time.Duration(n) * time.Second
			} else if d, err = time.ParseDuration(s); err != nil {
				return 0, want
			}
			if d < lo || d > hi {
				return 0, want
			}
			return d, ""
		},
		format:  fmtDuration,
		literal: func(d time.Duration) string { return tomlString(fmtDuration(d)) },
	})
}

// fmtDuration prints whole hours as "1h", whole minutes as "10m", other
// whole seconds as "90s", and anything finer as time.Duration does.
func fmtDuration(d time.Duration) string {
	switch {
	case d%time.Second != 0:
		return d.String()
	case d != 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d != 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
}

// str is a string key whose value is trimmed and checked by check, which
// returns the value to store or a "want ..." message.
func str(name, def, help string, check func(string) (string, string), ptr func(*Config) *string) spec {
	return scalarSpec(name, help, def, ptr, codec[string]{
		parse:   func(s string) (string, string) { return check(strings.TrimSpace(s)) },
		format:  func(s string) string { return s },
		literal: tomlString,
	})
}

// text is a free-text key: stored verbatim.
func text(name, def, help string, ptr func(*Config) *string) spec {
	return scalarSpec(name, help, def, ptr, codec[string]{
		parse:   func(s string) (string, string) { return s, "" },
		format:  func(s string) string { return s },
		literal: tomlString,
	})
}

func secret(name, help string, ptr func(*Config) *string) spec {
	sp := text(name, "", help, ptr)
	sp.Secret = true
	sp.mask = func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	sp.literal = func(c *Config) string { return tomlString(sp.mask(*ptr(c))) }
	return sp
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}

func ident(name, def, help string, ptr func(*Config) *string) spec {
	return str(name, def, help+" Letters, digits and _ only.", func(s string) (string, string) {
		if !isIdent(s) {
			return "", "want a name of letters, digits and _ only"
		}
		return s, ""
	}, ptr)
}

func checkRedirect(s string) (string, string) {
	if s == "" {
		return s, ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", "want an http:// or https:// URL, or empty"
	}
	return s, ""
}

func checkLogLevel(s string) (string, string) {
	switch l := strings.ToLower(s); l {
	case "debug", "info", "warn", "error":
		return l, ""
	}
	return "", "want debug, info, warn or error"
}

const wantDSN = "want a go-sql-driver/mysql DSN such as user:password@tcp(127.0.0.1:3306)/xbt"

func dsnKey(ptr func(*Config) *string) spec {
	sp := str("dsn", "", "MySQL/MariaDB data source name in go-sql-driver/mysql form, e.g. xbt:secret@tcp(127.0.0.1:3306)/xbt; the password is masked when printed. Required by serve.", func(s string) (string, string) {
		if s == "" {
			return s, ""
		}
		if _, err := mysql.ParseDSN(s); err != nil {
			return "", wantDSN + " (" + err.Error() + ")"
		}
		return s, ""
	}, ptr)
	sp.Secret = true
	sp.mask = maskDSN
	sp.literal = func(c *Config) string { return tomlString(maskDSN(*ptr(c))) }
	return sp
}

// maskDSN replaces the password of a go-sql-driver DSN with ***, finding it
// the way the driver does: user[:password]@ before the last '@' that precedes
// the last '/'.
func maskDSN(dsn string) string {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndexByte(dsn[:slash], '@')
	if at < 0 {
		return dsn
	}
	colon := strings.IndexByte(dsn[:at], ':')
	if colon < 0 || colon == at-1 {
		return dsn // no password
	}
	return dsn[:colon+1] + "***" + dsn[at:]
}

func ports(name string, def []int, help string, ptr func(*Config) *[]int) spec {
	raw := make([]string, len(def))
	for i, p := range def {
		raw[i] = strconv.Itoa(p)
	}
	return listSpec(name, help, raw, ptr, codec[int]{
		parse: func(s string) (int, string) {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 65535 {
				return 0, "want a port number from 1 to 65535"
			}
			return n, ""
		},
		format:  strconv.Itoa,
		literal: strconv.Itoa,
	}, nil, func(p []int) []int { // XBT keeps a set: sorted, no duplicates
		slices.Sort(p)
		return slices.Compact(p)
	})
}

func addrs(name, help string, ptr func(*Config) *[]netip.Addr) spec {
	sp := listSpec(name, help, nil, ptr, codec[netip.Addr]{
		parse: func(s string) (netip.Addr, string) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return netip.Addr{}, "want an IP address such as 192.0.2.1 or ::1, or *"
			}
			return a, ""
		},
		format:  netip.Addr.String,
		literal: func(a netip.Addr) string { return tomlString(a.String()) },
	}, func(s string) bool { return s == "*" }, dedupe[netip.Addr])
	return sp
}

func prefixes(name, help string, ptr func(*Config) *[]netip.Prefix) spec {
	return listSpec(name, help, nil, ptr, codec[netip.Prefix]{
		parse: func(s string) (netip.Prefix, string) {
			const want = "want an IP address or CIDR prefix such as 10.0.0.0/8 or ::1"
			if strings.Contains(s, "/") {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return netip.Prefix{}, want
				}
				return p.Masked(), ""
			}
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return netip.Prefix{}, want
			}
			return netip.PrefixFrom(a, a.BitLen()), ""
		},
		format:  netip.Prefix.String,
		literal: func(p netip.Prefix) string { return tomlString(p.String()) },
	}, nil, dedupe[netip.Prefix])
}

// Off is the listen_http / listen_udp value that disables those listeners.
const Off = "off"

func listeners(name, help string, ptr func(*Config) *[]string) spec {
	sp := listSpec(name, help, nil, ptr, codec[string]{
		parse: func(s string) (string, string) {
			if strings.EqualFold(s, Off) {
				return Off, ""
			}
			if !validHostPort(s) {
				return "", "want host:port such as 0.0.0.0:2710, [::]:2710 or :2710, or off"
			}
			return s, ""
		},
		format:  func(s string) string { return s },
		literal: tomlString,
	}, nil, func(a []string) []string {
		if slices.Contains(a, Off) {
			return []string{Off}
		}
		return dedupe(a)
	})
	set := sp.set
	sp.set = func(c *Config, vals []string) []problem {
		n, off := 0, ""
		for _, v := range vals {
			if s := strings.TrimSpace(v); s != "" {
				n++
				if strings.EqualFold(s, Off) {
					off = v
				}
			}
		}
		if off != "" && n > 1 {
			return []problem{{off, "want off alone, not together with addresses"}}
		}
		return set(c, vals)
	}
	return sp
}

func checkAdminListen(s string) (string, string) {
	if s == "" || validHostPort(s) {
		return s, ""
	}
	return "", "want host:port such as 127.0.0.1:2711 or [::1]:2711, or empty"
}

// validHostPort accepts what net.Listen accepts for tcp/udp, with a numeric
// port: ":2710", "0.0.0.0:2710", "[::]:2710", "[fe80::1%eth0]:2710",
// "localhost:2710". Port 0 (any free port) is allowed.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false
	}
	if host == "" {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if strings.Contains(s, "[") {
		return false // brackets hold only IPv6 literals
	}
	for i := 0; i < len(host); i++ {
		b := host[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '.') {
			return false
		}
	}
	return host[0] != '-' && host[0] != '.'
}

// dedupe drops repeated values, keeping the first of each.
func dedupe[T comparable](in []T) []T {
	out := in[:0]
	seen := make(map[T]bool, len(in))
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
