package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
)

// Options configure a replica of a fleet on PostgreSQL.
type Options struct {
	ID      string // the replica's stable ID (config replica_id)
	Address string // its public URL, for `warden replicas`
	Version string // warden's version it runs
	// MaxStaleness is how long the replica may go without confirming its feed (and without a
	// full reload) before Stale reports true. Default 2s.
	MaxStaleness time.Duration
	// Heartbeat is how often the replica records that it is alive; a replica whose heartbeat
	// is older than three of these is not live and nobody waits for it. Default 1s.
	Heartbeat time.Duration
	Clock     clock.Clock  // times feed confirmations, acknowledgements and backoff; Stale's now must come from it; nil is the real clock
	Log       *slog.Logger // nil discards
}

// The bounds of the feed's reconnection backoff: quick enough that a dropped connection costs
// little of MaxStaleness, slow enough not to hammer a database that is down.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// The bounds of what a replica remembers: publish times of its own recent versions, recent
// acknowledgements per replica, and how many replicas it remembers acknowledgements of.
const (
	publishedKept = 1024
	acksKept      = 64
	ackersKept    = 256
	queueKept     = 1024 // changes waiting for the handler before they collapse into one reload
)

// ErrReplicaIDInUse is returned by OpenPostgres when another live replica already uses the ID.
var ErrReplicaIDInUse = errors.New("replica id in use by another live replica")

// Postgres is the fleet of replicas sharing one PostgreSQL database. Changes travel as
// notifications on one channel; every replica keeps a heartbeat row in fleet_replicas.
type Postgres struct {
	id, address, version string
	instance             string // this process's nonce: another process may not take the ID while it is live
	started              time.Time
	maxStaleness         time.Duration
	heartbeat            time.Duration
	clock                clock.Clock
	log                  *slog.Logger
	pool                 *pgxpool.Pool
	listenConfig         *pgx.ConnConfig

	// The freshness of the feed, read lock-free on every tool call (Stale). Times are Unix
	// nanoseconds of the clock; 0 is never.
	connGen      atomic.Int64 // the listen connection's generation while connected, else 0
	readyGen     atomic.Int64 // the generation whose catch-up reload finished
	nextGen      atomic.Int64
	confirmed    atomic.Int64 // when the feed was last seen to work
	pendingSince atomic.Int64 // when the oldest change not yet applied arrived
	reloaded     atomic.Int64 // the newest full reload (Reloaded)
	applied      atomic.Int64 // the newest version applied
	// idLost is set when another live process took this replica's ID: acknowledgements under
	// the ID no longer say which process applied a change, so this one stays stale.
	idLost    atomic.Bool
	listenPID atomic.Uint32

	mu        sync.Mutex
	published [publishedKept]publication // a ring, by version modulo its size
	acks      map[string][]arrival       // replica → its recent acknowledgements, oldest first
	ackSignal chan struct{}              // closed and replaced when an acknowledgement arrives
}

var _ Bus = (*Postgres)(nil)

type publication struct {
	version int64
	at      time.Time
}

type arrival struct {
	ack
	at time.Time
}

// OpenPostgres joins the fleet on the PostgreSQL database at url, whose schema the store has
// already brought up to date (postgres.Open), and registers this replica's heartbeat. It
// refuses an ID that another live replica uses. Run starts the feed; Close leaves the fleet.
func OpenPostgres(ctx context.Context, url string, opts Options) (*Postgres, error) {
	if opts.ID == "" || len(opts.ID) > maxIDLen {
		return nil, fmt.Errorf("fleet: replica id %q: want 1 to %d bytes (replica_id)", opts.ID, maxIDLen)
	}
	if opts.MaxStaleness <= 0 {
		opts.MaxStaleness = 2 * time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	poolConfig, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	// Publishing, acknowledging and the heartbeat: a few at a time at most.
	poolConfig.MaxConns = 4
	listenConfig, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	p := &Postgres{
		id: opts.ID, address: opts.Address, version: opts.Version, instance: hex.EncodeToString(nonce[:]),
		maxStaleness: opts.MaxStaleness, heartbeat: opts.Heartbeat, clock: clock.Or(opts.Clock), log: opts.Log,
		pool: pool, listenConfig: listenConfig, acks: map[string][]arrival{}, ackSignal: make(chan struct{}),
	}
	if err := p.register(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// liveMicros is the liveness bound in microseconds, as the SQL takes it.
func (p *Postgres) liveMicros() int64 { return (3 * p.heartbeat).Microseconds() }

// register writes this replica's first heartbeat, unless another live process holds the ID.
func (p *Postgres) register(ctx context.Context) error {
	// A replica restarted at once after a crash finds its own last heartbeat still live: it
	// waits for that heartbeat to lapse (it stops when the old process is gone) rather than
	// refusing to start. A heartbeat that goes on beating is another live process: refused.
	deadline := time.Now().Add(3*p.heartbeat + p.heartbeat)
	for {
		err := p.registerOnce(ctx)
		if !errors.Is(err, ErrReplicaIDInUse) || time.Now().After(deadline) {
			return err
		}
		p.log.Info("fleet: replica id has a live heartbeat, waiting for it to lapse (a restart after a crash)", "replica", p.id)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(p.heartbeat / 2):
		}
	}
}

func (p *Postgres) registerOnce(ctx context.Context) error {
	err := p.pool.QueryRow(ctx, `
		INSERT INTO fleet_replicas (id, instance, address, version, started_at, heartbeat_at)
		VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp())
		ON CONFLICT (id) DO UPDATE SET instance = EXCLUDED.instance, address = EXCLUDED.address,
			version = EXCLUDED.version, started_at = EXCLUDED.started_at,
			heartbeat_at = EXCLUDED.heartbeat_at, applied_version = 0, fresh = FALSE
		WHERE fleet_replicas.heartbeat_at < clock_timestamp() - $5 * interval '1 microsecond'
		RETURNING started_at`,
		p.id, p.instance, p.address, p.version, p.liveMicros()).Scan(&p.started)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("fleet: %w: %q has a heartbeat younger than %s; give each replica its own replica_id in its config",
			ErrReplicaIDInUse, p.id, 3*p.heartbeat)
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		return errors.New("fleet: the database has no fleet_replicas table: open the store (which migrates the schema) before the fleet")
	case err != nil:
		return fmt.Errorf("fleet: register replica %q: %w", p.id, err)
	}
	return nil
}

// Close leaves the fleet: it deletes this replica's heartbeat row, so that nobody waits for it,
// and closes its connections. Call it after Run has returned.
func (p *Postgres) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.pool.Exec(ctx, `DELETE FROM fleet_replicas WHERE id = $1 AND instance = $2`, p.id, p.instance)
	p.pool.Close()
	if err != nil {
		return fmt.Errorf("fleet: leave the fleet: %w", err)
	}
	return nil
}

// Self is this replica's ID.
func (p *Postgres) Self() string { return p.id }

// Publish takes the next fleet version and notifies it in one statement, so that no version is
// taken without being announced.
func (p *Postgres) Publish(ctx context.Context, topic Topic, name string) (int64, error) {
	if len(name) > maxNameLen {
		return 0, fmt.Errorf("fleet: publish %s: name of %d bytes, more than %d", topic, len(name), maxNameLen)
	}
	at := p.clock.Now()
	var version int64
	err := p.pool.QueryRow(ctx, `
		SELECT s.v FROM (SELECT nextval('fleet_version') AS v) s
		CROSS JOIN LATERAL pg_notify('`+channel+`', json_build_object('t', $1::text, 'n', $2::text, 'v', s.v, 'r', $3::text)::text)`,
		string(topic), name, p.id).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("fleet: publish %s: %w", topic, err)
	}
	p.mu.Lock()
	p.published[version%publishedKept] = publication{version: version, at: at}
	p.mu.Unlock()
	p.markApplied(version) // this replica applied it before publishing
	return version, nil
}

// markApplied records that the replica's view includes version.
func (p *Postgres) markApplied(version int64) {
	for {
		old := p.applied.Load()
		if version <= old || p.applied.CompareAndSwap(old, version) {
			return
		}
	}
}

// Stale reports whether the replica cannot confirm its view is current at now: neither has its
// feed been confirmed (connected, caught up, seen working and no change waiting) within
// MaxStaleness, nor has a full reload happened within it; or another process has taken its ID.
// It reads atomics only.
func (p *Postgres) Stale(now time.Time) bool {
	if p.idLost.Load() {
		return true
	}
	n, limit := now.UnixNano(), p.maxStaleness.Nanoseconds()
	if n-p.reloaded.Load() <= limit {
		return false
	}
	gen := p.connGen.Load()
	if gen == 0 || p.readyGen.Load() != gen || n-p.confirmed.Load() > limit {
		return true
	}
	pending := p.pendingSince.Load()
	return pending != 0 && n-pending > limit
}

// Reloaded records a full reload of the kill state at t.
func (p *Postgres) Reloaded(t time.Time) {
	n := t.UnixNano()
	for {
		old := p.reloaded.Load()
		if n <= old || p.reloaded.CompareAndSwap(old, n) {
			return
		}
	}
}

// Run keeps the feed and the heartbeat until ctx ends: one goroutine receives notifications
// (recording acknowledgements at once), one applies other replicas' changes through h in order
// and acknowledges the kill-state ones, one beats the heartbeat.
func (p *Postgres) Run(ctx context.Context, h Handler) error {
	q := newQueue(p.clock, &p.pendingSince)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { p.receive(ctx, q); return nil })
	g.Go(func() error { p.apply(ctx, q, h); return nil })
	g.Go(func() error { p.beat(ctx); return nil })
	return g.Wait()
}

// receive keeps a LISTEN connection, reconnecting with backoff when it drops.
func (p *Postgres) receive(ctx context.Context, q *queue) {
	backoff := minBackoff
	for {
		err := p.listen(ctx, q, func() { backoff = minBackoff })
		p.connGen.Store(0)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("fleet: the change feed is down; reconnecting", "replica", p.id, "err", err, "retry_in", backoff)
		if !p.wait(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// wait waits d on the clock, or until ctx ends (false).
func (p *Postgres) wait(ctx context.Context, d time.Duration) bool {
	t := p.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// listen connects, listens, queues a full reload (notifications may have been lost while the
// feed was down) and then receives notifications until the connection fails. When none arrives
// for a quarter of MaxStaleness it asks the connection a trivial question, so that a half-open
// connection is found out before the replica goes stale rather than never.
func (p *Postgres) listen(ctx context.Context, q *queue, connected func()) error {
	// Setting up is bounded too: a connection that stops answering halfway must not keep the
	// feed from reconnecting.
	setup, cancel := context.WithTimeout(ctx, max(p.maxStaleness, 5*time.Second))
	defer cancel()
	conn, err := pgx.ConnectConfig(setup, p.listenConfig)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	if _, err := conn.Exec(setup, "LISTEN "+channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Every change committed before LISTEN has a version at most this one and is in the store
	// the reload reads; every later one will be notified.
	var version int64
	if err := conn.QueryRow(setup, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fleet_version`).Scan(&version); err != nil {
		return fmt.Errorf("read the fleet version: %w", err)
	}
	cancel()
	gen := p.nextGen.Add(1)
	p.listenPID.Store(conn.PgConn().PID())
	p.confirmed.Store(p.clock.Now().UnixNano())
	p.connGen.Store(gen)
	connected()
	q.push(item{change: Change{Topic: TopicAll, Version: version, Replica: p.id}, gen: gen})
	idle := p.maxStaleness / 4
	for {
		wctx, cancel := context.WithTimeout(ctx, idle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			p.confirmed.Store(p.clock.Now().UnixNano())
			p.receiveNotice(n.Payload, q)
			continue
		case ctx.Err() != nil:
			return nil
		case !pgconn.Timeout(err):
			return fmt.Errorf("wait for a notification: %w", err)
		}
		asked := p.clock.Now().UnixNano()
		pctx, cancel := context.WithTimeout(ctx, idle)
		_, err = conn.Exec(pctx, "SELECT 1")
		cancel()
		if err != nil {
			return fmt.Errorf("confirm the feed: %w", err)
		}
		p.confirmed.Store(asked)
	}
}

// receiveNotice queues another replica's change or records its acknowledgement; this
// replica's own notices come back to it too and are ignored.
func (p *Postgres) receiveNotice(payload string, q *queue) {
	n, err := decodeNotice(payload)
	switch {
	case err != nil:
		p.log.Warn("fleet: dropped a malformed notification", "replica", p.id, "bytes", len(payload), "err", err)
	case n.change != nil && n.change.Replica != p.id:
		q.push(item{change: *n.change})
	case n.ack != nil && n.ack.Replica != p.id:
		p.recordAck(*n.ack)
	}
}

// recordAck keeps an acknowledgement and wakes whoever waits for acknowledgements.
func (p *Postgres) recordAck(a ack) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	kept, ok := p.acks[a.Replica]
	if !ok && len(p.acks) >= ackersKept {
		p.forgetQuietestAcker()
	}
	if len(kept) >= acksKept {
		kept = kept[1:]
	}
	p.acks[a.Replica] = append(kept, arrival{ack: a, at: now})
	close(p.ackSignal)
	p.ackSignal = make(chan struct{})
}

// forgetQuietestAcker drops the replica whose newest acknowledgement is the oldest, to keep the
// memory bounded whatever replica IDs notifications name. p.mu is held.
func (p *Postgres) forgetQuietestAcker() {
	var quietest string
	var at time.Time
	for id, kept := range p.acks {
		if last := kept[len(kept)-1].at; quietest == "" || last.Before(at) {
			quietest, at = id, last
		}
	}
	delete(p.acks, quietest)
}

// apply hands queued changes to h one at a time, in the order they arrived.
func (p *Postgres) apply(ctx context.Context, q *queue, h Handler) {
	for {
		it, ok := q.head(ctx)
		if !ok {
			return
		}
		p.applyOne(ctx, h, it)
		q.pop()
	}
}

// applyOne applies one change, retrying with backoff as a full reload when h fails (the change
// then stays pending, and the replica goes stale once it has waited MaxStaleness), then marks
// the feed caught up if it was a reconnection's reload and acknowledges kill-state changes.
func (p *Postgres) applyOne(ctx context.Context, h Handler, it item) {
	c := it.change
	backoff := minBackoff
	var applied Applied
	for {
		var err error
		applied, err = h(ctx, c)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("fleet: could not apply a change; retrying as a full reload", "replica", p.id,
			"topic", c.Topic, "version", c.Version, "err", err, "retry_in", backoff)
		c = Change{Topic: TopicAll, Version: c.Version, Replica: c.Replica}
		if !p.wait(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
	p.markApplied(c.Version)
	if it.gen != 0 && p.connGen.Load() == it.gen {
		p.readyGen.Store(it.gen)
	}
	if c.Topic.KillState() && c.Version > 0 {
		p.acknowledge(ctx, ack{Replica: p.id, Version: c.Version, Applied: applied})
	}
}

// acknowledge notifies the acknowledgement. It writes no row: a statement that updates one
// waits for the commit to reach the disk, which made the acknowledgement several times slower
// than a notification (BenchmarkPublishAck); the heartbeat records the applied version.
func (p *Postgres) acknowledge(ctx context.Context, a ack) {
	// Bounded, like the heartbeat: a connection that stopped answering must not stall the
	// applier for longer than the replica may be stale.
	ctx, cancel := context.WithTimeout(ctx, p.maxStaleness)
	defer cancel()
	if _, err := p.pool.Exec(ctx, `SELECT pg_notify('`+channel+`', $1)`, encodeAck(a)); err != nil && ctx.Err() == nil {
		p.log.Warn("fleet: could not acknowledge a change", "replica", p.id, "version", a.Version, "err", err)
	}
}

// beat records the heartbeat every Heartbeat until ctx ends.
func (p *Postgres) beat(ctx context.Context) {
	t := p.clock.NewTicker(p.heartbeat)
	defer t.Stop()
	for {
		switch err := p.beatOnce(ctx); {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, ErrReplicaIDInUse):
			p.idLost.Store(true)
			p.log.Error("fleet: this replica's ID is another's now; refusing calls until restarted with its own", "replica", p.id, "err", err)
		default:
			p.log.Warn("fleet: could not record the heartbeat", "replica", p.id, "err", err)
		}
		select {
		case <-t.C():
		case <-ctx.Done():
			return
		}
	}
}

// beatOnce writes the heartbeat row, unless another live process has taken the ID since (this
// one's heartbeat having lapsed), which it reports.
func (p *Postgres) beatOnce(ctx context.Context) error {
	fresh := !p.Stale(p.clock.Now())
	ctx, cancel := context.WithTimeout(ctx, p.heartbeat)
	defer cancel()
	tag, err := p.pool.Exec(ctx, `
		INSERT INTO fleet_replicas (id, instance, address, version, started_at, heartbeat_at, applied_version, fresh)
		VALUES ($1, $2, $3, $4, $5, clock_timestamp(), $6, $7)
		ON CONFLICT (id) DO UPDATE SET instance = EXCLUDED.instance, heartbeat_at = EXCLUDED.heartbeat_at,
			started_at = EXCLUDED.started_at, address = EXCLUDED.address, version = EXCLUDED.version,
			applied_version = GREATEST(EXCLUDED.applied_version,
				CASE WHEN fleet_replicas.instance = EXCLUDED.instance THEN fleet_replicas.applied_version ELSE 0 END),
			fresh = EXCLUDED.fresh
		WHERE fleet_replicas.instance = EXCLUDED.instance
			OR fleet_replicas.heartbeat_at < clock_timestamp() - $8 * interval '1 microsecond'`,
		p.id, p.instance, p.address, p.version, p.started, p.applied.Load(), fresh, p.liveMicros())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: another process took %q while this one's heartbeat lapsed; give each replica its own replica_id", ErrReplicaIDInUse, p.id)
	}
	return nil
}

// WaitAcks waits until every other replica live now has acknowledged version or a later one,
// or timeout passes, or ctx ends.
func (p *Postgres) WaitAcks(ctx context.Context, version int64, timeout time.Duration) []apitype.ReplicaAck {
	start := p.clock.Now()
	timer := p.clock.NewTimer(timeout)
	defer timer.Stop()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	ids, err := p.liveOthers(lctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return []apitype.ReplicaAck{{Error: "stopped waiting: " + ctx.Err().Error()}}
	case err != nil:
		p.log.Warn("fleet: could not list the live replicas to wait for", "replica", p.id, "err", err)
		return []apitype.ReplicaAck{{Error: "could not list the live replicas: the database did not answer"}}
	}
	p.mu.Lock()
	publishedAt := start
	if pub := p.published[version%publishedKept]; pub.version == version {
		publishedAt = pub.at
	}
	p.mu.Unlock()
	res := make([]apitype.ReplicaAck, len(ids))
	for i, id := range ids {
		res[i].ID = id
	}
	for {
		p.mu.Lock()
		signal, waiting := p.ackSignal, 0
		for i := range res {
			if res[i].Acked {
				continue
			}
			a, ok := p.findAck(res[i].ID, version)
			if !ok {
				waiting++
				continue
			}
			res[i] = apitype.ReplicaAck{
				ID: a.Replica, Acked: true, AckedMS: float64(a.at.Sub(publishedAt).Microseconds()) / 1000,
				CallsCancelled: a.CallsCancelled, SessionsClosed: a.SessionsClosed, SandboxesStopped: a.SandboxesStopped,
			}
		}
		p.mu.Unlock()
		if waiting == 0 {
			return res
		}
		var why string
		select {
		case <-signal:
			continue
		case <-timer.C():
			why = fmt.Sprintf("no acknowledgement within %s", timeout)
		case <-ctx.Done():
			why = "stopped waiting: " + ctx.Err().Error()
		}
		for i := range res {
			if !res[i].Acked {
				res[i].Error = why
			}
		}
		return res
	}
}

// findAck is the replica's acknowledgement of version, or else of the earliest later version
// it acknowledged. p.mu is held.
func (p *Postgres) findAck(id string, version int64) (arrival, bool) {
	var found arrival
	ok := false
	for _, a := range p.acks[id] {
		if a.Version >= version && (!ok || a.Version < found.Version) {
			found, ok = a, true
		}
	}
	return found, ok
}

// liveOthers lists the other replicas whose heartbeat is within the liveness bound.
func (p *Postgres) liveOthers(ctx context.Context) ([]string, error) {
	rows, err := p.pool.Query(ctx, `
		SELECT id FROM fleet_replicas
		WHERE id <> $1 AND heartbeat_at >= clock_timestamp() - $2 * interval '1 microsecond'
		ORDER BY id`, p.id, p.liveMicros())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Replicas lists every replica with a heartbeat row. This replica's freshness and applied
// version are its own; another's are what its last heartbeat said, and only while it is live.
func (p *Postgres) Replicas(ctx context.Context) (apitype.Replicas, error) {
	var fleetVersion int64
	if err := p.pool.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fleet_version`).Scan(&fleetVersion); err != nil {
		return apitype.Replicas{}, fmt.Errorf("fleet: read the fleet version: %w", err)
	}
	rows, err := p.pool.Query(ctx, `
		SELECT id, instance, address, version, started_at, heartbeat_at, applied_version, fresh,
			heartbeat_at >= clock_timestamp() - $1 * interval '1 microsecond'
		FROM fleet_replicas ORDER BY id`, p.liveMicros())
	if err != nil {
		return apitype.Replicas{}, fmt.Errorf("fleet: list replicas: %w", err)
	}
	list := apitype.Replicas{Version: fleetVersion, Replicas: []apitype.Replica{}}
	var instance string
	var fresh bool
	var r apitype.Replica
	_, err = pgx.ForEachRow(rows, []any{&r.ID, &instance, &r.Address, &r.Version, &r.StartedAt, &r.HeartbeatAt, &r.AppliedVersion, &fresh, &r.Live}, func() error {
		r.Self = r.ID == p.id && instance == p.instance
		if r.Self {
			r.AppliedVersion = max(r.AppliedVersion, p.applied.Load())
			fresh = !p.Stale(p.clock.Now())
		}
		r.Fresh = r.Live && fresh
		r.LagVersions = max(fleetVersion-r.AppliedVersion, 0)
		r.StartedAt, r.HeartbeatAt = r.StartedAt.UTC(), r.HeartbeatAt.UTC()
		list.Replicas = append(list.Replicas, r)
		return nil
	})
	if err != nil {
		return apitype.Replicas{}, fmt.Errorf("fleet: list replicas: %w", err)
	}
	return list, nil
}
