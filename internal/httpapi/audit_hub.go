package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// HubOptions tune an AuditHub; the zero value is the default of each.
type HubOptions struct {
	// Buffer is how many reads of the log the hub holds for one stream that has not written
	// them yet (default 64: 16 s of a busy log at the default pace); a stream further behind is
	// dropped, and its client resumes from the store.
	Buffer int
	// Pace is the least time between two reads of the log (default 250 ms): the events of the
	// commits in between go out together, one write to each stream, where a write per commit
	// to each of many streams would take the gateway's processor time (docs/PERFORMANCE.md).
	// Negative: no pacing.
	Pace  time.Duration
	Clock clock.Clock // paces the reads and the poll for other replicas' events
	Log   *slog.Logger
}

// AuditHub follows the audit log with one reader for every stream subscribed to it: one query
// of the store per commit (or poll), whatever the number of streams, where each stream reading
// the log itself would make one per stream (docs/PERFORMANCE.md, 100 open consoles). The reader
// runs while at least one stream is subscribed. Each event is encoded once and handed to each
// subscriber's bounded channel; a subscriber whose channel is full is dropped (its stream ends,
// and its client reconnects with Last-Event-ID), so a slow client never holds up the reader,
// the other streams or the audit log.
type AuditHub struct {
	svc   AuditService
	store AuditReader
	opt   HubOptions

	mu   sync.Mutex
	subs map[*hubSub]struct{}
	run  *hubRun // nil while no stream is subscribed
}

// hubRun is one stretch of the reader, from a first subscriber to the last one leaving.
type hubRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	pos    int64 // the seq up to which every event has been handed out; written under mu
}

// hubSub is one subscribed stream: it is handed every event after from, in order, a read of
// the log at a time.
type hubSub struct {
	c    chan []hubEvent
	from int64
}

// hubEvent is an event with its Server-Sent Events frame, encoded once for every stream.
type hubEvent struct {
	ev    *warden.AuditEvent
	frame []byte
}

// NewAuditHub returns a hub over the audit log svc and the store's search of it.
func NewAuditHub(svc AuditService, store AuditReader, opt HubOptions) *AuditHub {
	if opt.Buffer <= 0 {
		opt.Buffer = 64
	}
	if opt.Pace == 0 {
		opt.Pace = 250 * time.Millisecond
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	opt.Clock = clock.Or(opt.Clock)
	return &AuditHub{svc: svc, store: store, opt: opt, subs: map[*hubSub]struct{}{}}
}

// subscribe adds a stream, starting the reader at the log's head if none runs. The stream is
// handed every event after the returned sub's from; those up to it are the store's to give.
func (h *AuditHub) subscribe(ctx context.Context) (*hubSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run == nil {
		head, err := h.svc.Head(ctx)
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithCancel(context.Background())
		h.run = &hubRun{cancel: cancel, done: make(chan struct{}), pos: head}
		go h.follow(rctx, h.run)
	}
	s := &hubSub{c: make(chan []hubEvent, h.opt.Buffer), from: h.run.pos}
	h.subs[s] = struct{}{}
	return s, nil
}

// unsubscribe removes a stream; the last one out stops the reader and waits for it.
func (h *AuditHub) unsubscribe(s *hubSub) {
	h.mu.Lock()
	delete(h.subs, s)
	var done chan struct{}
	if len(h.subs) == 0 && h.run != nil {
		h.run.cancel()
		done = h.run.done
		h.run = nil
	}
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

// follow is the reader: at each commit of this replica, and each streamPoll for the others',
// it reads the events after run.pos and hands them out, at most once each Pace.
func (h *AuditHub) follow(ctx context.Context, run *hubRun) {
	defer close(run.done)
	poll := h.opt.Clock.NewTicker(streamPoll)
	defer poll.Stop()
	for {
		changed := h.svc.Changed()
		if err := h.readNew(ctx, run); err != nil && ctx.Err() == nil {
			// Every stream ends: each client reconnects and resumes from the store, which then
			// answers with its error rather than a stream that has silently stopped.
			h.opt.Log.Warn("audit stream hub: reading the log failed", "err", err)
			h.dropAll(run)
		}
		if h.opt.Pace > 0 {
			pace := h.opt.Clock.NewTimer(h.opt.Pace)
			select {
			case <-ctx.Done():
				pace.Stop()
				return
			case <-pace.C():
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-poll.C():
		}
	}
}

// readNew hands out the events after run.pos, a page at a time, one query a page.
func (h *AuditHub) readNew(ctx context.Context, run *hubRun) error {
	for {
		evs, err := h.store.AuditEvents(ctx, warden.AuditFilter{AfterSeq: run.pos, Limit: streamPage})
		if err != nil {
			return err
		}
		batch := make([]hubEvent, len(evs))
		for i, ev := range evs {
			frame, err := sseFrame(ev)
			if err != nil {
				return fmt.Errorf("encoding event %d: %w", ev.Seq, err)
			}
			batch[i] = hubEvent{ev: ev, frame: frame}
		}
		if len(evs) == 0 {
			return nil
		}
		h.mu.Lock()
		if h.run != run { // the last stream left while this page was read
			h.mu.Unlock()
			return nil
		}
		for s := range h.subs {
			select {
			case s.c <- batch:
			default: // full: the stream ends after what it holds, and resumes from the store
				close(s.c)
				delete(h.subs, s)
			}
		}
		run.pos = batch[len(batch)-1].ev.Seq
		h.mu.Unlock()
		if len(evs) < streamPage {
			return nil
		}
	}
}

// dropAll ends every stream of run.
func (h *AuditHub) dropAll(run *hubRun) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run != run {
		return
	}
	for s := range h.subs {
		close(s.c)
		delete(h.subs, s)
	}
}

// Stream writes the events after afterSeq that keep picks (all when keep is nil) as
// Server-Sent Events, in the format of StreamAudit, until ctx ends, the client goes or the hub
// drops the stream for falling behind. The events the hub has handed out before the stream
// subscribed are read from the store first, so a client that reconnects with Last-Event-ID
// misses none. An error is returned only before the answer begins.
func (h *AuditHub) Stream(ctx context.Context, w http.ResponseWriter, afterSeq int64, keep func(*warden.AuditEvent) bool) error {
	s, err := h.subscribe(ctx)
	if err != nil {
		return err
	}
	defer h.unsubscribe(s)
	// The first page of what was missed is read before the answer begins, so that a failing
	// store is an error status rather than an empty stream.
	var first []*warden.AuditEvent
	if afterSeq < s.from {
		if first, err = h.store.AuditEvents(ctx, warden.AuditFilter{AfterSeq: afterSeq, Limit: streamPage}); err != nil {
			return err
		}
	}
	rc := http.NewResponseController(w)
	beginSSE(w)
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "retry: 2000\n\n")
	sent, err := h.catchUp(ctx, bw, rc, afterSeq, s.from, first, keep)
	if err == nil {
		err = flush(bw, rc)
	}
	keepalive := h.opt.Clock.NewTicker(streamKeepalive)
	defer keepalive.Stop()
	for err == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C():
			fmt.Fprint(bw, ": keepalive\n\n")
		case batch, ok := <-s.c:
			if !ok {
				return nil // dropped: the client reconnects with the last id it got
			}
			for _, e := range batch {
				if e.ev.Seq > sent && err == nil {
					if keep == nil || keep(e.ev) {
						_, err = bw.Write(e.frame)
					}
					sent = e.ev.Seq
				}
			}
		}
		if err == nil {
			err = flush(bw, rc)
		}
	}
	if ctx.Err() == nil {
		h.opt.Log.Warn("audit stream ended", "err", err)
	}
	return nil // the response has begun; the client sees the stream end and reconnects
}

// catchUp writes the events after afterSeq up to upTo from the store, first being its first
// page, and returns the seq it has sent up to.
func (h *AuditHub) catchUp(ctx context.Context, bw *bufio.Writer, rc *http.ResponseController, afterSeq, upTo int64, first []*warden.AuditEvent, keep func(*warden.AuditEvent) bool) (int64, error) {
	sent, evs := afterSeq, first
	for sent < upTo {
		for _, ev := range evs {
			if ev.Seq > upTo {
				return upTo, nil
			}
			if keep == nil || keep(ev) {
				if err := writeSSE(bw, ev); err != nil {
					return sent, err
				}
			}
			sent = ev.Seq
		}
		if len(evs) < streamPage {
			return max(sent, upTo), nil
		}
		if err := flush(bw, rc); err != nil {
			return sent, err
		}
		var err error
		if evs, err = h.store.AuditEvents(ctx, warden.AuditFilter{AfterSeq: sent, Limit: streamPage}); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// beginSSE starts an answer of Server-Sent Events.
func beginSSE(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
}
