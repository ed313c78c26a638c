package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// A checkpoint copies the pages that commits appended to the WAL back into the database file
// and syncs it. Left to SQLite, the commit that takes the WAL past 1000 pages does it, with the
// write lock held: under a steady stream of audit appends that is one commit in every few dozen
// taking several times as long as the others, and every caller queued behind it waits too.
//
// The checkpointer does that work beside the writer instead, on a connection of its own: a
// PASSIVE checkpoint takes no lock that a writer or reader waits for. It runs often, so that it
// copies little each time and the backfilled part of the WAL stays close to its end. The
// writer's own automatic checkpoint is kept: it finds little or nothing left to copy, and it is
// what lets the next write start the WAL over from the beginning (a restart needs every frame
// copied, which a checkpointer racing a busy writer seldom sees), so the WAL stays bounded
// however busy the writer. Durability is not its business: a commit is synced to the WAL before
// it returns, and a checkpoint syncs the database file before SQLite reuses the WAL.
type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	done   chan struct{}
}

// How often the checkpointer looks at the WAL while it is being written, and at most how long it
// waits while nothing is.
const (
	checkpointEvery = 10 * time.Millisecond
	checkpointIdle  = time.Second
)

func startCheckpointer(db *sql.DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx)
	return c
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	wait := checkpointEvery
	var last [2]int
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		// log is the WAL's size in frames and copied how many of them are in the database
		// file now. An error (a disk error, say) is left to the writer, whose next commit meets
		// it too.
		var busy, log, copied int
		err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied)
		if err == nil && [2]int{log, copied} != last {
			wait = checkpointEvery
		} else {
			// Nothing was written since the last look: look less often until something is.
			wait = min(2*wait, checkpointIdle)
		}
		last = [2]int{log, copied}
		timer.Reset(wait)
	}
}

func (c *checkpointer) stop() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
