package integration

import (
	"context"
	"crypto/rand"
	gosql "database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xbt-tracker/xbt-tracker/internal/dbtest"
)

// A private MariaDB for the fault tests that would disturb every other test
// if they hung or killed the shared server: its own datadir (initialised by
// mariadb-install-db into a temporary directory), port, socket and pid file,
// bound to 127.0.0.1, with a small buffer pool and redo log.
//
// pdbStart gives each test that needs one its own server (initialising a
// datadir takes about a second, starting mariadbd a fraction of one), and
// t.Cleanup stops it and removes everything, so no TestMain is needed and no
// server outlives the test that hung or killed it. The process is started
// with Pdeathsig, so even a test binary that dies (a -timeout panic) takes
// it along.

// pdbInstallHint is what a machine without MariaDB needs.
const pdbInstallHint = "install mariadb-server (Debian/Ubuntu: sudo apt-get install mariadb-server)"

// pdbServer is one private mariadbd.
type pdbServer struct {
	mariadbd, dir, datadir, sock, pidFile, errLog, osUser string
	port                                                  int

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	hung    bool          // SIGSTOPped and not yet SIGCONTed
	killed  bool          // SIGKILLed and not restarted
	dbNames []string      // throwaway databases (dropped at cleanup)
}

// pdbFind looks a MariaDB program up in PATH and the usual sbin directories
// (Debian installs mariadbd in /usr/sbin, often not in a user's PATH).
func pdbFind(names ...string) string {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin"} {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

// pdbStart initialises and starts a private mariadbd for t, and stops and
// removes it at t's cleanup. It skips t when MariaDB is not installed, and
// fails it instead when CI is set.
func pdbStart(t *testing.T) *pdbServer {
	t.Helper()
	mariadbd := pdbFind("mariadbd", "mysqld")
	installDB := pdbFind("mariadb-install-db", "mysql_install_db")
	if mariadbd == "" || installDB == "" {
		msg := fmt.Sprintf("private MariaDB: mariadbd %q, mariadb-install-db %q not found: %s", mariadbd, installDB, pdbInstallHint)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this is a failure)")
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "xbt-pdb-")
	if err != nil {
		t.Fatal(err)
	}
	osUser := "mysql"
	if u, err := user.Current(); err == nil {
		osUser = u.Username
	}
	s := &pdbServer{
		mariadbd: mariadbd, dir: dir, datadir: filepath.Join(dir, "data"),
		sock: filepath.Join(dir, "mariadbd.sock"), pidFile: filepath.Join(dir, "mariadbd.pid"),
		errLog: filepath.Join(dir, "mariadbd.log"), osUser: osUser,
	}
	t.Cleanup(func() {
		s.shutdown(t)
		if t.Failed() {
			t.Logf("private mariadbd log (%s), last lines:\n%s", s.errLog, s.logTail(20))
		}
		_ = os.RemoveAll(dir)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, installDB, "--no-defaults", "--auth-root-authentication-method=normal",
		"--skip-test-db", "--datadir="+s.datadir, "--user="+osUser,
		"--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("private MariaDB: %s: %v\n%s", installDB, err, out)
	}
	s.port = freePort(t)
	s.launch(t)
	s.waitReady(t, 60*time.Second)
	t.Logf("private mariadbd on 127.0.0.1:%d (data %s)", s.port, s.datadir)
	return s
}

// launch starts mariadbd on the datadir (not waiting for it).
func (s *pdbServer) launch(t *testing.T) {
	t.Helper()
	cmd := exec.Command(s.mariadbd, "--no-defaults",
		"--datadir="+s.datadir, "--socket="+s.sock, "--pid-file="+s.pidFile,
		fmt.Sprintf("--port=%d", s.port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--user="+s.osUser, "--log-error="+s.errLog,
		"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M",
		"--max-connections=300", "--skip-log-bin", "--performance-schema=OFF")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("private MariaDB: start %s: %v", s.mariadbd, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.hung, s.killed = cmd, exited, false, false
	s.mu.Unlock()
}

// addr is the server's TCP address.
func (s *pdbServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// dsn is root's DSN for database name (may be ""), with parseTime and a
// dial timeout, as dbtest makes them.
func (s *pdbServer) dsn(t *testing.T, name string) string {
	t.Helper()
	dsn, err := dbtest.DSNFor("root:@tcp("+s.addr()+")/", name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// ping reports whether the server answers a query within d.
func (s *pdbServer) ping(d time.Duration) error {
	cfg, err := mysql.ParseDSN(fmt.Sprintf("root:@tcp(%s)/", s.addr()))
	if err != nil {
		return err
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = d, d, d
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := gosql.OpenDB(c)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var one int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// waitReady waits until the server answers, failing t if it exits or does
// not answer within d.
func (s *pdbServer) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("private mariadbd exited while starting; log:\n%s", s.logTail(30))
		default:
		}
		if err = s.ping(2 * time.Second); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("private mariadbd did not answer on %s within %v: %v; log:\n%s", s.addr(), d, err, s.logTail(30))
}

func (s *pdbServer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.killed || s.cmd == nil {
		t.Fatalf("private mariadbd: %v to a server that is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("private mariadbd: %v: %v", sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		s.hung = true
	case syscall.SIGCONT:
		s.hung = false
	}
}

// hang freezes the server (SIGSTOP): connections stay open, the kernel
// still accepts new ones, nothing is answered.
func (s *pdbServer) hang(t *testing.T) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP)
}

// resume undoes hang (SIGCONT). Calling it on a server that is not hung
// does nothing.
func (s *pdbServer) resume(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	hung, killed := s.hung, s.killed
	s.mu.Unlock()
	if hung && !killed {
		s.signal(t, syscall.SIGCONT)
	}
}

// kill SIGKILLs the server (hung or not) and waits until it is gone.
func (s *pdbServer) kill(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	cmd, exited, killed := s.cmd, s.exited, s.killed
	s.mu.Unlock()
	if killed || cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("private mariadbd did not die within 30s of SIGKILL")
	}
	s.mu.Lock()
	s.killed, s.hung = true, false
	s.mu.Unlock()
}

// restart starts the server again on the same datadir and port (after
// kill) and waits until it answers (crash recovery included).
func (s *pdbServer) restart(t *testing.T) {
	t.Helper()
	s.kill(t) // no-op when already killed
	s.launch(t)
	s.waitReady(t, 60*time.Second)
}

// shutdown stops the server: SIGCONT if hung, drop the test databases,
// SIGTERM, SIGKILL after 30s.
func (s *pdbServer) shutdown(t *testing.T) {
	s.mu.Lock()
	cmd, exited, hung, killed, names := s.cmd, s.exited, s.hung, s.killed, s.dbNames
	s.mu.Unlock()
	if cmd == nil || killed {
		return
	}
	if hung {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	if len(names) > 0 && s.ping(5*time.Second) == nil {
		if db, err := gosql.Open("mysql", s.dsn(t, "")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			for _, n := range names {
				if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+n+"`"); err != nil {
					t.Logf("private MariaDB: drop %s: %v", n, err)
				}
			}
			cancel()
			_ = db.Close()
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	s.mu.Lock()
	s.killed = true
	s.mu.Unlock()
}

// logTail returns the last n lines of the server's error log.
func (s *pdbServer) logTail(n int) string {
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pdbCatalog creates a throwaway database on s, migrates it with
// `xbt-tracker migrate up` and returns it as a catalog. The database is
// dropped when s is shut down at the end of the test. Its pool has short
// read/write timeouts so a check against a hung server fails instead of
// hanging; cat.dsn (for the tracker) has none, so the tracker runs with its
// defaults.
func pdbCatalog(t *testing.T, s *pdbServer) *syCatalog {
	t.Helper()
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("xbt_pdb_%d_%s", os.Getpid(), hex.EncodeToString(rnd[:]))
	admin, err := gosql.Open("mysql", s.dsn(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = admin.ExecContext(ctx, "CREATE DATABASE `"+name+"`")
	_ = admin.Close()
	if err != nil {
		t.Fatalf("private MariaDB: create database %s: %v", name, err)
	}
	s.mu.Lock()
	s.dbNames = append(s.dbNames, name)
	s.mu.Unlock()

	dsn := s.dsn(t, name)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ReadTimeout, cfg.WriteTimeout = 15*time.Second, 15*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := gosql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	mustRun(t, []string{"XBT_DSN=" + dsn}, "migrate", "up")
	return &syCatalog{db: db, dsn: dsn}
}
