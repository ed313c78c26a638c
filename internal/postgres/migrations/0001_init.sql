-- Times are Unix nanoseconds, NULL for none. Names and event types use the "C" collation so that
-- they sort and compare byte by byte, as in SQLite, whatever the database's locale.

CREATE TABLE agents (
	id            TEXT PRIMARY KEY,
	name          TEXT COLLATE "C" NOT NULL UNIQUE,
	owner         TEXT NOT NULL,
	purpose       TEXT NOT NULL,
	labels        TEXT NOT NULL, -- JSON object
	status        TEXT NOT NULL,
	status_reason TEXT NOT NULL,
	epoch         BIGINT NOT NULL,
	secret_hash   BYTEA,
	created_at    BIGINT,
	updated_at    BIGINT,
	expires_at    BIGINT
);

CREATE TABLE admin_tokens (
	name       TEXT COLLATE "C" PRIMARY KEY,
	role       TEXT NOT NULL,
	hash       BYTEA NOT NULL UNIQUE,
	created_by TEXT NOT NULL,
	created_at BIGINT,
	revoked_at BIGINT
);

CREATE TABLE signing_keys (
	kid                TEXT COLLATE "C" PRIMARY KEY,
	alg                TEXT NOT NULL,
	public_key         BYTEA NOT NULL,
	sealed_private_key BYTEA NOT NULL,
	created_at         BIGINT NOT NULL,
	retired_at         BIGINT
);

CREATE TABLE revoked_tokens (
	jti        TEXT COLLATE "C" PRIMARY KEY,
	agent_id   TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT
);

CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- A sequence can skip values a rolled-back append took; appends lock the table so that seqs at
-- least commit in order. Every other column but body copies a field of the event for
-- AuditFilter; each index ends in seq so that a search reads in log order.
CREATE TABLE audit_events (
	seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id           TEXT NOT NULL UNIQUE,
	time         BIGINT NOT NULL,
	type         TEXT COLLATE "C" NOT NULL,
	actor_id     TEXT NOT NULL,
	actor_name   TEXT NOT NULL,
	tool         TEXT NOT NULL,
	action       TEXT NOT NULL,
	effect       TEXT NOT NULL,
	session_id   TEXT NOT NULL,
	on_behalf_of TEXT NOT NULL,
	body         TEXT NOT NULL -- the event, JSON
);

CREATE INDEX audit_events_time ON audit_events (time, seq);
CREATE INDEX audit_events_type ON audit_events (type, seq);
CREATE INDEX audit_events_actor_id ON audit_events (actor_id, seq);
CREATE INDEX audit_events_actor_name ON audit_events (actor_name, seq);
CREATE INDEX audit_events_tool_action ON audit_events (tool, action, seq);
CREATE INDEX audit_events_effect ON audit_events (effect, seq);
CREATE INDEX audit_events_session_id ON audit_events (session_id, seq);
CREATE INDEX audit_events_on_behalf_of ON audit_events (on_behalf_of, seq);
