// Package audit records every decision and change of state as a warden.AuditEvent, durably,
// before the caller proceeds; signs checkpoints of the hash chain; verifies it; and prunes it.
//
// Append is a group commit: callers hand their events to one writer goroutine, which writes
// whatever has queued up in one transaction and then answers every caller. Under load a commit
// carries many events, so throughput grows with concurrency while each caller still waits only
// for its own event to be on disk.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/checkpoint"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/redact"
)

// Store is what the audit log keeps its events and checkpoints in.
type Store interface {
	warden.AuditStore
	warden.AuditCheckpointStore
}

// encodingStore is a store that lets each appender do the part of an append that does not
// depend on the event's place in the log (encoding it) before the writer takes it, so that the
// appenders do it in parallel, while the writer commits the batch before theirs, rather than
// the one writer between commits. encoded is the store's own value for ev, or nil.
type encodingStore interface {
	EncodeAuditEvent(ev *warden.AuditEvent) (encoded any)
	AppendEncodedAuditEvents(ctx context.Context, evs []*warden.AuditEvent, encoded []any) error
}

// Options configure a Log. The zero value of each field has a sensible default.
type Options struct {
	// Replica names this server in every event's actor.replica.
	Replica string
	// Keys sign and verify checkpoints. Without them the log neither signs nor verifies
	// checkpoint signatures (a store with checkpoints then fails verification).
	Keys *checkpoint.Keys
	// MaxBatch bounds the events of one commit (default 1024).
	MaxBatch int
	// CommitTimeout bounds one commit, so that a database that hangs denies rather than
	// holds every caller (default 10s).
	CommitTimeout time.Duration
	// Linger is how long an event appended with AppendLater may wait for another to share its
	// commit (default 5ms; negative: not at all).
	Linger time.Duration
	Logger *slog.Logger
	// Committed, when set, is told of every successful commit: the types of its events, in
	// order, and how long the store took (metrics). The writer calls it; it must not block.
	Committed func(types []string, took time.Duration)
	// Clock stamps events and checkpoints and times the linger, Run's checkpoints and
	// retention; default the real clock. (CommitTimeout is a context deadline, on real time.)
	Clock clock.Clock
}

// Log appends events to the store. It fills in what every event carries (id, schema version,
// time, replica, risk) and redacts credential-looking values, so that callers only say what
// happened.
type Log struct {
	store Store
	enc   encodingStore // store, when it encodes ahead; nil otherwise
	opts  Options

	idMu    sync.Mutex // guards entropy: ULIDs are monotonic within one millisecond
	entropy *ulid.MonotonicEntropy

	// queue feeds the writer. closeMu makes Close and a send exclusive, so that nothing is
	// sent once the writer has been told to drain and stop.
	queue   chan *request
	closeMu sync.RWMutex
	closed  bool
	start   sync.Once // starts the writer on the first Append, so an unused Log owns no goroutine
	stop    chan struct{}
	done    chan struct{}

	tools atomic.Pointer[func(name string) (*warden.Tool, bool)]

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced after every commit
	committed atomic.Int64  // events this process has committed
	signed    atomic.Int64  // the size of the newest checkpoint known to be stored
}

var _ warden.AuditLog = (*Log)(nil)

// request is one Append waiting for the writer.
type request struct {
	ev    *warden.AuditEvent
	enc   any          // ev encoded ahead by an encodingStore
	later bool         // AppendLater: no action waits on it
	state atomic.Int32 // queued, taken by the writer, or abandoned by its caller
	done  chan error
}

const (
	queued int32 = iota
	taken
	abandoned
)

// New returns a Log on store. Its writer starts with the first Append; Close stops it.
func New(store Store, opts Options) *Log {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 10 * time.Second
	}
	if opts.Linger == 0 {
		opts.Linger = 5 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Clock = clock.Or(opts.Clock)
	l := &Log{
		store:   store,
		opts:    opts,
		entropy: ulid.Monotonic(rand.Reader, 0),
		queue:   make(chan *request, 4*opts.MaxBatch),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	l.enc, _ = store.(encodingStore)
	return l
}

// RateTools gives the log the registry of tools, whose risk rates the events that name a tool
// but no risk.
func (l *Log) RateTools(lookup func(name string) (*warden.Tool, bool)) { l.tools.Store(&lookup) }

// ErrClosed is returned by Append after Close.
var ErrClosed = warden.Errorf(warden.EUnavailable, "audit log closed")

// Append records ev and returns once it is durable, with ev.Seq, PrevHash and Hash set. A caller
// that gets an error must not proceed with the action the event describes: the event may or may
// not have been written, but the action was not allowed to happen.
func (l *Log) Append(ctx context.Context, ev *warden.AuditEvent) error {
	return l.append(ctx, ev, false)
}

// AppendLater is Append for an event that no action waits on, such as the outcome of a call
// that has already happened: the writer may hold it for up to Options.Linger so that it shares
// the commit of the next event rather than costing a commit (and a sync) of its own, which
// leaves the writer free for the events that actions do wait on. It returns, like Append, once
// the event is durable.
func (l *Log) AppendLater(ctx context.Context, ev *warden.AuditEvent) error {
	return l.append(ctx, ev, true)
}

func (l *Log) append(ctx context.Context, ev *warden.AuditEvent, later bool) error {
	if err := l.prepare(ev); err != nil {
		return err
	}
	req := &request{ev: ev, later: later, done: make(chan error, 1)}
	if l.enc != nil {
		req.enc = l.enc.EncodeAuditEvent(ev)
	}
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return ErrClosed
	}
	l.start.Do(func() { go l.write() })
	select {
	case l.queue <- req:
		l.closeMu.RUnlock()
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return warden.WrapError(warden.EUnavailable, "audit log unavailable", ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// Withdrawn before the writer took it, the event is never written. Once taken, its
		// commit is under way and bounded by CommitTimeout: its outcome is the answer.
		if req.state.CompareAndSwap(queued, abandoned) {
			return warden.WrapError(warden.EUnavailable, "audit log unavailable", ctx.Err())
		}
		return <-req.done
	}
}

// prepare fills in what every event carries and redacts what must never be recorded.
func (l *Log) prepare(ev *warden.AuditEvent) error {
	if ev.Time.IsZero() {
		ev.Time = l.opts.Clock.Now()
	}
	ev.Time = ev.Time.UTC()
	ev.SchemaVersion = warden.AuditSchemaVersion
	if ev.Actor.Replica == "" {
		ev.Actor.Replica = l.opts.Replica
	}
	if ev.Target.Risk == "" {
		ev.Target.Risk = l.risk(ev)
	}
	redactEvent(ev)
	l.idMu.Lock()
	id, err := ulid.New(ulid.Timestamp(ev.Time), l.entropy)
	l.idMu.Unlock()
	if err != nil {
		return warden.WrapError(warden.EInternal, "audit id", err)
	}
	ev.ID = id.String()
	return nil
}

// risk rates an event its producer did not rate: the higher of its tool's risk and its kind's
// (docs/audit.md), so that a kind that is high — a rug pull held, say — stays high whatever the
// tool's own rating.
func (l *Log) risk(ev *warden.AuditEvent) warden.Risk {
	r := typeRisk(ev.Type)
	if lookup := l.tools.Load(); ev.Target.Tool != "" && lookup != nil {
		if t, ok := (*lookup)(ev.Target.Tool); ok && t.Risk.Level() > r.Level() {
			return t.Risk
		}
	}
	return r
}

// typeRisk is the risk of an event that names no tool: what changes who may do what, or stops
// agents, is high; a refusal is medium; the rest has none.
func typeRisk(typ string) warden.Risk {
	switch typ {
	case warden.EventPolicyShadowDiff, warden.EventPolicyShadowDropped:
		// What a candidate policy set would have decided changes nothing: a difference is
		// rated by its tool alone, so that shadow mode does not flood the high-risk stream.
		return ""
	}
	for _, p := range highRiskTypes {
		if typ == p || strings.HasSuffix(p, ".") && strings.HasPrefix(typ, p) {
			return warden.RiskHigh
		}
	}
	switch typ {
	case warden.EventAdminDenied, warden.EventTokenRefuse, warden.EventPersonSignInRefused:
		return warden.RiskMedium
	}
	return ""
}

var highRiskTypes = []string{
	"kill.", "lockdown.", "policy.", "admin.keys.", "admin.token.", "admin.secret.", warden.EventApply,
	warden.EventAgentDelete, warden.EventAgentRotate, warden.EventAuditPrune,
	// A refresh token came back after its use: someone holds a stolen copy.
	warden.EventOAuthRefreshReused,
	// What a model reads or a local server runs changed under warden (held or refused until a
	// person acts), or a person let a change through: the supply chain's alerts.
	warden.EventManifestChanged, warden.EventManifestRemoved, warden.EventManifestAccepted,
	warden.EventToolPackageChanged,
	// Flow labels decide what injection containment follows: marking a tool's output trusted
	// loosens it as a policy change would.
	warden.EventToolLabels,
}

// redactEvent removes credential-looking values from the free text of an event whatever its
// producer did: resource, action, message, and the arguments' values under sensitive names. The
// gateway has already redacted the arguments with the tool's own secrets and names; this is the
// last line for every other producer.
func redactEvent(ev *warden.AuditEvent) {
	var r *redact.Redactor // patterns and sensitive names only
	ev.Target.Resource = r.String(ev.Target.Resource)
	ev.Target.Action = r.String(ev.Target.Action)
	ev.Decision.Message = r.String(ev.Decision.Message)
	if len(ev.Target.Arguments) > 0 && (r.MaySecrets(ev.Target.Arguments) || !json.Valid(ev.Target.Arguments)) {
		ev.Target.Arguments = r.JSON(ev.Target.Arguments)
	}
}

// write is the writer: it takes what has queued up, commits it, answers, and repeats, until
// Close, when it drains the queue first.
func (l *Log) write() {
	defer close(l.done)
	batch := make([]*request, 0, l.opts.MaxBatch)
	for {
		select {
		case req := <-l.queue:
			batch = append(batch[:0], req)
			if req.later {
				batch = l.linger(batch)
			}
		case <-l.stop:
			// No Append sends any more: what is queued is all there will be.
			for batch = l.gather(batch[:0]); len(batch) > 0; batch = l.gather(batch[:0]) {
				l.commit(batch)
			}
			return
		}
		l.commit(l.gather(batch))
	}
}

// linger waits, up to Options.Linger, for an event that someone waits on to join a batch of
// events that no one does, and returns as soon as one does (or the batch is full, or Close).
func (l *Log) linger(batch []*request) []*request {
	if l.opts.Linger <= 0 {
		return batch
	}
	t := l.opts.Clock.NewTimer(l.opts.Linger)
	defer t.Stop()
	for len(batch) < l.opts.MaxBatch {
		select {
		case req := <-l.queue:
			batch = append(batch, req)
			if !req.later {
				return batch
			}
		case <-t.C():
			return batch
		case <-l.stop:
			return batch
		}
	}
	return batch
}

// gather adds to batch what is queued, without waiting, up to MaxBatch.
func (l *Log) gather(batch []*request) []*request {
	for len(batch) < l.opts.MaxBatch {
		select {
		case req := <-l.queue:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commit writes the events of batch whose callers still wait, in one transaction. If the
// transaction fails because of one event (a conflict, an event that cannot be encoded), the
// others are written one by one so that one bad event does not deny unrelated calls; if the
// store fails, every caller gets its error.
func (l *Log) commit(batch []*request) {
	live := batch[:0:0]
	for _, req := range batch {
		if req.state.CompareAndSwap(queued, taken) {
			live = append(live, req)
		}
	}
	if len(live) == 0 {
		return
	}
	err := l.appendEvents(live)
	switch code := warden.ErrorCode(err); {
	case err == nil:
		l.answer(live, nil)
	case len(live) > 1 && (code == warden.EInvalid || code == warden.EConflict):
		for _, req := range live {
			l.answer([]*request{req}, l.appendEvents([]*request{req}))
		}
	default:
		l.opts.Logger.Error("audit commit failed; the callers deny", "events", len(live), "err", err)
		l.answer(live, warden.WrapError(warden.EUnavailable, "audit log unavailable", err))
	}
}

func (l *Log) appendEvents(reqs []*request) error {
	evs := make([]*warden.AuditEvent, len(reqs))
	encs := make([]any, len(reqs))
	for i, req := range reqs {
		evs[i], encs[i] = req.ev, req.enc
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.CommitTimeout)
	defer cancel()
	start := time.Now()
	var err error
	if l.enc != nil {
		err = l.enc.AppendEncodedAuditEvents(ctx, evs, encs)
	} else {
		err = l.store.AppendAuditEvents(ctx, evs)
	}
	if err == nil {
		l.committed.Add(int64(len(evs)))
		l.notify()
		if l.opts.Committed != nil {
			types := make([]string, len(evs))
			for i, ev := range evs {
				types[i] = ev.Type
			}
			l.opts.Committed(types, time.Since(start))
		}
	}
	return err
}

// QueueDepth is how many events wait for the writer's next commit.
func (l *Log) QueueDepth() int { return len(l.queue) }

func (l *Log) answer(reqs []*request, err error) {
	for _, req := range reqs {
		req.done <- err
	}
}

func (l *Log) notify() {
	l.changedMu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.changedMu.Unlock()
}

// Changed returns a channel that is closed after the next commit. A reader takes it before
// reading the store, so that a commit after the read cannot go unnoticed.
func (l *Log) Changed() <-chan struct{} {
	l.changedMu.Lock()
	defer l.changedMu.Unlock()
	return l.changed
}

// Committed returns how many events this process has committed.
func (l *Log) Committed() int64 { return l.committed.Load() }

// Close writes what is queued and stops the writer. Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return nil
	}
	l.closed = true
	l.closeMu.Unlock()
	l.start.Do(func() { close(l.done) }) // never started: there is nothing to stop
	close(l.stop)
	<-l.done
	return nil
}

// Head returns the seq of the newest event in the store.
func (l *Log) Head(ctx context.Context) (int64, error) {
	seq, _, err := l.store.AuditHead(ctx)
	return seq, err
}

// LatestCheckpoint returns the newest stored checkpoint, ENotFound if there is none.
func (l *Log) LatestCheckpoint(ctx context.Context) (*warden.AuditCheckpoint, error) {
	return l.store.LatestAuditCheckpoint(ctx, 0)
}

// VerifierKey returns the checkpoint public key in the signed-note verifier key format.
func (l *Log) VerifierKey() (string, error) {
	if l.opts.Keys == nil {
		return "", warden.Errorf(warden.EUnavailable, "this server has no checkpoint key")
	}
	return l.opts.Keys.Signer.VerifierKey(), nil
}

// Verify verifies the whole log and, if external is not empty, that it extends that exported
// checkpoint.
func (l *Log) Verify(ctx context.Context, external []byte) (*Report, error) {
	return l.verify(ctx, VerifyOptions{External: external})
}

// VerifyProgress is Verify of the whole log, telling progress how many events it has checked
// as it goes (the web console shows it).
func (l *Log) VerifyProgress(ctx context.Context, progress func(checked int64)) (*Report, error) {
	return l.verify(ctx, VerifyOptions{Progress: progress})
}

func (l *Log) verify(ctx context.Context, opts VerifyOptions) (*Report, error) {
	if l.opts.Keys != nil {
		opts.Verifiers = l.opts.Keys.Verifiers
	}
	return Verify(ctx, l.store, opts)
}

// errNoKeys is returned when signing is asked of a log without keys.
var errNoKeys = errors.New("audit: no checkpoint key")
