-- Shadow mode (issue 18 §3, docs/cli.md, "Shadow mode"): candidate policy sets evaluated
-- beside the live one. The candidate is the one row not ended; ended rows stay, so that versions
-- only grow and the shadow_version a policy.shadow_diff event names is never reused.

CREATE TABLE policy_shadows (
	version    INTEGER NOT NULL PRIMARY KEY,
	files      TEXT NOT NULL, -- JSON object: file name → Cedar text
	base       INTEGER NOT NULL, -- the live version it was applied beside
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	comment    TEXT NOT NULL,
	ended      INTEGER NOT NULL DEFAULT 0 -- 1 once promoted, dropped or replaced
) STRICT;
