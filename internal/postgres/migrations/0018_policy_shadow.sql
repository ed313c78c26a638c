-- Shadow mode (issue 18 §3, docs/cli.md, "Shadow mode"): candidate policy sets evaluated
-- beside the live one. The candidate is the one row not ended; ended rows stay, so that versions
-- only grow and the shadow_version a policy.shadow_diff event names is never reused.

CREATE TABLE policy_shadows (
	version    BIGINT PRIMARY KEY,
	files      TEXT NOT NULL, -- JSON object: file name → Cedar text
	base       BIGINT NOT NULL, -- the live version it was applied beside
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	comment    TEXT NOT NULL,
	ended      BOOLEAN NOT NULL DEFAULT FALSE -- once promoted, dropped or replaced
);
