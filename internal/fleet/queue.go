package fleet

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/clock"
)

// item is a change waiting for the handler. gen is the listen connection's generation when the
// item is that connection's catch-up reload, whose success marks the feed caught up.
type item struct {
	change  Change
	gen     int64
	arrived time.Time
}

// queue hands changes from the receiving goroutine to the applying one, so that a slow handler
// never stops acknowledgements from being heard. It keeps pendingSince (read by Stale) at the
// arrival of the oldest change not yet applied, and collapses into one full reload when it
// grows past queueKept, so that its memory is bounded.
type queue struct {
	clock        clock.Clock
	pendingSince *atomic.Int64

	mu     sync.Mutex
	items  []item
	signal chan struct{} // has a value when items may have been pushed
}

func newQueue(c clock.Clock, pendingSince *atomic.Int64) *queue {
	return &queue{clock: c, pendingSince: pendingSince, signal: make(chan struct{}, 1)}
}

// push queues a change.
func (q *queue) push(it item) {
	it.arrived = q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		q.pendingSince.Store(it.arrived.UnixNano())
	}
	q.items = append(q.items, it)
	if len(q.items) > queueKept {
		// The head may be in the applier's hands: it stays, and pop removes it.
		q.items = []item{q.items[0], collapse(q.items[1:])}
	}
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// collapse is one full reload standing for items: it has their newest version and connection
// generation and the arrival of the oldest, which stays pending.
func collapse(items []item) item {
	all := item{change: Change{Topic: TopicAll}, arrived: items[0].arrived}
	for _, it := range items {
		all.change.Version = max(all.change.Version, it.change.Version)
		all.change.Replica = it.change.Replica
		all.gen = max(all.gen, it.gen)
	}
	return all
}

// head waits for the oldest change, leaving it queued (and pending) until pop; false when ctx
// ends first.
func (q *queue) head(ctx context.Context) (item, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			it := q.items[0]
			q.mu.Unlock()
			return it, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return item{}, false
		}
	}
}

// pop removes the oldest change, the applier having applied it (or collapsed it away).
func (q *queue) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return
	}
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.pendingSince.Store(0)
		return
	}
	q.pendingSince.Store(q.items[0].arrived.UnixNano())
}
