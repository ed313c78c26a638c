// Package replicatest runs a fleet of real `warden serve` processes on one fresh PostgreSQL
// database, for the tests that prove what several replicas promise together: a kill on one holds
// on all, a replica killed with SIGKILL loses nothing, sessions stay on their replica behind a
// load balancer. It builds the warden binary once per test binary.
package replicatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/apiclient"
)

// Bounds of the harness: nothing it starts may outlive them.
const (
	buildTimeout = 5 * time.Minute
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	cliTimeout   = 30 * time.Second
)

// Options configure a fleet.
type Options struct {
	// Replicas is how many `warden serve` to start: r1, r2, …; default 3.
	Replicas int
	// Config is YAML added to every replica's configuration file (top-level keys the harness
	// does not write: killswitch, tokens, gateway, audit, …).
	Config string
	// Store returns the store URL replica i (0-based) is given; nil gives every replica the
	// database itself. A test routes one replica through a proxy it can cut this way.
	Store func(i int, database string) string
	// PublicURL is the one URL of the fleet, the issuer of its tokens (every replica must
	// share it, or a token from one is refused by another); default the first replica's URL.
	PublicURL string
}

// Fleet is the running replicas and the database they share.
type Fleet struct {
	t         testing.TB
	Database  string // the URL of the fleet's own database
	AdminDB   string // the URL of the server's maintenance database (WARDEN_TEST_POSTGRES)
	DBName    string
	Token     string // the first admin token, bootstrapped by r1
	Replicas  []*Replica
	masterKey string
}

// Replica is one `warden serve` process.
type Replica struct {
	ID     string // r1, r2, …
	URL    string // http://127.0.0.1:PORT
	Listen string
	Dir    string // its data directory; its configuration and log are beside it
	config string
	store  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// LogPath is where the replica's stderr (its log) is written, across restarts.
func (r *Replica) LogPath() string { return filepath.Join(filepath.Dir(r.Dir), r.ID+".log") }

// Running says whether the replica's process is running.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Postgres returns the server WARDEN_TEST_POSTGRES names, skipping t with a clear message when it
// is unset or cannot be reached.
func Postgres(t testing.TB) string {
	t.Helper()
	server := os.Getenv("WARDEN_TEST_POSTGRES")
	if server == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set; set it to a postgres:// URL (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run the multi-replica tests; .ci/run does")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Skipf("PostgreSQL at WARDEN_TEST_POSTGRES is not reachable (%v); start it (.ci/run does) to run the multi-replica tests", err)
	}
	conn.Close(ctx)
	return server
}

// Start creates a fresh database, starts the replicas one after the other (the first bootstraps
// the admin token, which the others then find in the store) and waits until each is ready.
// Everything is stopped, and the database dropped, when t ends.
func Start(t testing.TB, o Options) *Fleet {
	t.Helper()
	server := Postgres(t)
	bin := Binary(t)
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	f := &Fleet{t: t, AdminDB: server, masterKey: randomKey()}
	f.createDatabase()
	root := t.TempDir()
	for i := range o.Replicas {
		r := &Replica{ID: fmt.Sprintf("r%d", i+1), Listen: freeAddr(t), Dir: filepath.Join(root, fmt.Sprintf("r%d", i+1))}
		r.URL = "http://" + r.Listen
		r.store = f.Database
		if o.Store != nil {
			r.store = o.Store(i, f.Database)
		}
		f.Replicas = append(f.Replicas, r)
	}
	public := o.PublicURL
	if public == "" {
		public = f.Replicas[0].URL
	}
	t.Cleanup(f.stopAll)
	for _, r := range f.Replicas {
		if err := os.MkdirAll(r.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		r.config = filepath.Join(root, r.ID+".yaml")
		cfg := fmt.Sprintf("listen: %s\ndata: %s\nstore: %q\nreplica_id: %s\npublic_url: %s\nlog:\n  level: info\n  format: json\nmcp:\n  sandbox: \"off\"\n%s",
			r.Listen, r.Dir, r.store, r.ID, public, o.Config)
		if err := os.WriteFile(r.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := f.start(bin, r); err != nil {
			t.Fatalf("starting replica %s: %v\n%s", r.ID, err, f.logTail(r))
		}
		if f.Token == "" {
			tok, err := os.ReadFile(filepath.Join(r.Dir, "admin.token"))
			if err != nil {
				t.Fatalf("replica %s did not bootstrap the first admin token: %v\n%s", r.ID, err, f.logTail(r))
			}
			f.Token = strings.TrimSpace(string(tok))
		}
	}
	f.WaitCaughtUp()
	return f
}

// WaitCaughtUp waits until the first replica lists every running replica as live, fresh and
// caught up (its change feed connected and its first reload applied). Before that a change can
// reach a replica by that first reload rather than by its announcement, and a test reading
// what the replica did with the change would read it from the wrong acknowledgement.
func (f *Fleet) WaitCaughtUp() {
	f.t.Helper()
	want := map[string]bool{}
	for _, r := range f.Replicas {
		if r.Running() {
			want[r.ID] = true
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rs, err := f.Client(0).Replicas(ctx)
		cancel()
		caught := 0
		if err == nil {
			for _, r := range rs.Replicas {
				if want[r.ID] && r.Live && r.Fresh && r.AppliedVersion > 0 && r.LagVersions == 0 {
					caught++
				}
			}
		}
		if caught == len(want) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the fleet did not catch up within 30s (%d of %d replicas; %v)", caught, len(want), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createDatabase creates the fleet's database and drops it at cleanup, ending its connections
// first (a replica killed with SIGKILL leaves them to the server's timeout otherwise).
func (f *Fleet) createDatabase() {
	f.DBName = "warden_rep_" + randomHex(6)
	f.Exec(context.Background(), f.AdminDB, "CREATE DATABASE "+f.DBName)
	f.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, f.AdminDB)
		if err != nil {
			f.t.Errorf("drop database %s: %v", f.DBName, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+f.DBName+" WITH (FORCE)"); err != nil {
			f.t.Errorf("drop database %s: %v", f.DBName, err)
		}
	})
	u, err := url.Parse(f.AdminDB)
	if err != nil {
		f.t.Fatalf("WARDEN_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + f.DBName
	f.Database = u.String()
}

// Exec runs one statement on the database at dsn (the fleet's own, or the maintenance one).
func (f *Fleet) Exec(ctx context.Context, dsn, sql string, args ...any) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		f.t.Fatalf("PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		f.t.Fatalf("PostgreSQL: %s: %v", sql, err)
	}
}

// start starts r's process and waits until /readyz answers 200.
func (f *Fleet) start(bin string, r *Replica) error {
	logFile, err := os.OpenFile(r.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "--config", r.config)
	cmd.Env = append(os.Environ(), "WARDEN_MASTER_KEY="+f.masterKey, "WARDEN_TOKEN=", "WARDEN_ADDR=")
	// Its stdout shows the first admin token, read from the data directory instead: a secret
	// kept out of the test's output.
	cmd.Stdout = nil
	cmd.Stderr = logFile
	// Its own process group, so that SIGKILL reaches whatever it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	return waitReady(r, done)
}

func waitReady(r *Replica, done <-chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := hc.Get(r.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("the process exited before it was ready")
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s", readyTimeout)
		}
	}
}

// Kill9 kills replica i (0-based) with SIGKILL, as a crash would, and waits for it to end.
func (f *Fleet) Kill9(i int) {
	f.t.Helper()
	f.signal(f.Replicas[i], syscall.SIGKILL)
}

// Stop stops replica i gracefully (SIGTERM), killing it when it has not ended within a bound.
func (f *Fleet) Stop(i int) {
	f.t.Helper()
	f.signal(f.Replicas[i], syscall.SIGTERM)
}

// Restart starts replica i again (after Kill9 or Stop) on the same address and data directory.
func (f *Fleet) Restart(i int) {
	f.t.Helper()
	r := f.Replicas[i]
	if r.Running() {
		f.t.Fatalf("replica %s is still running", r.ID)
	}
	if err := f.start(Binary(f.t), r); err != nil {
		f.t.Fatalf("restarting replica %s: %v\n%s", r.ID, err, f.logTail(r))
	}
}

func (f *Fleet) signal(r *Replica, sig syscall.Signal) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if sig != syscall.SIGKILL {
			f.t.Errorf("replica %s did not stop within %s of %s; killed", r.ID, stopTimeout, sig)
		}
	}
}

// stopAll stops every replica and, when the test failed, logs the tail of each one's log.
func (f *Fleet) stopAll() {
	for _, r := range f.Replicas {
		if r.Running() {
			f.signal(r, syscall.SIGTERM)
		}
	}
	if f.t.Failed() {
		for _, r := range f.Replicas {
			f.t.Logf("replica %s log:\n%s", r.ID, f.logTail(r))
		}
	}
}

// logTail is the end of a replica's log, for a failure message.
func (f *Fleet) logTail(r *Replica) string {
	data, err := os.ReadFile(r.LogPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 8 << 10
	if len(data) > max {
		data = append([]byte("…"), data[len(data)-max:]...)
	}
	return string(data)
}

// Client returns an admin client of replica i.
func (f *Fleet) Client(i int) *apiclient.Client {
	return &apiclient.Client{
		Base: f.Replicas[i].URL, Token: apiclient.StaticToken(f.Token),
		HTTP: &http.Client{Timeout: 30 * time.Second}, UserAgent: "warden-replicatest", NameCalls: true,
	}
}

// CLI runs the warden CLI against replica i with the admin token and returns its stdout.
func (f *Fleet) CLI(i int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(f.t), args...)
	cmd.Env = append(os.Environ(), "WARDEN_ADDR="+f.Replicas[i].URL, "WARDEN_TOKEN="+f.Token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("warden %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary builds ./cmd/warden once per test binary (the Go build cache makes later builds
// cheap) and returns its path. Main removes it.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "warden-replicatest-")
		if build.err != nil {
			return
		}
		root, err := moduleRoot()
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(build.dir, "warden")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", build.path, "./cmd/warden")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/warden: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Main runs the tests of a package that uses the harness and removes the binary after.
func Main(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside warden's module")
	}
	return filepath.Dir(mod), nil
}

// freeAddr returns a 127.0.0.1 address no one listens on now.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Sandbox is a `warden run` process started by RunSandbox.
type Sandbox struct {
	Cmd  *exec.Cmd
	Done <-chan struct{} // closed when it has exited
	Log  string          // its output
}

// RunSandbox starts `warden run --agent NAME -- command…` as agent a through replica i, with
// the agent's credentials and nothing of the admin's in its environment, and kills it (and its
// sandbox) when the test ends. It needs root, like the sandbox.
func (f *Fleet) RunSandbox(i int, a *Agent, command ...string) *Sandbox {
	f.t.Helper()
	ws := f.t.TempDir()
	cmd := exec.Command(Binary(f.t), append([]string{"run", "--agent", a.Name, "--workspace", ws, "--"}, command...)...)
	cmd.Dir = ws
	cmd.Env = []string{"WARDEN_ADDR=" + f.Replicas[i].URL, "WARDEN_CLIENT_ID=" + a.ClientID, "WARDEN_CLIENT_SECRET=" + a.Secret}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	s := &Sandbox{Cmd: cmd, Log: filepath.Join(ws, "..", "sandbox-"+a.Name+".log")}
	logFile, err := os.Create(s.Log)
	if err != nil {
		f.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		f.t.Fatalf("warden run: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	s.Done = done
	f.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			f.t.Errorf("warden run for %s did not end within %s of SIGKILL", a.Name, stopTimeout)
		}
	})
	return s
}
