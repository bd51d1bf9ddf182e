package sql

import (
	"context"
	"fmt"
	"net/netip"

	sq "github.com/Masterminds/squirrel"
)

// DenyList reads xbt_deny_from_hosts (inclusive IPv4 ranges as integers;
// XBT's own schema declares them signed int, so negative values are read as
// their unsigned 32-bit pattern) and, when present, xbt_deny_from_hosts6
// (16-byte bounds; 4-byte bounds are taken as IPv4, mapped). Rows that are
// not addresses are skipped.
func (l *Loader) DenyList(ctx context.Context) (v4 [][2]uint32, v6 [][2][16]byte, err error) {
	s := l.s
	if s.HasDenyFromHosts {
		q, args, err := sq.Select("`begin`", "`end`").From("`" + s.DenyFromHosts + "`").ToSql()
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
		}
		rows, err := l.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
		}
		defer rows.Close()
		for rows.Next() {
			var b, e int64
			if err := rows.Scan(&b, &e); err != nil {
				return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
			}
			lo, ok1 := asIPv4Int(b)
			hi, ok2 := asIPv4Int(e)
			if ok1 && ok2 {
				v4 = append(v4, [2]uint32{lo, hi})
			}
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts, err)
		}
	}
	if s.HasDenyFromHosts6 {
		q, args, err := sq.Select("`begin`", "`end`").From("`" + s.DenyFromHosts6 + "`").ToSql()
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
		}
		rows, err := l.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
		}
		defer rows.Close()
		for rows.Next() {
			var b, e []byte
			if err := rows.Scan(&b, &e); err != nil {
				return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
			}
			lo, ok1 := asIPv6Bytes(b)
			hi, ok2 := asIPv6Bytes(e)
			if ok1 && ok2 {
				v6 = append(v6, [2][16]byte{lo, hi})
			}
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", s.DenyFromHosts6, err)
		}
	}
	return v4, v6, nil
}

// ClientRules reads the client rule tables that exist: the peer_id
// prefixes of xbt_client_whitelist (allow) and of xbt_deny_from_clients
// (deny), as stored (tracker.NewClientRules drops empty ones). A missing
// table yields no prefixes; a NULL peer_id (Gazelle's column allows it) is
// an empty prefix.
func (l *Loader) ClientRules(ctx context.Context) (allow, deny [][]byte, err error) {
	if l.s.HasClientWhitelist {
		if allow, err = l.prefixes(ctx, ClientWhitelistTable); err != nil {
			return nil, nil, err
		}
	}
	if l.s.HasDenyFromClients {
		if deny, err = l.prefixes(ctx, DenyFromClientsTable); err != nil {
			return nil, nil, err
		}
	}
	return allow, deny, nil
}

// prefixes reads the peer_id column of table.
func (l *Loader) prefixes(ctx context.Context, table string) ([][]byte, error) {
	q, args, err := sq.Select("`peer_id`").From("`" + table + "`").ToSql()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", table, err)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", table, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("load %s: %w", table, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", table, err)
	}
	return out, nil
}

// asIPv4Int accepts an address stored unsigned (0..2^32-1) or signed
// (-2^31..2^31-1, XBT's int columns).
func asIPv4Int(v int64) (uint32, bool) {
	switch {
	case v >= 0 && v <= 0xFFFFFFFF:
		return uint32(v), true
	case v < 0 && v >= -1<<31:
		return uint32(int32(v)), true //nolint:gosec // G115: v is in [-2^31, 0), so int32(v) is exact and uint32 keeps its two's-complement bits, as XBT stored them
	}
	return 0, false
}

func asIPv6Bytes(b []byte) ([16]byte, bool) {
	switch len(b) {
	case 16:
		return [16]byte(b), true
	case 4:
		return netip.AddrFrom4([4]byte(b)).As16(), true
	}
	return [16]byte{}, false
}
