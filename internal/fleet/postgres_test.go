package fleet_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/pgtest"
	"github.com/wardenhq/warden/internal/postgres"
)

// testDatabase creates a database of its own for t (pgtest.Database), brings its schema up to
// date as the store does, and returns its URL.
func testDatabase(t testing.TB) string {
	t.Helper()
	dsn := pgtest.Database(t)
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("migrate the test database: %v", err)
	}
	store.Close()
	return dsn
}

// replica is one fleet.Postgres under test with the changes its handler received.
type replica struct {
	*fleet.Postgres
	mu      sync.Mutex
	changes []fleet.Change
	// applied is what the handler reports; block, when set, is waited on before answering a
	// change of that topic.
	applied fleet.Applied
	block   map[fleet.Topic]chan struct{}
	stop    func() // ends run; set by run
}

func (r *replica) handle(ctx context.Context, c fleet.Change) (fleet.Applied, error) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	gate := r.block[c.Topic]
	applied := r.applied
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return fleet.Applied{}, ctx.Err()
		}
	}
	return applied, nil
}

// received returns the changes of topic the handler has been given.
func (r *replica) received(topic fleet.Topic) []fleet.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []fleet.Change
	for _, c := range r.changes {
		if c.Topic == topic {
			out = append(out, c)
		}
	}
	return out
}

const testStaleness = 500 * time.Millisecond

// open joins the fleet at dsn as id, with short intervals, and leaves it when t ends.
func open(t testing.TB, dsn, id string) *replica {
	t.Helper()
	p, err := fleet.OpenPostgres(context.Background(), dsn, fleet.Options{
		ID: id, Address: "http://" + id, Version: "test", MaxStaleness: testStaleness, Heartbeat: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("open replica %s: %v", id, err)
	}
	t.Cleanup(func() { p.Close() })
	return &replica{Postgres: p, block: map[fleet.Topic]chan struct{}{}}
}

// run runs r's feed until t ends (or r.stop), and waits for it to stop then.
func run(t testing.TB, r *replica) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, r.handle) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run %s: %v", r.Self(), err)
			}
		})
	}
	t.Cleanup(r.stop)
}

// start opens and runs a replica and waits until its feed is caught up.
func start(t testing.TB, dsn, id string) *replica {
	t.Helper()
	r := open(t, dsn, id)
	run(t, r)
	eventually(t, id+" fresh", func() bool { return !r.Stale(time.Now()) })
	return r
}

// eventually polls cond until it holds, failing t after ten seconds: the bound of a condition
// the code makes true within milliseconds, kept generous for a loaded machine.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPublishReachesEveryOtherReplicaAndIsAcknowledged(t *testing.T) {
	dsn := testDatabase(t)
	a, b, c := start(t, dsn, "a"), start(t, dsn, "b"), start(t, dsn, "c")
	b.applied = fleet.Applied{CallsCancelled: 1, SessionsClosed: 2, SandboxesStopped: 3}

	v, err := a.Publish(t.Context(), fleet.TopicAgent, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	acks := a.WaitAcks(t.Context(), v, 5*time.Second)
	if len(acks) != 2 || acks[0].ID != "b" || acks[1].ID != "c" {
		t.Fatalf("acks = %+v, want one for b and one for c", acks)
	}
	for _, ack := range acks {
		if !ack.Acked || ack.Error != "" || ack.AckedMS <= 0 {
			t.Errorf("ack = %+v, want acknowledged with its time", ack)
		}
	}
	if acks[0].CallsCancelled != 1 || acks[0].SessionsClosed != 2 || acks[0].SandboxesStopped != 3 {
		t.Errorf("b's ack = %+v, want what its handler did (1, 2, 3)", acks[0])
	}
	want := fleet.Change{Topic: fleet.TopicAgent, Name: "agent-1", Version: v, Replica: "a"}
	for _, r := range []*replica{b, c} {
		if got := r.received(fleet.TopicAgent); len(got) != 1 || got[0] != want {
			t.Errorf("%s received %+v, want %+v", r.Self(), got, want)
		}
	}

	// b's change reaches a after a's own, which a must not have applied: it published it.
	v2, err := b.Publish(t.Context(), fleet.TopicPolicy, "")
	if err != nil {
		t.Fatal(err)
	}
	if v2 <= v {
		t.Errorf("b's version %d after a's %d: versions must rise across the fleet", v2, v)
	}
	eventually(t, "a receives b's policy change", func() bool { return len(a.received(fleet.TopicPolicy)) == 1 })
	if got := a.received(fleet.TopicAgent); len(got) != 0 {
		t.Errorf("a applied its own change: %+v", got)
	}
	// A policy change is not the kill state: nobody acknowledges it.
	if acks := b.WaitAcks(t.Context(), v2, 200*time.Millisecond); len(acks) != 2 || acks[0].Acked || acks[1].Acked {
		t.Errorf("acks of a policy change = %+v, want none", acks)
	}
}

func TestWaitAcksNamesTheReplicaThatDoesNotAnswer(t *testing.T) {
	dsn := testDatabase(t)
	a, b := start(t, dsn, "a"), open(t, dsn, "b")
	gate := make(chan struct{})
	b.block[fleet.TopicTool] = gate
	run(t, b)
	eventually(t, "b fresh", func() bool { return !b.Stale(time.Now()) })

	v, err := a.Publish(t.Context(), fleet.TopicTool, "shell")
	if err != nil {
		t.Fatal(err)
	}
	acks := a.WaitAcks(t.Context(), v, 300*time.Millisecond)
	if len(acks) != 1 || acks[0].ID != "b" || acks[0].Acked || acks[0].Error != "no acknowledgement within 300ms" {
		t.Fatalf("acks = %+v, want b not acknowledged within 300ms", acks)
	}
	// A caller that gives up first hears why.
	gaveUp, cancel := context.WithCancel(t.Context())
	cancel()
	if acks := a.WaitAcks(gaveUp, v, time.Minute); len(acks) != 1 || acks[0].Acked || !strings.HasPrefix(acks[0].Error, "stopped waiting") {
		t.Errorf("acks after the caller gave up = %+v, want none acknowledged, stopped waiting", acks)
	}
	// A replica that cannot apply a change goes stale: it may not serve on an old view.
	eventually(t, "b stale while its handler is stuck", func() bool { return b.Stale(time.Now()) })

	close(gate)
	eventually(t, "b fresh after applying", func() bool { return !b.Stale(time.Now()) })
	// The acknowledgement arrived while nobody waited; it is kept for the next to ask.
	eventually(t, "b's acknowledgement kept", func() bool {
		acks := a.WaitAcks(t.Context(), v, 10*time.Millisecond)
		return len(acks) == 1 && acks[0].Acked
	})
}

func TestFeedFailsClosedWhileDownAndCatchesUp(t *testing.T) {
	dsn := testDatabase(t)
	a, b := start(t, dsn, "a"), start(t, dsn, "b")
	admin := rawDB(t, os.Getenv("WARDEN_TEST_POSTGRES"))
	name := strings.TrimPrefix(mustParse(t, dsn).Path, "/")
	reloads := len(b.received(fleet.TopicAll))
	// A connection opened now, to publish on while the database refuses new ones.
	publisher, err := rawDB(t, dsn).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer publisher.Close()

	// Keep b's feed from reconnecting, then cut it.
	if _, err := admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	pid := b.ListenPID()
	var terminated bool
	if err := admin.QueryRow(`SELECT pg_terminate_backend($1)`, int64(pid)).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("terminate b's LISTEN backend %d: %v, %v", pid, terminated, err)
	}
	eventually(t, "b stale with its feed down", func() bool { return b.Stale(time.Now()) })
	eventually(t, "a fresh, its feed up", func() bool { return !a.Stale(time.Now()) })
	// A full reload (the safety-net poll) keeps b fresh for MaxStaleness while the feed is down,
	// and no longer.
	b.Reloaded(time.Now())
	if b.Stale(time.Now()) {
		t.Error("b stale right after a full reload")
	}
	eventually(t, "b stale again once its reload aged", func() bool { return b.Stale(time.Now()) })

	// A change published while b was deaf reaches it only through the reload on reconnection.
	// (Published as Publish does, on the connection kept open: a's pool may need a new one.)
	var v int64
	if err := publisher.QueryRowContext(t.Context(), `
		SELECT s.v FROM (SELECT nextval('fleet_version') AS v) s
		CROSS JOIN LATERAL pg_notify('warden_changes', json_build_object('t', 'agent', 'n', 'agent-1', 'v', s.v, 'r', 'c')::text)`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	// Reconnected, b is not fresh before its reload has finished: the reload is what covers the
	// gap.
	gate := make(chan struct{})
	b.mu.Lock()
	b.block[fleet.TopicAll] = gate
	b.mu.Unlock()
	if _, err := admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b reloads on reconnecting", func() bool { return len(b.received(fleet.TopicAll)) > reloads })
	if !b.Stale(time.Now()) {
		t.Error("b fresh on reconnecting before its reload finished")
	}
	close(gate)
	eventually(t, "b fresh after reconnecting", func() bool { return !b.Stale(time.Now()) })
	got := b.received(fleet.TopicAll)
	if len(got) <= reloads || got[len(got)-1].Version < v {
		t.Errorf("b's reloads = %+v, want one after reconnecting covering version %d", got, v)
	}
	if len(b.received(fleet.TopicAgent)) != 0 {
		t.Error("b received a notification published while it was disconnected")
	}
	// And it acknowledged the reload, which covers the kill a waits for.
	if acks := a.WaitAcks(t.Context(), v, 5*time.Second); len(acks) != 1 || !acks[0].Acked {
		t.Errorf("acks = %+v, want b's acknowledgement of its reload", acks)
	}
}

func TestHalfOpenFeedIsFoundOutAndReplaced(t *testing.T) {
	dsn := testDatabase(t)
	a := start(t, dsn, "a")
	proxy := newBlackholeProxy(t, mustParse(t, dsn).Host)
	u := mustParse(t, dsn)
	u.Host = proxy.addr
	b := start(t, u.String(), "b")
	reloads := len(b.received(fleet.TopicAll))

	// Every connection b has now stops answering without closing, as when a network path dies.
	proxy.swallowExisting()
	eventually(t, "b reconnects and reloads", func() bool { return len(b.received(fleet.TopicAll)) > reloads })
	eventually(t, "b fresh on its new connection", func() bool { return !b.Stale(time.Now()) })
	if _, err := a.Publish(t.Context(), fleet.TopicLockdown, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b hears changes again", func() bool { return len(b.received(fleet.TopicLockdown)) == 1 })
	// pgxpool's Close waits up to 15s for a pooled connection that never answers; cut them,
	// as the network eventually would, so that b leaves at once.
	proxy.cutAll()
}

func TestALiveReplicaIDIsRefused(t *testing.T) {
	dsn := testDatabase(t)
	first := start(t, dsn, "r1") // beating every 100 ms
	_, err := fleet.OpenPostgres(t.Context(), dsn, fleet.Options{ID: "r1", Heartbeat: 200 * time.Millisecond})
	if !errors.Is(err, fleet.ErrReplicaIDInUse) || !strings.Contains(err.Error(), `"r1"`) || !strings.Contains(err.Error(), "replica_id") {
		t.Fatalf("second r1: err = %v, want ErrReplicaIDInUse naming r1 and replica_id", err)
	}
	// Once the first leaves, the ID is free.
	first.stop()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, dsn, "r1")
	// An ID whose heartbeat stopped (a replica that died) may be taken too.
	if _, err := rawDB(t, dsn).Exec(`UPDATE fleet_replicas SET heartbeat_at = heartbeat_at - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	open(t, dsn, "r1")
}

// A replica restarted at once after a crash finds its own heartbeat still live: it waits for the
// heartbeat to lapse and starts, rather than refusing.
func TestAReplicaRestartedAfterACrashWaitsForItsHeartbeatToLapse(t *testing.T) {
	dsn := testDatabase(t)
	open(t, dsn, "r1") // registered, then "crashed": its heartbeat is fresh but nobody beats it
	start := time.Now()
	second, err := fleet.OpenPostgres(t.Context(), dsn, fleet.Options{ID: "r1", Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("restart refused: %v", err)
	}
	defer second.Close()
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("took the ID after %v, before the old heartbeat lapsed (300 ms)", waited)
	}
}

func TestAReplicaWhoseIDIsTakenGoesStale(t *testing.T) {
	dsn := testDatabase(t)
	a := start(t, dsn, "a")
	// Another process takes a's ID, as one may when a's heartbeat lapsed.
	if _, err := rawDB(t, dsn).Exec(`UPDATE fleet_replicas SET instance = 'another', heartbeat_at = now() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a stale", func() bool { return a.Stale(time.Now()) })
	a.Reloaded(time.Now())
	if !a.Stale(time.Now()) {
		t.Error("a fresh after a reload though its ID is another's")
	}
}

func TestReplicasListsTheFleetAndOnlyLiveOnesAreWaitedFor(t *testing.T) {
	dsn := testDatabase(t)
	a, b := start(t, dsn, "a"), start(t, dsn, "b")
	open(t, dsn, "dead") // registered but never runs: its heartbeat stops at once
	db := rawDB(t, dsn)
	if _, err := db.Exec(`UPDATE fleet_replicas SET heartbeat_at = heartbeat_at - interval '1 hour' WHERE id = 'dead'`); err != nil {
		t.Fatal(err)
	}

	var v int64
	for range 3 {
		var err error
		if v, err = a.Publish(t.Context(), fleet.TopicAgent, "agent-1"); err != nil {
			t.Fatal(err)
		}
	}
	acks := a.WaitAcks(t.Context(), v, 5*time.Second)
	if len(acks) != 1 || acks[0].ID != "b" || !acks[0].Acked {
		t.Fatalf("acks = %+v, want b alone (dead is not live)", acks)
	}
	// b's heartbeat carries the version it applied and that it is fresh.
	var list apitype.Replicas
	eventually(t, "a and b fresh, b with lag 0, in the list", func() bool {
		var err error
		list, err = a.Replicas(t.Context())
		return err == nil && len(list.Replicas) == 3 && list.Replicas[0].Fresh && list.Replicas[1].ID == "b" &&
			list.Replicas[1].LagVersions == 0 && list.Replicas[1].Fresh
	})
	if list.Version != v {
		t.Errorf("fleet version = %d, want %d", list.Version, v)
	}
	self, other, dead := list.Replicas[0], list.Replicas[1], list.Replicas[2]
	if self.ID != "a" || !self.Self || !self.Live || !self.Fresh || self.AppliedVersion != v || self.Address != "http://a" || self.Version != "test" {
		t.Errorf("a = %+v, want itself, live, fresh, applied %d", self, v)
	}
	if other.ID != "b" || other.Self || !other.Live || !other.Fresh || other.AppliedVersion != v || other.StartedAt.IsZero() {
		t.Errorf("b = %+v, want live, fresh, applied %d", other, v)
	}
	if dead.ID != "dead" || dead.Live || dead.Fresh || dead.LagVersions != v {
		t.Errorf("dead = %+v, want not live, not fresh, lagging %d", dead, v)
	}
	// From b's side, a is the other one.
	if list, err := b.Replicas(t.Context()); err != nil || !list.Replicas[1].Self || list.Replicas[0].Self {
		t.Errorf("b's list = %+v, %v, want b marked self", list, err)
	}
}

func TestOpenPostgresRefusesBadInput(t *testing.T) {
	dsn := testDatabase(t)
	for _, id := range []string{"", strings.Repeat("x", 201)} {
		if _, err := fleet.OpenPostgres(t.Context(), dsn, fleet.Options{ID: id}); err == nil || !strings.Contains(err.Error(), "replica_id") {
			t.Errorf("id %q: err = %v, want a replica_id error", id, err)
		}
	}
	r := open(t, dsn, "a")
	if _, err := r.Publish(t.Context(), fleet.TopicAgent, strings.Repeat("n", 1025)); err == nil {
		t.Error("published a name longer than a notification may carry")
	}
	var n int64
	if err := rawDB(t, dsn).QueryRow(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fleet_version`).Scan(&n); err != nil || n != 0 {
		t.Errorf("fleet version after a refused publish = %d, %v; want 0", n, err)
	}
}

func TestOpenPostgresWithoutTheSchema(t *testing.T) {
	server := os.Getenv("WARDEN_TEST_POSTGRES")
	if server == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set; set it to a postgres:// URL to run the fleet's PostgreSQL tests")
	}
	u := mustParse(t, server)
	q := u.Query()
	q.Set("search_path", "warden_no_such_schema")
	u.RawQuery = q.Encode()
	_, err := fleet.OpenPostgres(t.Context(), u.String(), fleet.Options{ID: "a"})
	if err == nil || !strings.Contains(err.Error(), "open the store") {
		t.Errorf("err = %v, want one saying to open the store first", err)
	}
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// blackholeProxy forwards TCP connections to a server until told to swallow: from then on the
// connections open at that moment stay open but carry nothing either way, as a half-open
// connection does; new connections are forwarded.
type blackholeProxy struct {
	addr  string
	mu    sync.Mutex
	open  []*atomic.Bool // each connection's swallow flag
	conns []net.Conn     // both ends of every connection
}

func newBlackholeProxy(t testing.TB, target string) *blackholeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackholeProxy{addr: ln.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.cutAll()
		conns.Wait()
	})
	conns.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			swallow := new(atomic.Bool)
			p.mu.Lock()
			p.open = append(p.open, swallow)
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			conns.Go(func() { pipe(server, client, swallow) })
			conns.Go(func() { pipe(client, server, swallow) })
		}
	})
	return p
}

// swallowExisting makes every connection open now a black hole.
func (p *blackholeProxy) swallowExisting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.open {
		s.Store(true)
	}
}

// cutAll closes every connection.
func (p *blackholeProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// pipe copies from src to dst, dropping the bytes once swallow is set.
func pipe(dst io.WriteCloser, src io.Reader, swallow *atomic.Bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !swallow.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func rawDB(t testing.TB, dsn string) *sql.DB { return pgtest.DB(t, dsn) }
