-- People's sign-in (issue 17, internal/people): sessions of people signed in through OIDC or an
-- admin token (browser cookie or CLI bearer token), by the SHA-256 of the token shown once; and
-- the short-lived steps of sign-ins in progress (OIDC state, CLI code, device code, user code).

CREATE TABLE person_sessions (
	hash       BLOB NOT NULL PRIMARY KEY,
	kind       TEXT NOT NULL,
	name       TEXT NOT NULL,
	email      TEXT NOT NULL,
	role       TEXT NOT NULL,
	via        TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;

CREATE INDEX person_sessions_expires ON person_sessions (expires_at);
CREATE INDEX person_sessions_email ON person_sessions (email);

CREATE TABLE sign_in_flows (
	hash       BLOB NOT NULL PRIMARY KEY,
	kind       TEXT NOT NULL,
	data       TEXT NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sign_in_flows_expires ON sign_in_flows (expires_at);
