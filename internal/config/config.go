package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the effective configuration. Build it with [Build] or
// [Sources.Build]; [Defaults] gives XBT's defaults. Intervals that XBT keeps
// in whole seconds are time.Durations here (AnnounceInterval / time.Second is
// the announce response's interval).
type Config struct {
	// XBT's keys (may come from xbt_config).
	AnnounceInterval      time.Duration // announce_interval, whole seconds
	AnonymousAnnounce     bool          // anonymous_announce
	AnonymousScrape       bool          // anonymous_scrape
	AutoRegister          bool          // auto_register
	CleanUpInterval       time.Duration // clean_up_interval
	FullScrape            bool          // full_scrape
	GzipScrape            bool          // gzip_scrape
	LogAccess             bool          // log_access
	LogAnnounce           bool          // log_announce
	LogScrape             bool          // log_scrape
	DownMulti             int           // down_multi (percent, site-wide)
	UpMulti               int           // up_multi (percent, site-wide)
	ReadConfigInterval    time.Duration // read_config_interval
	ReadDBInterval        time.Duration // read_db_interval
	ScrapeInterval        time.Duration // scrape_interval; 0 = none
	WriteDBInterval       time.Duration // write_db_interval
	ListenPorts           []int         // listen_port (repeatable); sorted, no duplicates
	ListenIPAs            []netip.Addr  // listen_ipa (repeatable); empty = every address
	OfflineMessage        string        // offline_message
	RedirectURL           string        // redirect_url
	TorrentPassPrivateKey string        // torrent_pass_private_key (secret; "" = generate)
	TableAnnounceLog      string        // table_announce_log
	TableDenyFromHosts    string        // table_deny_from_hosts
	TableFiles            string        // table_files
	TableFilesUsers       string        // table_files_users
	TableScrapeLog        string        // table_scrape_log
	TableSnatched         string        // table_snatched
	TableUsers            string        // table_users
	ColumnFilesCompleted  string        // column_files_completed
	ColumnFilesFID        string        // column_files_fid
	ColumnFilesLeechers   string        // column_files_leechers
	ColumnFilesSeeders    string        // column_files_seeders
	ColumnUsersUID        string        // column_users_uid

	// The tracker's own keys (never from xbt_config).
	DSN                  string         // dsn (secret password)
	ListenHTTP           []string       // listen_http; see HTTPAddrs
	ListenUDP            []string       // listen_udp; see UDPAddrs
	AdminListen          string         // admin_listen; "" = the HTTP listeners
	TrustedProxies       []netip.Prefix // trusted_proxies; single addresses as /32 or /128
	MaxNumwant           int            // max_numwant
	DefaultNumwant       int            // default_numwant
	MaxRequestBytes      int            // max_request_bytes
	MaxConnections       int            // max_connections
	MaxConnectionsPerIP  int            // max_connections_per_ip
	MaxCreditPerAnnounce int            // max_credit_per_announce (bytes; 0 = no cap)
	HTTPEventLoops       bool           // http_event_loops
	Cluster              bool           // cluster: one of several instances sharing the database
	ReadTimeout          time.Duration  // read_timeout
	IdleTimeout          time.Duration  // idle_timeout
	ShutdownTimeout      time.Duration  // shutdown_timeout
	LedgerMaxEntries     int            // ledger_max_entries
	ChangePollInterval   time.Duration  // change_poll_interval; 0 = only at read_db_interval
	StateFile            string         // state_file; "" = none
	GCPercent            int            // gc_percent
	LogLevel             string         // log_level: debug, info, warn or error (lower case)

	origins map[string]origin // key -> where its value came from (set by Build)
}

type origin struct {
	src   Source
	where string // "XBT_ANNOUNCE_INTERVAL", "--dsn", "/etc/xbt-tracker.toml", "xbt_config"
}

// ExpireFactor is fixed, not a key: peers not heard from in
// ExpireFactor × announce_interval expire.
const ExpireFactor = 1.5

// Defaults returns XBT's defaults plus the tracker's own.
func Defaults() Config {
	var c Config
	for i := range specTable {
		sp := &specTable[i]
		if probs := sp.set(&c, sp.def); probs != nil {
			panic(fmt.Sprintf("config: bad default for %s: %v", sp.Name, probs))
		}
	}
	return c
}

// Source is where a value came from.
type Source int

// The sources, lowest precedence first.
const (
	Default Source = iota
	Database
	File
	Env
	Flag
)

func (s Source) String() string {
	switch s {
	case Default:
		return "default"
	case Database:
		return "database"
	case File:
		return "file"
	case Env:
		return "env"
	case Flag:
		return "flag"
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// Layer is the raw values one source gives, by key name. A scalar key has
// one value (if several, the last wins); a repeatable key has a list, which
// replaces the list of every lower layer (an empty list too).
type Layer struct {
	Source Source
	Origin string // file path, "xbt_config", "environment", "command line"
	Values map[string][]string
}

// where names the place a key's value came from, for messages.
func (l Layer) where(name string) string {
	k := Key{Name: name}
	switch l.Source {
	case Env:
		return k.Env()
	case Flag:
		return "--" + k.Flag()
	case File:
		if l.Origin != "" {
			return l.Origin
		}
		return "config file"
	case Database:
		if l.Origin != "" {
			return l.Origin
		}
		return "xbt_config"
	}
	if l.Origin != "" {
		return l.Origin
	}
	return "default"
}

// Build starts from Defaults and applies the layers in the order given
// (lowest precedence first), then validates the result. Keys of a Database
// layer that are unknown or not FromDatabase are ignored; in other layers
// they are errors. Only the effective value of each key is checked. On error
// the returned Config holds every valid value (invalid ones keep the value
// from below) and must not be used to serve.
func Build(layers ...Layer) (Config, error) {
	type eff struct {
		vals []string
		o    origin
	}
	effective := make(map[string]eff)
	var errs []error
	for _, l := range layers {
		var unknown []string
		for name, vals := range l.Values {
			sp := lookup(name)
			if l.Source == Database && (sp == nil || !sp.FromDatabase) {
				continue
			}
			if sp == nil {
				unknown = append(unknown, name)
				continue
			}
			effective[name] = eff{vals, origin{l.Source, l.where(name)}}
		}
		sort.Strings(unknown)
		for _, name := range unknown {
			errs = append(errs, fmt.Errorf("config: unknown key %q (from %s)", name, l.where(name)))
		}
	}

	c := Defaults()
	c.origins = make(map[string]origin, len(effective))
	bad := make(map[string]bool)
	for i := range specTable {
		sp := &specTable[i]
		e, ok := effective[sp.Name]
		if !ok {
			continue
		}
		c.origins[sp.Name] = e.o
		for _, p := range sp.set(&c, e.vals) {
			bad[sp.Name] = true
			errs = append(errs, problemError(sp, p, e.o.where))
		}
	}
	if len(errs) == 0 {
		return c, c.Validate()
	}
	errs = append(errs, c.crossCheck(bad)...)
	return c, errors.Join(errs...)
}

func problemError(sp *spec, p problem, where string) error {
	return fmt.Errorf("config: %s = %q (from %s): %s", sp.Name, sp.mask(p.value), where, p.want)
}

// SourceOf tells where key's effective value came from: the source and its
// place (env variable, flag, file path, "xbt_config"; "default").
func (c Config) SourceOf(key string) (Source, string) {
	if o, ok := c.origins[key]; ok {
		return o.src, o.where
	}
	return Default, "default"
}

// whereOf names the origin of key's value for messages; values set in Go
// code (not by Build) that differ from the default are "from code".
func (c Config) whereOf(sp *spec) string {
	if o, ok := c.origins[sp.Name]; ok {
		return o.where
	}
	d := Defaults()
	if slices.Equal(sp.get(&c), sp.get(&d)) {
		return "default"
	}
	return "code"
}

// Validate checks every value and the rules between keys, returning one
// error line per problem (joined with errors.Join), or nil.
func (c Config) Validate() error {
	var errs []error
	bad := make(map[string]bool)
	for i := range specTable {
		sp := &specTable[i]
		var scratch Config
		for _, p := range sp.set(&scratch, sp.get(&c)) {
			bad[sp.Name] = true
			errs = append(errs, problemError(sp, p, c.whereOf(sp)))
		}
	}
	errs = append(errs, c.crossCheck(bad)...)
	return errors.Join(errs...)
}

// crossCheck checks rules between keys, skipping rules whose keys are bad.
func (c Config) crossCheck(bad map[string]bool) []error {
	var errs []error
	line := func(name, value, want string) {
		sp := lookup(name)
		errs = append(errs, problemError(sp, problem{value, want}, c.whereOf(sp)))
	}
	if !bad["default_numwant"] && !bad["max_numwant"] && c.DefaultNumwant > c.MaxNumwant {
		line("default_numwant", strconv.Itoa(c.DefaultNumwant),
			fmt.Sprintf("want a whole number from 1 to max_numwant (%d)", c.MaxNumwant))
	}
	if !bad["listen_port"] && !bad["listen_ipa"] && !bad["listen_http"] && !bad["listen_udp"] &&
		len(c.HTTPAddrs()) == 0 && len(c.UDPAddrs()) == 0 {
		if isOff(c.ListenHTTP) && isOff(c.ListenUDP) {
			line("listen_udp", Off, "want at least one listener, and listen_http is off too")
		} else {
			line("listen_port", "", "want at least one port from 1 to 65535 when listen_http or listen_udp is empty")
		}
	}
	// A UDP announce cannot be routed by info_hash (HAProxy balances UDP by
	// address only), so in a cluster it would split a swarm between the
	// instance it reaches and the one HTTP routes to (docs/CLUSTER.md).
	if !bad["listen_udp"] && c.Cluster && len(c.UDPAddrs()) > 0 {
		line("listen_udp", strings.Join(c.ListenUDP, ","), "want off when cluster is 1: UDP announces cannot be routed to the instance that owns the torrent (docs/CLUSTER.md, \"UDP\")")
	}
	if !bad["admin_listen"] && c.AdminListen != "" && slices.Contains(c.HTTPAddrs(), c.AdminListen) {
		line("admin_listen", c.AdminListen, "want an address that is not one of the HTTP listeners (leave empty to serve /statistics and /metrics there)")
	}
	return errs
}

func isOff(list []string) bool { return len(list) == 1 && list[0] == Off }

// HTTPAddrs returns the HTTP listen addresses: listen_http when given (none
// when it is "off"), else ":<port>" (or "<listen_ipa>:<port>") for every
// listen_port, as XBT does.
func (c Config) HTTPAddrs() []string { return c.listenAddrs(c.ListenHTTP) }

// UDPAddrs returns the UDP listen addresses, derived as HTTPAddrs.
func (c Config) UDPAddrs() []string { return c.listenAddrs(c.ListenUDP) }

func (c Config) listenAddrs(explicit []string) []string {
	if isOff(explicit) {
		return []string{}
	}
	if len(explicit) > 0 {
		return slices.Clone(explicit)
	}
	hosts := []string{""}
	if len(c.ListenIPAs) > 0 {
		hosts = hosts[:0]
		for _, a := range c.ListenIPAs {
			hosts = append(hosts, a.String())
		}
	}
	out := []string{}
	for _, h := range hosts {
		for _, p := range c.ListenPorts {
			out = append(out, net.JoinHostPort(h, strconv.Itoa(p)))
		}
	}
	return out
}

// Write prints the configuration as TOML, one `key = value` line per key in
// Keys() order, secrets masked (torrent_pass_private_key as "***", the dsn's
// password as ***). A value that does not come from the defaults carries its
// origin as a trailing comment, e.g. `announce_interval = 60  # from xbt_config`.
// The output reads back with ReadFile, but masked secrets are not the real ones.
func (c Config) Write(w io.Writer) error {
	var b strings.Builder
	for i := range specTable {
		sp := &specTable[i]
		b.WriteString(sp.Name)
		b.WriteString(" = ")
		b.WriteString(sp.literal(&c))
		if o, ok := c.origins[sp.Name]; ok && o.src != Default {
			b.WriteString("  # from ")
			b.WriteString(strings.ReplaceAll(o.where, "\n", " "))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
