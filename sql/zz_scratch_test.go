package sql

import (
	"context"
	gosql "database/sql"
	"os"
	"testing"
	"time"
	"strconv"
	gosync "sync"
)

func scratchDB(t *testing.T) *gosql.DB {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	db, err := Open(context.Background(), "root:@tcp(127.0.0.1:3306)/xbt_scratch_measure")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

const qUsers = "SELECT uid, torrent_pass, torrent_pass_version, can_leech, wait_time, peers_limit, torrents_limit FROM xbt_users"

func TestScratchText(t *testing.T) {
	db := scratchDB(t)
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		rows, err := db.Query(qUsers)
		if err != nil { t.Fatal(err) }
		n := 0
		var a, c, d, e, f, g int64
		var b gosql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&a, &b, &c, &d, &e, &f, &g); err != nil { t.Fatal(err) }
			n++
		}
		rows.Close()
		t.Logf("text int64 scan: %d %v", n, time.Since(t0))
		t0 = time.Now()
		rows, _ = db.Query(qUsers)
		var r [7]gosql.RawBytes
		n = 0
		for rows.Next() {
			if err := rows.Scan(&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]); err != nil { t.Fatal(err) }
			for _, x := range []int{0,2,3,4,5,6} { v, _ := strconv.ParseInt(string(r[x]), 10, 64); a += v }
			n++
		}
		rows.Close()
		t.Logf("text raw scan: %d %v", n, time.Since(t0))
		t0 = time.Now()
		st, _ := db.Prepare(qUsers + " WHERE uid > ?")
		rows, err = st.Query(0)
		if err != nil { t.Fatal(err) }
		n = 0
		for rows.Next() {
			if err := rows.Scan(&a, &b, &c, &d, &e, &f, &g); err != nil { t.Fatal(err) }
			n++
		}
		rows.Close()
		st.Close()
		t.Logf("binary scan: %d %v", n, time.Since(t0))
		t0 = time.Now()
		var wg gosync.WaitGroup
		for k := 0; k < 2; k++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				rows, err := db.Query(qUsers + " WHERE uid % 2 = " + strconv.Itoa(k))
				if err != nil { t.Error(err); return }
				var a, c, d, e, f, g int64
				var b gosql.RawBytes
				for rows.Next() { rows.Scan(&a, &b, &c, &d, &e, &f, &g) }
				rows.Close()
			}(k)
		}
		wg.Wait()
		t.Logf("2 parallel halves: %v", time.Since(t0))
	}
}
