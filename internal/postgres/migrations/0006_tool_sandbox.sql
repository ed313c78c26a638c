-- What loosens a local MCP server's sandbox (JSON object: read_only, allow_hosts; null for the
-- defaults).
ALTER TABLE tools ADD COLUMN sandbox TEXT NOT NULL DEFAULT 'null';
