package integration

// The real BitTorrent clients of clients_test.go (aria2, libtorrent through
// integration/clients/lt_driver.py, Transmission) and a .torrent maker; the
// proxy they announce through is in recording_proxy_test.go. Every client
// listens and dials on 127.0.0.1 only, with DHT, LSD, PEX, UPnP/NAT-PMP and
// uTP off.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/bencode"
)

// Client kinds.
const (
	kindAria2        = "aria2"
	kindLibtorrent   = "libtorrent"
	kindTransmission = "transmission"
)

// debPython is Debian's python3, the only one that imports python3-libtorrent.
const debPython = "/usr/bin/python3"

const clInstallHint = "apt-get install -y --no-install-recommends transmission-cli transmission-daemon aria2 python3-libtorrent mktorrent (bash .ci/run does it)"

// requireClients skips the test when a client is missing, or fails it when
// the CI variable is set (CI installs them).
func requireClients(t *testing.T, kinds ...string) {
	t.Helper()
	var missing []string
	for _, k := range kinds {
		switch k {
		case kindAria2:
			if _, err := exec.LookPath("aria2c"); err != nil {
				missing = append(missing, "aria2c (package aria2)")
			}
		case kindTransmission:
			for _, b := range []string{"transmission-daemon", "transmission-remote"} {
				if _, err := exec.LookPath(b); err != nil {
					missing = append(missing, b)
				}
			}
		case kindLibtorrent:
			if err := exec.Command(debPython, "-c", "import libtorrent").Run(); err != nil {
				missing = append(missing, "python3-libtorrent (import libtorrent in "+debPython+")")
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("real BitTorrent clients missing: %s; install: %s", strings.Join(missing, ", "), clInstallHint)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure)")
	}
	t.Skip(msg)
}

// clRepoRoot is the module's root directory.
func clRepoRoot() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(self))
}

// clPayload is a random file and a .torrent of it (no announce, not private:
// the catalog makes it private and stamps it).
type clPayload struct {
	dir, name, torrent string
	size               int64
	sha256             [32]byte
}

func (p clPayload) path() string { return filepath.Join(p.dir, p.name) }

// makeClPayload writes size random bytes and a v1 .torrent of them, hashed
// here with 256 KiB pieces.
func makeClPayload(t *testing.T, name string, size int) clPayload {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "upload")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	p := clPayload{dir: dir, name: name, size: int64(size), sha256: sha256.Sum256(data)}
	if err := os.WriteFile(p.path(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	const pieceLen = 256 << 10
	var pieces []byte
	for off := 0; off < size; off += pieceLen {
		h := sha1.Sum(data[off:min(off+pieceLen, size)])
		pieces = append(pieces, h[:]...)
	}
	mi := map[string]any{
		"created by":    "xbt-tracker integration test",
		"creation date": time.Now().Unix(),
		"info": map[string]any{
			"name":         name,
			"length":       size,
			"piece length": pieceLen,
			"pieces":       pieces,
		},
	}
	b, err := bencode.EncodeBytes(mi)
	if err != nil {
		t.Fatal(err)
	}
	p.torrent = filepath.Join(filepath.Dir(dir), name+".torrent")
	if err := os.WriteFile(p.torrent, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// clFileSHA256 is the file's digest, or zero when it cannot be read.
func clFileSHA256(path string) [32]byte {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}
	}
	return [32]byte(h.Sum(nil))
}

// ---------------------------------------------------------------- clients

// btClient is one running real client with one torrent.
type btClient struct {
	t       *testing.T
	kind    string
	dir     string // where the payload is (seeder) or goes (leecher)
	port    int    // BitTorrent listen port
	cmd     *exec.Cmd
	out     *lineBuffer // stdout+stderr (aria2: also its log file, read by trackerError)
	stdin   io.WriteCloser
	rpc     string // transmission-remote address
	logFile string // aria2's log
	done    chan struct{}
}

// startBTClient starts a client on torrent with its data in dir. A seeder's
// dir holds the complete payload; a leecher's is empty.
func startBTClient(t *testing.T, kind, torrent, dir string, seed bool) *btClient {
	t.Helper()
	c := &btClient{t: t, kind: kind, dir: dir, port: freePort(t), done: make(chan struct{})}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case kindAria2:
		c.logFile = filepath.Join(t.TempDir(), "aria2.log")
		args := []string{
			"--no-conf=true", "--dir=" + dir, "--listen-port=" + fmt.Sprint(c.port),
			"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
			"--interface=127.0.0.1", "--disable-ipv6=true", "--file-allocation=none",
			"--summary-interval=0", "--console-log-level=notice", "--log=" + c.logFile, "--log-level=info",
			"--check-integrity=true", "--bt-tracker-connect-timeout=10", "--bt-tracker-timeout=10",
			"--auto-save-interval=0", "--save-not-found=false",
		}
		if seed {
			// Seed until SIGINT; announce every 5 s so a leecher that does
			// not dial (Transmission) is dialled soon after it announced.
			args = append(args, "--seed-ratio=0.0", "--bt-tracker-interval=5")
		} else {
			// Exit once complete: aria2 then sends event=stopped&left=0 and
			// never event=completed (the tracker must count it anyway).
			args = append(args, "--seed-time=0")
		}
		c.cmd = exec.Command("aria2c", append(args, torrent)...)
	case kindLibtorrent:
		c.cmd = exec.Command(debPython, filepath.Join(clRepoRoot(), "integration/clients/lt_driver.py"),
			"--torrent", torrent, "--save", dir, "--port", fmt.Sprint(c.port))
		in, err := c.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		c.stdin = in
	case kindTransmission:
		cfg := t.TempDir()
		rpcPort := freePort(t)
		c.rpc = fmt.Sprintf("127.0.0.1:%d", rpcPort)
		settings := map[string]any{
			"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
			"port-forwarding-enabled": false, "blocklist-enabled": false,
			"bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
			"peer-port": c.port, "peer-port-random-on-start": false,
			"rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": rpcPort,
			"rpc-authentication-required": false, "rpc-host-whitelist-enabled": false, "rpc-whitelist-enabled": false,
			"download-dir": dir, "incomplete-dir-enabled": false, "watch-dir-enabled": false,
			"start-added-torrents": true, "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
			"speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "alt-speed-enabled": false,
			"message-level": 2, "umask": 18,
		}
		b, _ := json.MarshalIndent(settings, "", "  ")
		if err := os.WriteFile(filepath.Join(cfg, "settings.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// -f: foreground, so the process is ours to stop.
		c.cmd = exec.Command("transmission-daemon", "-f", "-g", cfg)
	default:
		t.Fatalf("unknown client %q", kind)
	}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	c.out = newLineBuffer(pr)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", kind, err)
	}
	go func() {
		_ = c.cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	if kind == kindTransmission {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := c.remote("-l"); err == nil {
				break
			}
			if time.Now().After(deadline) || c.exited() {
				t.Fatalf("transmission-daemon RPC not up on %s; output:\n%s", c.rpc, c.out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out, err := c.remote("-a", torrent, "-w", dir); err != nil {
			t.Fatalf("transmission-remote -a: %v\n%s", err, out)
		}
		if seed {
			// Check the data already there, then start.
			_, _ = c.remote("-t", "all", "-v")
			_, _ = c.remote("-t", "all", "-s")
		}
	}
	if kind == kindLibtorrent && !c.out.waitFor(`"event": "added"`, 20*time.Second) {
		t.Fatalf("lt_driver did not add the torrent; output:\n%s", c.out.String())
	}
	return c
}

func (c *btClient) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// remote runs transmission-remote against this daemon.
func (c *btClient) remote(args ...string) (string, error) {
	cmd := exec.Command("transmission-remote", append([]string{c.rpc}, args...)...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return b.String(), err
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return b.String(), fmt.Errorf("transmission-remote %v timed out", args)
	}
}

// reannounce makes a seeder announce now, so a leecher that never dials
// 127.x peers (Transmission) is dialled. aria2 seeders announce every 5 s
// anyway; a Transmission seeder is only ever dialled.
func (c *btClient) reannounce() {
	switch c.kind {
	case kindLibtorrent:
		_, _ = io.WriteString(c.stdin, "reannounce\n")
	case kindTransmission:
		_, _ = c.remote("-t", "all", "--reannounce")
	}
}

// stop stops the client the way that sends event=stopped: SIGINT for
// aria2, remove_torrent for libtorrent, transmission-remote -S for
// Transmission (then, once stopped() reports the announce went out or 10 s
// passed, SIGTERM for the daemon, which sends nothing more).
func (c *btClient) stop(stopped func() bool) {
	t := c.t
	if c.exited() {
		return
	}
	switch c.kind {
	case kindAria2:
		_ = c.cmd.Process.Signal(syscall.SIGINT)
	case kindLibtorrent:
		_, _ = io.WriteString(c.stdin, "stop\n")
		c.stdin.Close()
	case kindTransmission:
		if out, err := c.remote("-t", "all", "-S"); err != nil {
			t.Errorf("transmission-remote -S: %v %s", err, out)
		}
		// The stopped announce goes out asynchronously: let it leave
		// before the daemon goes.
		clWait(10*time.Second, stopped)
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit within 30s of stop; output:\n%s", c.kind, c.out.String())
		c.kill()
	}
}

// kill ends the client's process group at once.
func (c *btClient) kill() {
	if c.cmd.Process == nil || c.exited() {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// trackerError is the tracker failure the client itself reports, "" when
// none yet.
func (c *btClient) trackerError() string {
	switch c.kind {
	case kindAria2:
		b, _ := os.ReadFile(c.logFile)
		for _, l := range strings.Split(string(b)+c.out.String(), "\n") {
			if strings.Contains(l, "failure reason") || strings.Contains(l, "unregistered") {
				return strings.TrimSpace(l)
			}
		}
	case kindLibtorrent:
		for _, l := range strings.Split(c.out.String(), "\n") {
			if strings.Contains(l, `"tracker_error"`) {
				return l
			}
		}
	case kindTransmission:
		out, _ := c.remote("-t", "all", "-it")
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "error") || strings.Contains(l, "unregistered") {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}
