package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// The import rules of docs/ARCHITECTURE.md ("Dependency direction is inward:
// cmd → sync → {sql, tracker} → passkey"). Each rule holds for every package
// under its folder, tests included, and for everything those packages import,
// directly or not.
var rules = []rule{
	{
		from: "tracker",
		why:  "tracker/ never imports sql/, sync/ or database drivers; it is testable with no database",
		forbidden: func(p pkg) bool {
			return inModule(p.ImportPath, "sql") || inModule(p.ImportPath, "sync") ||
				p.ImportPath == "database/sql" || strings.HasPrefix(p.ImportPath, "database/sql/") ||
				p.ImportPath == "github.com/go-sql-driver/mysql" ||
				strings.HasPrefix(p.ImportPath, "github.com/go-sql-driver/mysql/")
		},
	},
	{
		from:      "passkey",
		why:       "passkey/ is a library a Go catalog imports: standard library only",
		forbidden: func(p pkg) bool { return !p.Standard && !inModule(p.ImportPath, "passkey") },
	},
	{
		from:      "sql",
		why:       "sync/ drives sql/, never the other way",
		forbidden: func(p pkg) bool { return inModule(p.ImportPath, "sync") },
	},
}

const module = "github.com/xbt-tracker/xbt-tracker"

type rule struct {
	from      string // a folder of the module
	why       string
	forbidden func(pkg) bool
}

// pkg is what the test reads of `go list -json`.
type pkg struct {
	ImportPath string
	Standard   bool
	ForTest    string   // set on a package recompiled for a test
	Imports    []string // direct imports, after -test's rewriting
	Deps       []string // every package imported, directly or not
	Error      *struct{ Err string }
}

// inModule reports whether path (as go list prints it, perhaps with a
// " [x.test]" suffix) is the module's folder dir or below it.
func inModule(path, dir string) bool {
	path, _, _ = strings.Cut(path, " ")
	path = strings.TrimSuffix(path, ".test")
	p := module + "/" + dir
	return path == p || path == p+"_test" || strings.HasPrefix(path, p+"/")
}

func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	var patterns []string
	for _, r := range rules {
		patterns = append(patterns, "./"+r.from+"/...")
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-test", "-json"}, patterns...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs, err := decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: is the test run from internal/archtest?", len(pkgs))
	}
	for _, v := range violations(pkgs, rules) {
		t.Error(v)
	}
}

func decode(r io.Reader) (map[string]pkg, error) {
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(r)
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decoding go list: %w", err)
		}
		pkgs[p.ImportPath] = p
	}
}

// violations lists, for every package of the module under a rule's folder,
// each forbidden package it imports, with the chain of imports leading there.
// Only where the rule is first broken: a chain through another package of
// the folder (reported itself) or through a forbidden package is left out,
// and a package's test variant repeats nothing its plain build reported.
func violations(pkgs map[string]pkg, rules []rule) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rules {
		for _, p := range sorted(pkgs) {
			if !inModule(p.ImportPath, r.from) || strings.HasSuffix(p.ImportPath, ".test") {
				continue // the generated test main imports the testing framework only
			}
			name, _, _ := strings.Cut(p.ImportPath, " ")
		deps:
			for _, d := range p.Deps {
				if !r.forbidden(lookup(pkgs, d)) {
					continue
				}
				c := chain(pkgs, p.ImportPath, d)
				for _, via := range c[:len(c)-1] {
					if inModule(via, r.from) || r.forbidden(lookup(pkgs, via)) {
						continue deps
					}
				}
				for i := range c {
					c[i], _, _ = strings.Cut(c[i], " ")
				}
				msg := fmt.Sprintf("%s imports %s: %s (docs/ARCHITECTURE.md)", name, strings.Join(c, " → "), r.why)
				if !seen[msg] {
					seen[msg] = true
					out = append(out, msg)
				}
			}
		}
	}
	return out
}

func lookup(pkgs map[string]pkg, path string) pkg {
	if p, ok := pkgs[path]; ok {
		return p
	}
	return pkg{ImportPath: path}
}

// chain is a shortest import path from 'from' to 'to'.
func chain(pkgs map[string]pkg, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var c []string
			for n := to; n != from; n = prev[n] {
				c = append([]string{n}, c...)
			}
			return c
		}
		for _, im := range pkgs[cur].Imports {
			if _, seen := prev[im]; !seen {
				prev[im] = cur
				queue = append(queue, im)
			}
		}
	}
	return []string{to}
}

func sorted(pkgs map[string]pkg) []pkg {
	var s []pkg
	for _, p := range pkgs {
		s = append(s, p)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].ImportPath < s[j].ImportPath })
	return s
}

// TestViolationsFound: the checker itself, on a made-up graph where
// tracker/httpfront reaches database/sql through a helper and passkey
// imports a module outside the standard library.
func TestViolationsFound(t *testing.T) {
	m := module + "/"
	pkgs := map[string]pkg{
		m + "tracker/httpfront": {ImportPath: m + "tracker/httpfront", Imports: []string{m + "internal/helper", "net"},
			Deps: []string{"database/sql", m + "internal/helper", "net"}},
		m + "internal/helper":         {ImportPath: m + "internal/helper", Imports: []string{"database/sql"}, Deps: []string{"database/sql"}},
		"database/sql":                {ImportPath: "database/sql", Standard: true},
		"net":                         {ImportPath: "net", Standard: true},
		m + "passkey":                 {ImportPath: m + "passkey", Imports: []string{"crypto/sha1", "golang.org/x/crypto/blake2b"}, Deps: []string{"crypto/sha1", "golang.org/x/crypto/blake2b"}},
		"crypto/sha1":                 {ImportPath: "crypto/sha1", Standard: true},
		"golang.org/x/crypto/blake2b": {ImportPath: "golang.org/x/crypto/blake2b"},
		m + "sql":                     {ImportPath: m + "sql", Imports: []string{m + "tracker"}, Deps: []string{m + "tracker"}},
		m + "tracker":                 {ImportPath: m + "tracker"},
	}
	got := violations(pkgs, rules)
	want := []string{
		m + "tracker/httpfront imports " + m + "internal/helper → database/sql",
		m + "passkey imports golang.org/x/crypto/blake2b",
	}
	if len(got) != len(want) {
		t.Fatalf("violations:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]+": ") {
			t.Errorf("violation %d: %q, want it to start with %q", i, got[i], want[i])
		}
	}
}
