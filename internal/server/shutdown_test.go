package server_test

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestShutdownClosesSilentConnections: a connection that was accepted but never sent a request
// (a client's pool dialled it for a request it then cancelled; a port scanner; a load balancer's
// TCP check) does not hold a graceful shutdown. net/http counts such a connection as active for
// its first 5 s, so a shutdown with a grace of 5 s or less used to run out and Serve returned
// "context deadline exceeded" (TestApprovalPendingLimit failed so in CI).
func TestShutdownClosesSilentConnections(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server has accepted the connection once it answers a request on another one.
	if r := in.do("GET", "/healthz", nil, ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	begin := time.Now()
	in.stop() // fails the test with "serve: context deadline exceeded" when the grace runs out
	if d := time.Since(begin); d > 4*time.Second {
		t.Errorf("the shutdown took %v with a silent connection open", d)
	}
	// The server closed the silent connection rather than waiting for it.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the silent connection is still open after the shutdown")
	}
}
