// Package auditsink ships the audit log to where security teams look — a file, syslog, a
// webhook — at least once and in log order. Each sink reads the store from a cursor kept in the
// store, so a sink that is down never holds up the gateway and never loses an event: it catches
// up from its cursor when it is back, and after a restart resends what it had not acknowledged.
package auditsink

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/ocsf"
)

// Sink delivers events to one destination. Deliver returns nil only once the destination has
// every event of the batch; an error means the batch is delivered again, whole.
type Sink interface {
	Deliver(ctx context.Context, evs []*warden.AuditEvent) error
	Close() error
}

// Source is where sinks read events and keep their cursors.
type Source interface {
	AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error)
	warden.AuditCursorStore
}

// Notifier wakes sinks when events are committed.
type Notifier interface {
	Changed() <-chan struct{}
}

// Encoder turns an event into one line (without the newline).
type Encoder func(ev *warden.AuditEvent) ([]byte, error)

// JSONL encodes an event as the line exports carry: its canonical encoding with its hash, which
// anyone can check with SHA-256 alone (docs/audit.md).
func JSONL(ev *warden.AuditEvent) ([]byte, error) {
	canonical, err := warden.AuditCanonical(ev)
	if err != nil {
		return nil, err
	}
	return warden.AuditLine(canonical, ev.Hash), nil
}

// OCSF encodes an event as an OCSF event.
func OCSF(ev *warden.AuditEvent) ([]byte, error) { return json.Marshal(ocsf.Map(ev)) }

// EncoderFor returns the encoder of a format: jsonl or ocsf.
func EncoderFor(format string) (Encoder, error) {
	switch format {
	case "", "jsonl":
		return JSONL, nil
	case "ocsf":
		return OCSF, nil
	}
	return nil, fmt.Errorf("audit sink format %q: use jsonl or ocsf", format)
}

// Runner feeds one sink from its cursor.
type Runner struct {
	Name     string
	Sink     Sink
	Source   Source
	Notifier Notifier // nil: poll only
	Log      *slog.Logger
	Batch    int           // events per delivery; default 500
	Poll     time.Duration // how often to look for events another replica wrote; default 1s
	// MinBackoff and MaxBackoff bound the wait between failed deliveries, which doubles from
	// one to the other (defaults 200ms and 30s).
	MinBackoff, MaxBackoff time.Duration
}

func (r *Runner) defaults() {
	if r.Batch <= 0 {
		r.Batch = 500
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = 200 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 30 * time.Second
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
}

// Run delivers events until ctx ends. It fails only when ctx ends; every other failure is
// retried, with backoff, forever: the store keeps the events until the sink takes them.
func (r *Runner) Run(ctx context.Context) error {
	r.defaults()
	log := r.Log.With("sink", r.Name)
	var cursor int64
	for attempt := 0; ; attempt++ {
		var err error
		if cursor, err = r.Source.AuditSinkCursor(ctx, r.Name); err == nil {
			break
		}
		log.Error("audit sink: reading its cursor failed", "err", err)
		if !r.sleep(ctx, attempt) {
			return nil
		}
	}
	failures := 0
	for {
		var changed <-chan struct{}
		if r.Notifier != nil {
			changed = r.Notifier.Changed()
		}
		evs, err := r.Source.AuditEvents(ctx, warden.AuditFilter{AfterSeq: cursor, Limit: r.Batch})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("audit sink: reading events failed", "err", err)
			failures++
			if !r.sleep(ctx, failures) {
				return nil
			}
			continue
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			case <-time.After(r.Poll):
			}
			continue
		}
		if err := r.Sink.Deliver(ctx, evs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			log.Warn("audit sink: delivery failed; retrying from its cursor", "after_seq", cursor, "events", len(evs), "attempt", failures, "err", err)
			if !r.sleep(ctx, failures) {
				return nil
			}
			continue
		}
		if failures > 0 {
			log.Info("audit sink: delivering again", "after_seq", cursor, "failures", failures)
		}
		failures = 0
		cursor = evs[len(evs)-1].Seq
		// A cursor that is not saved only means resending after a restart: at least once.
		if err := r.Source.SaveAuditSinkCursor(ctx, r.Name, cursor); err != nil && ctx.Err() == nil {
			log.Error("audit sink: saving its cursor failed", "seq", cursor, "err", err)
		}
	}
}

// sleep waits out the backoff of the nth failure, with jitter so that replicas that failed
// together do not retry together. It returns false if ctx ended.
func (r *Runner) sleep(ctx context.Context, n int) bool {
	d := r.MinBackoff << min(n, 20)
	if d > r.MaxBackoff || d <= 0 {
		d = r.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Set is the sinks of a server.
type Set struct {
	runners []*Runner
}

// Deps are what sinks are built with.
type Deps struct {
	Source   Source
	Notifier Notifier
	Log      *slog.Logger
	Data     string // relative file paths are under this directory
	Replica  string // the syslog HOSTNAME
	Getenv   func(string) string
}

// New builds the sinks of a validated configuration. Files are opened and network sinks
// connect on first delivery, so a sink that is down at start does not stop the server.
func New(cfgs []config.AuditSink, d Deps) (*Set, error) {
	s := &Set{}
	for _, c := range cfgs {
		enc, err := EncoderFor(c.Format)
		if err != nil {
			return nil, err
		}
		r := &Runner{Name: c.Name, Source: d.Source, Notifier: d.Notifier, Log: d.Log}
		switch c.Type {
		case "file":
			path := c.Path
			if !filepath.IsAbs(path) {
				path = filepath.Join(d.Data, path)
			}
			r.Sink = NewFile(path, c.MaxSize, c.MaxFiles, enc)
		case "syslog":
			sl, err := NewSyslog(c.Network, c.Address, c.Facility, d.Replica, enc)
			if err != nil {
				return nil, err
			}
			r.Sink = sl
		case "webhook":
			headers := map[string]string{}
			for k, v := range c.Headers {
				if name, ok := strings.CutPrefix(v, "env:"); ok {
					v = d.Getenv(name)
					if v == "" {
						return nil, fmt.Errorf("audit sink %s: header %s names environment variable %s, which is not set", c.Name, k, name)
					}
				}
				headers[k] = v
			}
			r.Sink = NewWebhook(c.URL, headers, time.Duration(c.Timeout), enc)
			r.Batch = c.BatchSize
		default:
			return nil, fmt.Errorf("audit sink %s: unknown type %q", c.Name, c.Type)
		}
		s.runners = append(s.runners, r)
	}
	return s, nil
}

// Run runs every sink until ctx ends.
func (s *Set) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range s.runners {
		g.Go(func() error { return r.Run(ctx) })
	}
	return g.Wait()
}

// Close closes every sink. Call it after Run has returned.
func (s *Set) Close() error {
	var first error
	for _, r := range s.runners {
		if err := r.Sink.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
