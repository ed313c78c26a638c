package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/server"
)

// SelfOptions configure a server that bench or drill starts in its own process (--self).
type SelfOptions struct {
	// Store is a postgres:// URL; empty means SQLite in the temporary data directory.
	Store string
	// AuditSink ships the audit log to a file sink in the data directory, as a deployment that
	// exports to a SIEM does.
	AuditSink bool
	// Getenv reads WARDEN_MASTER_KEY (needed to reuse a PostgreSQL store that has keys) and the
	// variables a sink may name; nil reads nothing.
	Getenv func(string) string
	// Log receives the server's errors; nil discards them.
	Log io.Writer
}

// Self is a warden server running in this process on 127.0.0.1, on a temporary data directory
// that Stop removes.
type Self struct {
	URL   string // http://127.0.0.1:PORT
	Token string // an admin token
	Dir   string

	opts      SelfOptions
	addr      string
	srv       *server.Server
	stop      context.CancelFunc
	done      chan error
	tokenName string // the admin token Self created on a store that already had one; revoked by Stop
}

// StartSelf starts a server in-process. On a fresh store it uses the first admin token; on a
// PostgreSQL store that already has admin tokens it creates one of its own, revoked by Stop.
func StartSelf(ctx context.Context, o SelfOptions) (*Self, error) {
	dir, err := os.MkdirTemp("", "warden-bench-")
	if err != nil {
		return nil, err
	}
	s := &Self{Dir: dir, opts: o, addr: "127.0.0.1:0"}
	if err := s.start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	token, err := s.srv.Admin.Bootstrap(ctx)
	if err == nil && token == "" {
		s.tokenName = "warden-bench-" + suffix(6)
		_, token, err = s.srv.Admin.CreateAdminToken(ctx, &warden.Principal{Name: "warden-bench", Role: warden.RoleAdmin},
			apitype.AdminTokenSpec{Name: s.tokenName, Role: string(warden.RoleAdmin)})
	}
	if err != nil {
		s.tokenName = ""
		return nil, errors.Join(err, s.Stop())
	}
	s.Token = token
	return s, nil
}

func (s *Self) start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	s.addr = ln.Addr().String()
	cfg := config.Default()
	cfg.Listen = s.addr
	cfg.Data = s.Dir
	cfg.Store = s.opts.Store
	if s.opts.AuditSink {
		cfg.Audit.Sinks = []config.AuditSink{{Name: "bench-file", Type: "file", Path: "audit-sink.jsonl"}}
	}
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return err
	}
	logTo := s.opts.Log
	if logTo == nil {
		logTo = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelError}))
	getenv := s.opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	srv, err := server.Open(ctx, cfg, log, getenv)
	if err != nil {
		ln.Close()
		return err
	}
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.srv, s.stop, s.done = srv, stop, make(chan error, 1)
	s.URL = cfg.PublicURL
	go func() { s.done <- srv.Serve(serveCtx, ln, 5*time.Second) }()
	return s.waitReady(ctx)
}

// waitReady waits until the server answers /readyz.
func (s *Self) waitReady(ctx context.Context) error {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := newClient(s.URL, "", tr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Do(ctx, http.MethodGet, "/readyz", nil, nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the in-process server did not become ready: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Server is the running server's parts, for tests that look inside.
func (s *Self) Server() *server.Server { return s.srv }

// halt stops serving and closes the store, keeping the data.
func (s *Self) halt() error {
	if s.srv == nil {
		return nil
	}
	s.stop()
	err := <-s.done
	err = errors.Join(err, s.srv.Close())
	s.srv = nil
	return err
}

// Restart stops the server and starts it again on the same data and address, so that tokens
// issued before (whose issuer is the address) are judged by the same rules.
func (s *Self) Restart(ctx context.Context) error {
	if err := s.halt(); err != nil {
		return fmt.Errorf("stopping the server: %w", err)
	}
	var err error
	for range 50 { // the port was ours a moment ago; give the kernel a moment to release it
		if err = s.start(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Stop revokes the admin token Self created (if any), stops the server and removes its data
// directory.
func (s *Self) Stop() error {
	var errs []error
	if s.tokenName != "" && s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, s.srv.Admin.RevokeAdminToken(ctx, &warden.Principal{Name: "warden-bench", Role: warden.RoleAdmin}, s.tokenName))
		cancel()
	}
	errs = append(errs, s.halt(), os.RemoveAll(s.Dir))
	return errors.Join(errs...)
}

// SinkFile is the audit sink's file when AuditSink is on.
func (s *Self) SinkFile() string { return filepath.Join(s.Dir, "audit-sink.jsonl") }

// suffix is n random lowercase letters and digits: it keeps the names of what one run creates
// apart from every other run's and from anything a person named.
func suffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
