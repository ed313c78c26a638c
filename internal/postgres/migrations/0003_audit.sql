-- The audit log becomes a hash chain. The writer now gives each event its seq, one above the
-- head it read in the same transaction (appends hold LOCK TABLE audit_events, so replicas take
-- turns), so seqs are 1, 2, 3, … without gaps: the identity, which skips values a rolled-back
-- append took, is dropped. body holds the event's canonical encoding, seq and prev_hash
-- included, and hash its SHA-256. Events written before this migration have no hash; the first
-- append after it chains them (sqlstore). risk is the event's risk level (1 low … 4 critical,
-- 0 none) for --min-risk.
ALTER TABLE audit_events ALTER COLUMN seq DROP IDENTITY;
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN risk INTEGER NOT NULL DEFAULT 0;

-- Signed checkpoints: the C2SP signed note over (origin, size, head hash), by size.
CREATE TABLE audit_checkpoints (
	size BIGINT NOT NULL PRIMARY KEY,
	hash TEXT NOT NULL,
	time BIGINT NOT NULL,
	note TEXT NOT NULL
);

-- The Ed25519 keys that sign checkpoints, sealed under the master key like signing_keys.
CREATE TABLE audit_keys (
	name               TEXT NOT NULL PRIMARY KEY,
	public_key         BYTEA NOT NULL,
	sealed_private_key BYTEA NOT NULL,
	created_at         BIGINT NOT NULL
);

-- How far each sink has delivered: the seq of the last event it acknowledged.
CREATE TABLE audit_sink_cursors (
	name       TEXT NOT NULL PRIMARY KEY,
	seq        BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- Each index costs every commit a page write and every event an insertion, and appends are what
-- every call waits for. Allow is most of the log and the effect a security search looks for is
-- the rest; most calls are for no one. Partial indexes keep such rows out; a search names the
-- index's condition (effect != 'allow', on_behalf_of != '') so that the planner uses it.
DROP INDEX audit_events_effect;
DROP INDEX audit_events_on_behalf_of;
CREATE INDEX audit_events_effect ON audit_events (effect, seq) WHERE effect != 'allow';
CREATE INDEX audit_events_on_behalf_of ON audit_events (on_behalf_of, seq) WHERE on_behalf_of != '';
