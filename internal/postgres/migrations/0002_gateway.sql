-- What the gateway needs: the tools agents reach, the secrets injected on the way upstream, the
-- versions of the Cedar policies, and budgets with the counters that carry their use across a
-- restart. Lists and maps are JSON text; limits and use are 8-byte IEEE floats, kept exactly.

CREATE TABLE tools (
	name           TEXT COLLATE "C" PRIMARY KEY,
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
	disabled       BOOLEAN NOT NULL,
	created_at     BIGINT,
	updated_at     BIGINT
);

CREATE TABLE secrets (
	name       TEXT COLLATE "C" PRIMARY KEY,
	sealed     BYTEA NOT NULL,
	created_at BIGINT,
	updated_at BIGINT
);

-- Versions are assigned under a table lock, so they are gap-free and never reused.
CREATE TABLE policy_sets (
	version    BIGINT PRIMARY KEY,
	files      TEXT NOT NULL, -- JSON object: file name → Cedar text
	created_by TEXT NOT NULL,
	created_at BIGINT,
	comment    TEXT NOT NULL
);

CREATE TABLE budgets (
	id           TEXT COLLATE "C" PRIMARY KEY,
	agent        TEXT COLLATE "C" NOT NULL,
	tool         TEXT NOT NULL,
	action       TEXT NOT NULL,
	kind         TEXT NOT NULL,
	limit_value  DOUBLE PRECISION NOT NULL,
	window_nanos BIGINT NOT NULL,
	arg          TEXT NOT NULL,
	updated_at   BIGINT
);

CREATE INDEX budgets_agent ON budgets (agent, id);

-- A counter lives and dies with its budget.
CREATE TABLE budget_counters (
	budget_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES budgets (id) ON DELETE CASCADE,
	window_start BIGINT,
	used         DOUBLE PRECISION NOT NULL,
	tat          BIGINT,
	updated_at   BIGINT
);
