package sql

import (
	"context"
	gosql "database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

// TestBigPoll measures what the change poll (Loader.Poll, every
// change_poll_interval) costs the database at 1M users and 1M files, for
// docs/BENCHMARKS.md ("Change poll"):
//
//	XBT_BIG=1 go test -run TestBigPoll -v -timeout 30m ./sql
//
// The polls run on one connection with the server's query profiler on
// (SET profiling = 1), so the server's own time and CPU per statement are
// read for exactly the tracker's statements, whatever other clients do;
// MariaDB's process CPU (/proc/PID/stat, when the server is local) over the
// polls, less an idle period as long, is the cross-check.
func TestBigPoll(t *testing.T) {
	n := bigRows(t)
	ctx := context.Background()
	db, s := bigDB(t, n)

	// One connection, so the profiler sees every statement of the Loader.
	one, err := Open(ctx, dsnOf(t, db))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	one.SetMaxOpenConns(1)
	one.SetMaxIdleConns(1)
	one.SetConnMaxLifetime(0)
	one.SetConnMaxIdleTime(0)
	l := NewLoader(one, s)
	t0 := time.Now()
	if snap, err := l.Load(ctx); err != nil || !snap.Full {
		t.Fatalf("first Load: %v", err)
	}
	t.Logf("RESULT first Load (full, one connection): %v", time.Since(t0).Round(time.Millisecond))
	mustExec(t, one, "SET profiling_history_size = 100")
	mustExec(t, one, "SET profiling = 1")

	pid := serverPID(t, db)
	type sample struct{ wall, server, cpu time.Duration }
	// poll runs one Poll and returns its wall time and the server's
	// duration and CPU (user + system) summed over its statements.
	poll := func(want func(*Snapshot) bool) sample {
		before := lastQueryID(t, one)
		start := time.Now()
		snap, err := l.Poll(ctx)
		wall := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if !want(snap) {
			t.Fatalf("Poll = %d users, %d removed users, %d torrents, %d removed torrents", len(snap.Users), len(snap.RemovedUsers), len(snap.Torrents), len(snap.RemovedTorrents))
		}
		sm := sample{wall: wall}
		sm.server, sm.cpu = profiled(t, one, before)
		return sm
	}
	report := func(name string, ss []sample) {
		pick := func(f func(sample) time.Duration) (med, p90 time.Duration) {
			var v []time.Duration
			for _, s := range ss {
				v = append(v, f(s))
			}
			slices.Sort(v)
			return v[len(v)/2], v[len(v)*9/10]
		}
		wm, w9 := pick(func(s sample) time.Duration { return s.wall })
		sm, s9 := pick(func(s sample) time.Duration { return s.server })
		cm, c9 := pick(func(s sample) time.Duration { return s.cpu })
		t.Logf("RESULT %s, %d profiled: tracker-side wall median %v (p90 %v); server statement time median %v (p90 %v); server CPU (profiler) median %v (p90 %v)",
			name, len(ss), wm.Round(time.Microsecond), w9.Round(time.Microsecond), sm.Round(time.Microsecond), s9.Round(time.Microsecond),
			cm.Round(time.Microsecond), c9.Round(time.Microsecond))
	}
	empty := func(snap *Snapshot) bool {
		return len(snap.Users)+len(snap.RemovedUsers)+len(snap.Torrents)+len(snap.RemovedTorrents) == 0
	}

	// 1. Nothing changed: N profiled polls; then N polls back to back
	// with the profiler off, whose mariadbd CPU (less that of the same
	// wall time idle just before) is the cross-check.
	const nEmpty = 300
	measureEmpty := func(name string) {
		var ss []sample
		for range nEmpty {
			ss = append(ss, poll(empty))
		}
		mustExec(t, one, "SET profiling = 0")
		defer mustExec(t, one, "SET profiling = 1")
		idleStart, idleCPU := time.Now(), procCPU(pid)
		time.Sleep(2 * time.Second)
		idleWall, idleUsed := time.Since(idleStart), procCPU(pid)-idleCPU
		const nProc = 1000
		start, cpu0 := time.Now(), procCPU(pid)
		for range nProc {
			if snap, err := l.Poll(ctx); err != nil || !empty(snap) {
				t.Fatalf("Poll: %v", err)
			}
		}
		wall, used := time.Since(start), procCPU(pid)-cpu0
		report(name, ss)
		perPoll := "n/a (server not local)"
		if pid > 0 {
			net := used - time.Duration(float64(idleUsed)*wall.Seconds()/idleWall.Seconds())
			perPoll = fmt.Sprint((net / nProc).Round(time.Microsecond))
		}
		t.Logf("RESULT %s, %d back to back, profiler off: %v per poll (tracker-side wall); mariadbd CPU per poll %s (/proc: %v in %v, less %v in %v idle before)",
			name, nProc, (wall / nProc).Round(time.Microsecond), perPoll, used, wall.Round(time.Millisecond), idleUsed, idleWall.Round(time.Millisecond))
	}
	measureEmpty("poll, nothing changed (empty changelog)")

	// 2. About ten changes per poll, one poll every 2 s as with the
	// default change_poll_interval (so each poll re-reads the changes of
	// the previous ~5 polls inside its 10 s window, and delivers its own).
	const rounds = 25
	var ss []sample
	next := n
	for r := range rounds {
		var ids []string
		for range 4 {
			ids = append(ids, strconv.Itoa(1+rand.IntN(n)))
		}
		mustExec(t, db, "UPDATE xbt_users SET torrent_pass_version = torrent_pass_version + 1 WHERE uid IN ("+strings.Join(ids, ",")+")")
		ids = ids[:0]
		for range 3 {
			ids = append(ids, strconv.Itoa(1+rand.IntN(n)))
		}
		mustExec(t, db, "UPDATE xbt_users SET can_leech = 1 - can_leech WHERE uid IN ("+strings.Join(ids, ",")+")")
		next++
		mustExec(t, db, fmt.Sprintf("INSERT INTO xbt_users (uid) VALUES (%d)", next))
		mustExec(t, db, fmt.Sprintf("INSERT INTO xbt_files (info_hash, mtime, ctime) VALUES (UNHEX(SHA1('poll %d')), 1, 1)", r))
		mustExec(t, db, fmt.Sprintf("DELETE FROM xbt_users WHERE uid = %d", 1+rand.IntN(n)))
		ss = append(ss, poll(func(snap *Snapshot) bool {
			return len(snap.Users) >= 7 && len(snap.Torrents) == 1 && len(snap.RemovedUsers) <= 1
		}))
		time.Sleep(2 * time.Second)
	}
	report("poll with ~10 changes (4 version bumps, 3 bans, 1 new user, 1 deleted user, 1 new torrent), one every 2 s", ss)

	// 3. Nothing changed again, the changelog now holding the rows above
	// (all older than the poll's window).
	time.Sleep(defaultPollWindow)
	measureEmpty("poll, nothing changed (changelog with 250 older rows)")

	// For comparison: an incremental Load that finds nothing (it also
	// checks the triggers), as every read_db_interval.
	var loads []sample
	for range 20 {
		before := lastQueryID(t, one)
		start := time.Now()
		snap, err := l.Load(ctx)
		wall := time.Since(start)
		if err != nil || snap.Full {
			t.Fatalf("incremental Load: %v", err)
		}
		sm := sample{wall: wall}
		sm.server, sm.cpu = profiled(t, one, before)
		loads = append(loads, sm)
	}
	report("incremental Load (reload), nothing changed", loads)
}

// dsnOf returns the DSN of the database db is connected to.
func dsnOf(t *testing.T, db *gosql.DB) string {
	t.Helper()
	var name string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	dsn, err := dbtest.DSNFor(dbtest.BaseDSN(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// lastQueryID is the newest statement in the session's profile history;
// this query itself becomes the next one.
func lastQueryID(t *testing.T, db *gosql.DB) int {
	t.Helper()
	var id int
	if err := db.QueryRow("SELECT COALESCE(MAX(QUERY_ID), 0) FROM information_schema.PROFILING").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// profiled returns the server's duration and CPU (user + system) summed
// over the statements profiled after lastQueryID returned before (and
// after that query itself).
func profiled(t *testing.T, db *gosql.DB, before int) (dur, cpu time.Duration) {
	t.Helper()
	rows, err := db.Query("SELECT p.QUERY_ID, SUM(p.DURATION), SUM(COALESCE(p.CPU_USER, 0) + COALESCE(p.CPU_SYSTEM, 0)) "+
		"FROM information_schema.PROFILING p WHERE p.QUERY_ID > ? GROUP BY p.QUERY_ID ORDER BY p.QUERY_ID", before+1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		var d, c float64
		if err := rows.Scan(&id, &d, &c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		dur += time.Duration(d * float64(time.Second))
		cpu += time.Duration(c * float64(time.Second))
	}
	if len(ids) < 4 {
		var out []string
		if rs, err := db.Query("SHOW PROFILES"); err == nil {
			for rs.Next() {
				var id int
				var d float64
				var q string
				_ = rs.Scan(&id, &d, &q)
				out = append(out, fmt.Sprint(id, " ", q))
			}
			rs.Close()
		}
		t.Fatalf("profile holds %d statements, want the poll's 4 or more: %q", len(ids), out)
	}
	return dur, cpu
}

// serverPID is mariadbd's process id when the server runs on this machine
// (its pid file is readable), else 0.
func serverPID(t *testing.T, db *gosql.DB) int {
	t.Helper()
	var file string
	if err := db.QueryRow("SELECT @@pid_file").Scan(&file); err != nil {
		return 0
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || procCPU(pid) < 0 {
		return 0
	}
	return pid
}

// procCPU is the user + system CPU time of process pid (-1 if unknown).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // CLK_TCK 100 on Linux
}
