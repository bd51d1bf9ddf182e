package httpfront_test

import (
	"strings"
	"testing"

	"github.com/xbt-tracker/xbt-tracker/tracker/httpfront"
)

// StatusInfo.Extra rows (the UDP frontend's counts) appear on /statistics,
// names escaped.
func TestStatisticsExtraRows(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testStatisticsExtraRows(t, m) })
	}
}

func testStatisticsExtraRows(t *testing.T, m mode) {
	trk := newTracker(t, nil)
	ts := startServer(t, m, trk, httpfront.Config{Status: func() httpfront.StatusInfo {
		return httpfront.StatusInfo{Stats: trk.Stats(), Extra: []httpfront.StatusRow{
			{Name: "udp announce requests", Value: 42}, {Name: "<b>", Value: -1},
		}}
	}})
	_, body := ts.dial(t).get("/statistics")
	page := string(body)
	for _, want := range []string{
		`<th>udp announce requests</th><td class="n">42</td>`,
		`<th>&lt;b&gt;</th><td class="n">-1</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("statistics page lacks %q:\n%s", want, page)
		}
	}
}
