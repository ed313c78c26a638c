package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// silentConns tracks the server's connections that have not sent a request yet (StateNew).
// http.Server.Shutdown treats such a connection as active for its first 5 s, so a client's pool
// that dialled for a request it then cancelled, a port scanner or a load balancer's TCP check
// would hold a graceful shutdown that long — beyond a short grace. Closing one that has been
// silent for a second loses nothing: no request was read from it, and a client sends its request
// right after it connects.
type silentConns struct {
	mu    sync.Mutex
	conns map[net.Conn]time.Time // when it was accepted
}

// silentAge is how long a connection must have sent nothing before shutdown closes it.
const silentAge = time.Second

// trackSilentConns installs the tracking on srv (before it serves).
func trackSilentConns(srv *http.Server) *silentConns {
	sc := &silentConns{conns: make(map[net.Conn]time.Time)}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		sc.mu.Lock()
		if st == http.StateNew {
			sc.conns[c] = time.Now()
		} else {
			delete(sc.conns, c)
		}
		sc.mu.Unlock()
		if next != nil {
			next(c, st)
		}
	}
	return sc
}

// closeWhile closes, every 100 ms until ctx ends or the returned stop is called, each connection
// silent for silentAge, as net/http itself does after 5 s.
func (sc *silentConns) closeWhile(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sc.closeOlder(time.Now().Add(-silentAge))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (sc *silentConns) closeOlder(t time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for c, accepted := range sc.conns {
		if accepted.Before(t) {
			_ = c.Close()
			delete(sc.conns, c)
		}
	}
}
