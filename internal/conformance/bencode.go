package conformance

import (
	"errors"
	"fmt"
	"strconv"
)

// DecodeBencode decodes one complete bencoded value, strictly: integers
// without leading zeros or "-0", dictionary keys sorted and unique, nothing
// after the value. Byte strings become Go strings, integers int64, lists
// []any and dictionaries map[string]any.
func DecodeBencode(b []byte) (any, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(b) {
		return nil, fmt.Errorf("bencode: %d trailing bytes", len(b)-d.i)
	}
	return v, nil
}

// DecodeDict is DecodeBencode for an answer that must be a dictionary.
func DecodeDict(b []byte) (map[string]any, error) {
	v, err := DecodeBencode(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("bencode: top level is %T, not a dictionary", v)
	}
	return m, nil
}

type decoder struct {
	b []byte
	i int
}

var errEOF = errors.New("bencode: unexpected end")

const maxDepth = 64

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("bencode: nested too deep")
	}
	if d.i >= len(d.b) {
		return nil, errEOF
	}
	switch c := d.b[d.i]; {
	case c == 'i':
		d.i++
		end := d.find('e')
		if end < 0 {
			return nil, errEOF
		}
		s := string(d.b[d.i:end])
		if s == "" || s == "-0" || (len(s) > 1 && s[0] == '0') || (len(s) > 2 && s[:2] == "-0") {
			return nil, fmt.Errorf("bencode: bad integer %q", s)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bencode: bad integer %q", s)
		}
		d.i = end + 1
		return n, nil
	case c >= '0' && c <= '9':
		return d.str()
	case c == 'l':
		d.i++
		list := []any{}
		for {
			if d.i >= len(d.b) {
				return nil, errEOF
			}
			if d.b[d.i] == 'e' {
				d.i++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		d.i++
		m := map[string]any{}
		prev, first := "", true
		for {
			if d.i >= len(d.b) {
				return nil, errEOF
			}
			if d.b[d.i] == 'e' {
				d.i++
				return m, nil
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			if !first && k <= prev {
				return nil, fmt.Errorf("bencode: key %q after %q: not sorted or repeated", k, prev)
			}
			prev, first = k, false
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	default:
		return nil, fmt.Errorf("bencode: unexpected byte %q at %d", c, d.i)
	}
}

func (d *decoder) str() (string, error) {
	colon := d.find(':')
	if colon < 0 {
		return "", errEOF
	}
	s := string(d.b[d.i:colon])
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return "", fmt.Errorf("bencode: bad string length %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return "", fmt.Errorf("bencode: bad string length %q", s)
	}
	start := colon + 1
	if n > len(d.b)-start {
		return "", errEOF
	}
	d.i = start + n
	return string(d.b[start:d.i]), nil
}

func (d *decoder) find(c byte) int {
	for j := d.i; j < len(d.b); j++ {
		if d.b[j] == c {
			return j
		}
	}
	return -1
}
