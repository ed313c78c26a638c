-- Budgets shared by the replicas of a fleet: each replica's calls in flight per concurrency budget,
-- counted only while the replica's lease is renewed, so that a replica that dies holding slots
-- gives them back when its lease runs out. SQLite serves one replica, but keeps the same tables so
-- that one store contract covers both backends.
CREATE TABLE budget_leases (
	replica    TEXT NOT NULL PRIMARY KEY,
	renewed_at INTEGER NOT NULL
) STRICT;

CREATE TABLE budget_inflight (
	budget_id TEXT NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
	replica   TEXT NOT NULL REFERENCES budget_leases (replica) ON DELETE CASCADE,
	n         INTEGER NOT NULL CHECK (n >= 0),
	PRIMARY KEY (budget_id, replica)
) STRICT;

CREATE INDEX budget_inflight_replica ON budget_inflight (replica, budget_id);
