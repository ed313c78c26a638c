-- What sessions observed (issue 16): one row per untrusted or private output a session read,
-- with the values of untrusted output as keyed digests (never the text), so that every replica
-- decides a session's calls with what any replica observed. partial: the values are of only part
-- of the output (it was cut), so every replica decides the session as evicted. Pruned when a
-- session is idle.

CREATE TABLE flow_observations (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agent_id   TEXT COLLATE "C" NOT NULL,
	session    TEXT COLLATE "C" NOT NULL,
	tool       TEXT NOT NULL,
	action     TEXT NOT NULL,
	decision   TEXT NOT NULL,
	untrusted  BOOLEAN NOT NULL,
	private    BOOLEAN NOT NULL,
	vals       BYTEA NOT NULL,
	bytes      INTEGER NOT NULL,
	partial    BOOLEAN NOT NULL DEFAULT false,
	created_at BIGINT NOT NULL
);

CREATE INDEX flow_observations_session ON flow_observations (agent_id, session, id);
CREATE INDEX flow_observations_created ON flow_observations (created_at);
