package integration

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeDemoCluster runs `make demo-cluster`'s script (two instances and
// HAProxy) and uses the curl line it prints: the announce through HAProxy
// must work, name the instance that answered, and Ctrl-C must stop
// everything.
func TestMakeDemoCluster(t *testing.T) {
	requireHAProxy(t)
	// HAProxy's port and the first of two consecutive instance ports.
	hport, first := freePort(t), freePort(t)
	for range 20 {
		if !portOpen(first+1) && first+1 != hport {
			break
		}
		first = freePort(t)
	}
	cmd := demoScript(t, "scripts/demo-cluster.sh", "xbt_test_demo_cluster", "XBT_BIN="+binary,
		fmt.Sprintf("XBT_CLUSTER_PORT=%d", hport), fmt.Sprintf("XBT_CLUSTER_FIRST_PORT=%d", first),
		"XBT_DEMO_DIR="+t.TempDir())
	buf, done := startGroupWait(t, cmd)
	if !buf.waitFor("Ctrl-C stops HAProxy and the instances.", 90*time.Second) {
		t.Fatalf("demo-cluster did not get ready:\n%s", buf.String())
	}
	u, resp := demoCurl(t, buf.String())
	if !strings.Contains(u, fmt.Sprintf("127.0.0.1:%d/", hport)) {
		t.Fatalf("the curl line %s does not go through HAProxy (port %d)", u, hport)
	}
	if who := answeredBy(resp); who != "t1" && who != "t2" {
		t.Fatalf("%s = %q, want t1 or t2", clusterInstanceHeader, who)
	}

	// Ctrl-C: the script stops HAProxy and both instances and exits.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("demo-cluster did not stop within 60 s of SIGINT:\n%s", buf.String())
	}
	for _, port := range []int{hport, first, first + 1} {
		if clWait(5*time.Second, func() bool { return !portOpen(port) }) {
			continue
		}
		t.Errorf("something still listens on 127.0.0.1:%d after Ctrl-C", port)
	}
}

// portOpen reports whether something accepts connections on 127.0.0.1:port.
func portOpen(port int) bool {
	c, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}
