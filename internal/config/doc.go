// Package config is the tracker's configuration: one typed [Config] holding
// XBT's xbt_config keys (with XBT's defaults) plus the tracker's own keys, and
// a layered loader.
//
// Sources, lowest to highest precedence:
//
//	defaults -> xbt_config rows -> config file (TOML) -> environment (XBT_<KEY>) -> flags (--<key>)
//
// A key has the same snake_case name everywhere: in the file, as an xbt_config
// row, upper-cased behind XBT_ in the environment, and with dashes as a flag
// (announce_interval, XBT_ANNOUNCE_INTERVAL, --announce-interval). The single
// table returned by [Keys] drives parsing, environment and flag names,
// printing and docs/CONFIGURATION.md.
//
// For list keys (listen_port, listen_http, trusted_proxies, ...) the highest
// source that names the key replaces the whole list of the sources below it.
// Only the effective value of a key is checked: a bad xbt_config row that the
// file, environment or a flag overrides is not an error.
//
// Typical start-up:
//
//	src, err := config.LoadSources(c, os.Environ()) // file, env, flags: read once
//	boot, err := src.Build(nil)                      // no database yet: gives the dsn
//	rows := ...                                      // SELECT name, value FROM xbt_config
//	cfg, err := src.Build(rows)                      // again every read_config_interval
//
// Every invalid value yields exactly one error line naming the key, the value,
// where it came from and what is allowed; several are joined with
// [errors.Join]:
//
//	config: announce_interval = "abc" (from XBT_ANNOUNCE_INTERVAL): want a whole number of seconds from 1 to 86400
package config
