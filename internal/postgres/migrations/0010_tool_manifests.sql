-- Pinned MCP tool manifests (issue 15): per registered MCP server and MCP tool, the digest and
-- canonical manifest warden pinned, and the one upstream lists now when it differs (held).

CREATE TABLE tool_manifests (
	tool            TEXT COLLATE "C" NOT NULL,
	name            TEXT COLLATE "C" NOT NULL,
	state           TEXT NOT NULL, -- pinned, held, removed
	digest          TEXT NOT NULL, -- '' for an added tool never accepted
	manifest        TEXT NOT NULL,
	held_digest     TEXT NOT NULL,
	held_manifest   TEXT NOT NULL,
	diff            TEXT NOT NULL, -- JSON array, '' for none
	findings        TEXT NOT NULL, -- JSON array of scan findings, '' for none
	first_seen      BIGINT,
	accepted_by     TEXT NOT NULL,
	accepted_reason TEXT NOT NULL,
	PRIMARY KEY (tool, name)
);
