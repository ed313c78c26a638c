-- The kill state that is not agents or tools: the fleet-wide lockdown (one row) and the
-- quarantined skill digests.

CREATE TABLE lockdown (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	body TEXT NOT NULL -- the warden.Lockdown as JSON
) STRICT;

CREATE TABLE quarantine (
	digest TEXT NOT NULL PRIMARY KEY,
	reason TEXT NOT NULL,
	by     TEXT NOT NULL,
	at     INTEGER
) STRICT;
