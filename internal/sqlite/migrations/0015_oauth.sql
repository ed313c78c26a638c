-- Warden as the OAuth authorization server of interactive MCP clients (issue 17, docs/oauth.md):
-- clients that registered themselves (RFC 7591), one-use authorization codes and rotating
-- refresh tokens, the last two kept only by the SHA-256 of their value.

CREATE TABLE oauth_clients (
	client_id     TEXT NOT NULL PRIMARY KEY,
	name          TEXT NOT NULL,
	redirect_uris TEXT NOT NULL, -- a JSON array
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_codes (
	hash           TEXT NOT NULL PRIMARY KEY,
	client_id      TEXT NOT NULL,
	redirect_uri   TEXT NOT NULL,
	agent_id       TEXT NOT NULL,
	person         TEXT NOT NULL,
	role           TEXT NOT NULL,
	epoch INTEGER NOT NULL,
	resource       TEXT NOT NULL,
	scope          TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	expires_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_refresh_tokens (
	hash       TEXT NOT NULL PRIMARY KEY,
	family     TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	agent_id   TEXT NOT NULL,
	person     TEXT NOT NULL,
	role       TEXT NOT NULL,
	epoch INTEGER NOT NULL,
	resource   TEXT NOT NULL,
	scope      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	auth_at    INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER,
	revoked_at INTEGER
) STRICT;

CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family);
CREATE INDEX oauth_refresh_tokens_expires ON oauth_refresh_tokens (expires_at);
