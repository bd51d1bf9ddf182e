package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The monitoring files in deploy/ (deploy/README.md): Prometheus alerting
// rules, their promtool unit tests, a Grafana dashboard.
const (
	dmRules     = "deploy/prometheus/xbt-tracker-rules.yml"
	dmRuleTests = "deploy/prometheus/xbt-tracker-rules.test.yml"
	dmDashboard = "deploy/grafana/xbt-tracker.json"
)

// dmPromtoolHint says where promtool comes from.
const dmPromtoolHint = "apt-get install -y --no-install-recommends prometheus (bash .ci/run does it)"

// dmMetricRE matches the metric names the files may use: the tracker's own
// (xbt_tracker_*, xbt_http_*, xbt_udp_*) and the Go client's runtime,
// process and connection pool collectors (go_*, go_sql_*, process_*).
// PromQL's functions and keywords never start with these prefixes; `up` is
// Prometheus' own and is not looked for.
var dmMetricRE = regexp.MustCompile(`\b(?:xbt|go|process)_[a-z0-9_]+\b`)

// TestDeployMonitoringMetrics checks that every metric the alerting rules
// and the dashboard use is one a running tracker exports (a misspelt name
// would make an alert that never fires, or an empty panel), and that the
// label values their selectors match on exist.
func TestDeployMonitoringMetrics(t *testing.T) {
	root := clRepoRoot()
	uses := map[string][]string{} // expression -> where it is used
	for i, e := range dmRuleExprs(t, filepath.Join(root, dmRules)) {
		uses[e] = append(uses[e], fmt.Sprintf("%s rule %d", dmRules, i+1))
	}
	for _, u := range dmDashboardExprs(t, filepath.Join(root, dmDashboard)) {
		uses[u.expr] = append(uses[u.expr], dmDashboard+" "+u.where)
	}

	c := newSyCatalog(t)
	p := startServe(t, []string{"XBT_DSN=" + c.dsn}, "--listen-http", "127.0.0.1:0")
	base := p.syBaseURL(t)
	// xbt_tracker_lookups_total is a labelled counter: like any vector with
	// no child yet, the registry leaves its family out of /metrics (no
	// # HELP or # TYPE line either) until the first lookup. An announce
	// with the passkey of a uid the database does not have makes one (a
	// miss). Every other family is exported from the start.
	peer := newSimPeer(base, "not-the-secret", 0, 4242, syInfoHash("deploy-monitoring"), 1, 0)
	body, err := peer.announce(0, 0, "started")
	if err != nil {
		t.Fatal(err)
	}
	if syFailure(body) == "" {
		t.Fatalf("announce with an unknown uid succeeded: %q", body)
	}
	exported := dmParseExposition(syGet(t, base+"/metrics"))
	if code := p.stop(t); code != 0 {
		t.Fatalf("serve exited %d; stderr:\n%s", code, p.stderr.String())
	}

	exprs := make([]string, 0, len(uses))
	for e := range uses {
		exprs = append(exprs, e)
	}
	sort.Strings(exprs)
	used := map[string]bool{}
	for _, e := range exprs {
		where := strings.Join(uses[e], ", ")
		for _, name := range dmMetricRE.FindAllString(e, -1) {
			used[name] = true
			if _, ok := exported.family(name); !ok {
				t.Errorf("%s uses %s, which the tracker does not export (expression: %s)", where, name, e)
			}
		}
		for _, msg := range exported.checkLabels(e) {
			t.Errorf("%s: %s (expression: %s)", where, msg, e)
		}
	}
	// The checks above must have had something to check.
	for _, want := range []string{"xbt_tracker_last_flush_age_seconds", "xbt_tracker_ledger_entries",
		"xbt_tracker_ledger_bound_entries", "xbt_tracker_flush_duration_seconds_bucket", "xbt_tracker_lookups_total"} {
		if !used[want] {
			t.Errorf("no rule or panel uses %s", want)
		}
	}
	t.Logf("%d metric names in %d expressions checked against /metrics (%d families)", len(used), len(exprs), len(exported.types))
}

// TestDeployMonitoringPromtool runs promtool's checks of the rules and their
// unit tests, after checking that every alert has a unit test.
func TestDeployMonitoringPromtool(t *testing.T) {
	root := clRepoRoot()
	rules, err := os.ReadFile(filepath.Join(root, dmRules))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join(root, dmRuleTests))
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)\s*$`).FindAllSubmatch(rules, -1)
	if len(alerts) == 0 {
		t.Fatalf("%s has no alert", dmRules)
	}
	for _, a := range alerts {
		if !regexp.MustCompile(`(?m)^\s*alertname:\s*` + regexp.QuoteMeta(string(a[1])) + `\s*$`).Match(tests) {
			t.Errorf("%s has no test of alert %s", dmRuleTests, a[1])
		}
	}

	promtool := requirePromtool(t)
	for _, args := range [][]string{{"check", "rules", dmRules}, {"test", "rules", dmRuleTests}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, promtool, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// requirePromtool returns promtool's path. Without it the test is skipped,
// or fails when CI is set (like requireClients).
func requirePromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	msg := "promtool is not installed; install: " + dmPromtoolHint
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure)")
	}
	t.Skip(msg)
	return ""
}

// dmExprKeyRE matches a rule's expr key and what follows it on its line.
var dmExprKeyRE = regexp.MustCompile(`^(\s*)(?:- )?expr:\s*(.*?)\s*$`)

// dmRuleExprs returns the expr of every rule in a Prometheus rules file.
//
// The YAML is read with a regexp, not a YAML library: the module requires
// none (gopkg.in/yaml.v3 and go.yaml.in/yaml are only in its module graph,
// through the Prometheus client's dependencies), and a dependency for one
// test is not worth it. The forms the rules file uses are handled: a plain
// or quoted scalar on the key's line, or a block scalar (| or >, with a
// chomping indicator) on the lines indented under it; the count of exprs is
// checked against the count of rules, so a form this misses fails the test
// instead of going unchecked.
func dmRuleExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var exprs []string
	for i, l := range lines {
		m := dmExprKeyRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indent, v := len(m[1]), m[2]
		switch {
		case strings.HasPrefix(v, "|"), strings.HasPrefix(v, ">"):
			var parts []string
			for _, next := range lines[i+1:] {
				s := strings.TrimSpace(next)
				if s != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
					break
				}
				if s != "" {
					parts = append(parts, s)
				}
			}
			v = strings.Join(parts, " ")
		case len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]:
			v = v[1 : len(v)-1]
		}
		if v == "" {
			t.Fatalf("%s:%d: empty expr", path, i+1)
		}
		exprs = append(exprs, v)
	}
	rules := regexp.MustCompile(`(?m)^\s*- (?:alert|record):`).FindAllIndex(b, -1)
	if len(exprs) == 0 || len(exprs) != len(rules) {
		t.Fatalf("%s: read %d exprs for %d rules", path, len(exprs), len(rules))
	}
	return exprs
}

// dmUse is a PromQL expression of the dashboard and where it is.
type dmUse struct{ expr, where string }

// dmDashboardExprs returns every query of a Grafana dashboard: the panels'
// target expressions (rows' nested panels included) and the template
// variables' queries. Every panel but a row must have one, and must query
// the dashboard's ${datasource} variable.
func dmDashboardExprs(t *testing.T, path string) []dmUse {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	type panel struct {
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				Definition string          `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var uses []dmUse
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			n := 0
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					continue
				}
				if tg.Datasource.UID != "${datasource}" {
					t.Errorf("%s: panel %q queries datasource %q, want the variable ${datasource}", path, p.Title, tg.Datasource.UID)
				}
				uses = append(uses, dmUse{tg.Expr, fmt.Sprintf("panel %q", p.Title)})
				n++
			}
			if n == 0 {
				t.Errorf("%s: panel %q has no query", path, p.Title)
			}
		}
	}
	walk(d.Panels)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if json.Unmarshal(v.Query, &s) != nil {
				t.Fatalf("%s: variable %s: query is neither a string nor an object", path, v.Name)
			}
			q.Query = s
		}
		for _, e := range []string{q.Query, v.Definition} {
			if e != "" {
				uses = append(uses, dmUse{e, "variable $" + v.Name})
			}
		}
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("%s: template variables %v, want datasource (a data source) and instance (a query)", path, vars)
	}
	if len(uses) == 0 {
		t.Fatalf("%s: no query found", path)
	}
	return uses
}

// dmExposition is what /metrics exports: each family's type and, per
// family, the label names and name=value pairs of its samples.
type dmExposition struct {
	types  map[string]string          // family -> counter, gauge, histogram, ...
	labels map[string]map[string]bool // family -> "name" and "name=value" of its samples
}

var (
	dmTypeRE   = regexp.MustCompile(`^# TYPE (\S+) (\S+)$`)
	dmSampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+`)
	dmLabelRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// dmParseExposition reads the text format. The registry prints # HELP and
// # TYPE only for families with at least one sample, so a # TYPE line
// means the series exist.
func dmParseExposition(body string) *dmExposition {
	x := &dmExposition{types: map[string]string{}, labels: map[string]map[string]bool{}}
	for l := range strings.SplitSeq(body, "\n") {
		if m := dmTypeRE.FindStringSubmatch(l); m != nil {
			x.types[m[1]] = m[2]
			continue
		}
		m := dmSampleRE.FindStringSubmatch(l)
		if m == nil || strings.HasPrefix(l, "#") {
			continue
		}
		fam, ok := x.family(m[1])
		if !ok {
			continue
		}
		if x.labels[fam] == nil {
			x.labels[fam] = map[string]bool{}
		}
		for _, lv := range dmLabelRE.FindAllStringSubmatch(m[2], -1) {
			x.labels[fam][lv[1]] = true
			x.labels[fam][lv[1]+"="+lv[2]] = true
		}
	}
	return x
}

// family returns the family a series name belongs to: the name itself, or,
// for a histogram's _bucket, _sum and _count series (a summary's _sum and
// _count), the histogram's.
func (x *dmExposition) family(name string) (string, bool) {
	if _, ok := x.types[name]; ok {
		return name, true
	}
	for suffix, types := range map[string][]string{
		"_bucket": {"histogram"},
		"_sum":    {"histogram", "summary"},
		"_count":  {"histogram", "summary"},
	} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && slices.Contains(types, x.types[base]) {
			return base, true
		}
	}
	return "", false
}

// A selector (a metric name with its label matchers), one matcher, and a
// grouping clause's label list.
var (
	dmSelectorRE = regexp.MustCompile(`\b((?:xbt|go|process)_[a-z0-9_]+)\{([^}]*)\}`)
	dmMatcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"`)
	dmGroupingRE = regexp.MustCompile(`\b(?:by|on|without|ignoring)\s*\(([^)]*)\)`)
)

// dmTargetLabels are the labels Prometheus adds to every scraped series,
// and le, a histogram bucket's.
var dmTargetLabels = map[string]bool{"job": true, "instance": true, "le": true}

// checkLabels returns what is wrong with the labels expr uses: a matcher
// on a label its metric does not have, an equality matcher on a value no
// sample has, a grouping (by, on, ...) on a label none of the expression's
// metrics has. Prometheus' target labels (job, instance) are not exported
// by the tracker and are not checked.
func (x *dmExposition) checkLabels(expr string) []string {
	var msgs []string
	have := map[string]bool{}
	for _, name := range dmMetricRE.FindAllString(expr, -1) {
		if fam, ok := x.family(name); ok {
			for k := range x.labels[fam] {
				have[k] = true
			}
		}
	}
	for _, sel := range dmSelectorRE.FindAllStringSubmatch(expr, -1) {
		fam, ok := x.family(sel[1])
		if !ok {
			continue // reported by the caller
		}
		for _, m := range dmMatcherRE.FindAllStringSubmatch(sel[2], -1) {
			label, op, value := m[1], m[2], m[3]
			switch {
			case dmTargetLabels[label]:
			case !x.labels[fam][label]:
				msgs = append(msgs, fmt.Sprintf("%s has no label %s", sel[1], label))
			case op == "=" && !x.labels[fam][label+"="+value]:
				msgs = append(msgs, fmt.Sprintf("no %s series has %s=%q", sel[1], label, value))
			}
		}
	}
	for _, g := range dmGroupingRE.FindAllStringSubmatch(expr, -1) {
		for label := range strings.SplitSeq(g[1], ",") {
			label = strings.TrimSpace(label)
			if label != "" && !dmTargetLabels[label] && !have[label] {
				msgs = append(msgs, fmt.Sprintf("grouping by %s, a label none of its metrics has", label))
			}
		}
	}
	return msgs
}
