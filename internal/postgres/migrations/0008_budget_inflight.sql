-- Budgets shared by the replicas of a fleet: each replica's calls in flight per concurrency budget,
-- counted only while the replica's lease is renewed, so that a replica that dies holding slots
-- gives them back when its lease runs out.
CREATE TABLE budget_leases (
	replica    TEXT COLLATE "C" PRIMARY KEY,
	renewed_at BIGINT NOT NULL
);

CREATE TABLE budget_inflight (
	budget_id TEXT COLLATE "C" NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
	replica   TEXT COLLATE "C" NOT NULL REFERENCES budget_leases (replica) ON DELETE CASCADE,
	n         BIGINT NOT NULL CHECK (n >= 0),
	PRIMARY KEY (budget_id, replica)
);

CREATE INDEX budget_inflight_replica ON budget_inflight (replica, budget_id);
