-- Times are Unix nanoseconds, NULL for none. Tables are STRICT so that a value of the wrong type
-- is an error instead of being kept as it came.

CREATE TABLE agents (
	id            TEXT NOT NULL PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	owner         TEXT NOT NULL,
	purpose       TEXT NOT NULL,
	labels        TEXT NOT NULL, -- JSON object
	status        TEXT NOT NULL,
	status_reason TEXT NOT NULL,
	epoch         INTEGER NOT NULL,
	secret_hash   BLOB,
	created_at    INTEGER,
	updated_at    INTEGER,
	expires_at    INTEGER
) STRICT;

CREATE TABLE admin_tokens (
	name       TEXT NOT NULL PRIMARY KEY,
	role       TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	created_by TEXT NOT NULL,
	created_at INTEGER,
	revoked_at INTEGER
) STRICT;

CREATE TABLE signing_keys (
	kid                TEXT NOT NULL PRIMARY KEY,
	alg                TEXT NOT NULL,
	public_key         BLOB NOT NULL,
	sealed_private_key BLOB NOT NULL,
	created_at         INTEGER NOT NULL,
	retired_at         INTEGER
) STRICT;

CREATE TABLE revoked_tokens (
	jti        TEXT NOT NULL PRIMARY KEY,
	agent_id   TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;

CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- AUTOINCREMENT keeps a seq from ever being reused; with one writer at a time the seqs are
-- also gap-free. Every other column but body copies a field of the event for AuditFilter.
-- An index on a column implicitly ends in seq, the rowid, so a search runs in log order.
CREATE TABLE audit_events (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,
	time         INTEGER NOT NULL,
	type         TEXT NOT NULL,
	actor_id     TEXT NOT NULL,
	actor_name   TEXT NOT NULL,
	tool         TEXT NOT NULL,
	action       TEXT NOT NULL,
	effect       TEXT NOT NULL,
	session_id   TEXT NOT NULL,
	on_behalf_of TEXT NOT NULL,
	body         TEXT NOT NULL -- the event, JSON
) STRICT;

CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_type ON audit_events (type);
CREATE INDEX audit_events_actor_id ON audit_events (actor_id);
CREATE INDEX audit_events_actor_name ON audit_events (actor_name);
CREATE INDEX audit_events_tool_action ON audit_events (tool, action);
CREATE INDEX audit_events_effect ON audit_events (effect);
CREATE INDEX audit_events_session_id ON audit_events (session_id);
CREATE INDEX audit_events_on_behalf_of ON audit_events (on_behalf_of);
