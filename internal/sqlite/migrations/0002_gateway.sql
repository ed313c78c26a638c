-- What the gateway needs: the tools agents reach, the secrets injected on the way upstream, the
-- versions of the Cedar policies, and budgets with the counters that carry their use across a
-- restart. Lists and maps are JSON text; limits and use are 8-byte IEEE floats, kept exactly.

CREATE TABLE tools (
	name           TEXT NOT NULL PRIMARY KEY,
	kind           TEXT NOT NULL,
	url            TEXT NOT NULL,
	command        TEXT NOT NULL, -- JSON array
	risk           TEXT NOT NULL,
	secret         TEXT NOT NULL,
	inject         TEXT NOT NULL,
	secret_env     TEXT NOT NULL, -- JSON object
	routes         TEXT NOT NULL, -- JSON array
	sensitive_args TEXT NOT NULL, -- JSON array
	labels         TEXT NOT NULL, -- JSON object
	disabled       INTEGER NOT NULL, -- 0 or 1
	created_at     INTEGER,
	updated_at     INTEGER
) STRICT;

CREATE TABLE secrets (
	name       TEXT NOT NULL PRIMARY KEY,
	sealed     BLOB NOT NULL,
	created_at INTEGER,
	updated_at INTEGER
) STRICT;

CREATE TABLE policy_sets (
	version    INTEGER NOT NULL PRIMARY KEY,
	files      TEXT NOT NULL, -- JSON object: file name → Cedar text
	created_by TEXT NOT NULL,
	created_at INTEGER,
	comment    TEXT NOT NULL
) STRICT;

CREATE TABLE budgets (
	id           TEXT NOT NULL PRIMARY KEY,
	agent        TEXT NOT NULL,
	tool         TEXT NOT NULL,
	action       TEXT NOT NULL,
	kind         TEXT NOT NULL,
	limit_value  REAL NOT NULL,
	window_nanos INTEGER NOT NULL,
	arg          TEXT NOT NULL,
	updated_at   INTEGER
) STRICT;

CREATE INDEX budgets_agent ON budgets (agent, id);

-- A counter lives and dies with its budget.
CREATE TABLE budget_counters (
	budget_id    TEXT NOT NULL PRIMARY KEY REFERENCES budgets (id) ON DELETE CASCADE,
	window_start INTEGER,
	used         REAL NOT NULL,
	tat          INTEGER,
	updated_at   INTEGER
) STRICT;
