-- What a local MCP server runs, pinned when it was added (JSON object: source, digest, npm name,
-- version, integrity, bin, provenance, files; null for remote tools).
ALTER TABLE tools ADD COLUMN package TEXT NOT NULL DEFAULT 'null';
