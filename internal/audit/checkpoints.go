package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/checkpoint"
)

// Background work of the log, set by the server's configuration.
type Background struct {
	// CheckpointEvery signs a checkpoint once this many events have been committed since the
	// last one (default 1000).
	CheckpointEvery int64
	// CheckpointInterval signs a checkpoint this long after the last one if any event came
	// since (default 1m).
	CheckpointInterval time.Duration
	// Retention prunes events older than this, down to the newest checkpoint below them;
	// 0 keeps every event.
	Retention time.Duration
	// PruneInterval is how often retention runs (default an hour, or Retention/10 if shorter).
	PruneInterval time.Duration
}

// Run signs checkpoints and applies retention until ctx ends, then signs a last checkpoint so
// that every event written before shutdown is covered by a signature.
func (l *Log) Run(ctx context.Context, bg Background) error {
	if bg.CheckpointEvery <= 0 {
		bg.CheckpointEvery = 1000
	}
	if bg.CheckpointInterval <= 0 {
		bg.CheckpointInterval = time.Minute
	}
	if bg.PruneInterval <= 0 {
		bg.PruneInterval = time.Hour
		if bg.Retention > 0 && bg.Retention/10 < bg.PruneInterval {
			bg.PruneInterval = max(bg.Retention/10, time.Second)
		}
	}
	ticker := l.opts.Clock.NewTicker(bg.CheckpointInterval)
	defer ticker.Stop()
	var prune <-chan time.Time
	if bg.Retention > 0 {
		t := l.opts.Clock.NewTicker(bg.PruneInterval)
		defer t.Stop()
		prune = t.C()
	}
	signedAt := l.Committed()
	for {
		changed := l.Changed()
		if l.Committed()-signedAt >= bg.CheckpointEvery {
			signedAt = l.Committed()
			l.checkpointLogged(ctx)
		}
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			l.checkpointLogged(final)
			return nil
		case <-changed:
		case <-ticker.C():
			signedAt = l.Committed()
			l.checkpointLogged(ctx)
		case <-prune:
			if _, err := l.Prune(ctx, bg.Retention); err != nil {
				l.opts.Logger.Error("audit retention failed", "err", err)
			}
		}
	}
}

func (l *Log) checkpointLogged(ctx context.Context) {
	if _, err := l.Checkpoint(ctx); err != nil {
		l.opts.Logger.Error("signing an audit checkpoint failed", "err", err)
	}
}

// Checkpoint signs and stores a checkpoint of the log's head, unless one of that size exists.
// It returns the newest checkpoint, nil for an empty log.
func (l *Log) Checkpoint(ctx context.Context) (*warden.AuditCheckpoint, error) {
	if l.opts.Keys == nil {
		return nil, errNoKeys
	}
	seq, hash, err := l.store.AuditHead(ctx)
	if err != nil || seq == 0 {
		return nil, err
	}
	if hash == "" {
		// Events from before the chain; the next append chains them.
		return nil, nil
	}
	// The size last signed is kept in memory, so that signing under load does not read every
	// checkpoint each time; another replica's newer checkpoints only make this one sign again,
	// which adding keeps harmless.
	if seq <= l.signed.Load() || l.signed.Load() == 0 {
		latest, err := l.LatestCheckpoint(ctx)
		if err == nil {
			l.signed.Store(max(l.signed.Load(), latest.Size))
			if latest.Size >= seq {
				return latest, nil
			}
		} else if warden.ErrorCode(err) != warden.ENotFound {
			return nil, err
		}
	}
	c, err := checkpoint.FromHex(l.opts.Keys.Signer.Name(), seq, hash)
	if err != nil {
		return nil, err
	}
	msg, err := l.opts.Keys.Signer.SignCheckpoint(c)
	if err != nil {
		return nil, err
	}
	cp := &warden.AuditCheckpoint{Size: seq, Hash: hash, Time: l.opts.Clock.Now().UTC(), Note: msg}
	if err := l.store.AddAuditCheckpoint(ctx, cp); err != nil {
		return nil, fmt.Errorf("audit: store checkpoint: %w", err)
	}
	l.signed.Store(max(l.signed.Load(), seq))
	return cp, nil
}

// Prune deletes the events older than retention, down to the newest checkpoint below the last
// of them: that checkpoint is the anchor verification starts from. It records what it deleted
// as an event of its own and returns how many.
func (l *Log) Prune(ctx context.Context, retention time.Duration) (int, error) {
	cutoff := l.opts.Clock.Now().Add(-retention)
	old, err := l.store.AuditEvents(ctx, warden.AuditFilter{Until: cutoff, Newest: true, Limit: 1})
	if err != nil || len(old) == 0 {
		return 0, err
	}
	head, _, err := l.store.AuditHead(ctx)
	if err != nil {
		return 0, err
	}
	through := min(old[0].Seq, head-1) // the anchor is at most the old event, and below the head
	if through < 1 {
		return 0, nil
	}
	anchor, err := l.store.LatestAuditCheckpoint(ctx, through)
	if warden.ErrorCode(err) == warden.ENotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := l.store.PruneAuditEvents(ctx, anchor.Size)
	if err != nil || n == 0 {
		return n, err
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventAuditPrune,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
		Target:   warden.EventTarget{Resource: fmt.Sprintf("audit:1-%d", anchor.Size)},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Reason: "retention", Message: fmt.Sprintf("deleted %d events older than %s through seq %d, anchored by the checkpoint of size %d", n, retention, anchor.Size, anchor.Size)},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	}
	return n, l.Append(ctx, ev)
}
