-- Agent Skills (issue 15): every version of a skill, named by its canonical digest, with its
-- canonical archive kept here so that any replica can serve it; and which agent may load which
-- skill.

CREATE TABLE skills (
	seq             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, -- the order versions were added
	name            TEXT NOT NULL,
	digest          TEXT NOT NULL,
	description     TEXT NOT NULL,
	license         TEXT NOT NULL,
	allowed_tools   TEXT NOT NULL, -- JSON array
	size            INTEGER NOT NULL,
	files           INTEGER NOT NULL,
	signer          TEXT NOT NULL,
	unsigned_reason TEXT NOT NULL,
	findings        TEXT NOT NULL, -- JSON array of scan findings, '' for none
	override_reason TEXT NOT NULL,
	added_by        TEXT NOT NULL,
	added_at        INTEGER,
	archive         BLOB NOT NULL, -- the canonical .tar.gz
	UNIQUE (name, digest)
) STRICT;

CREATE TABLE skill_grants (
	agent TEXT NOT NULL,
	skill TEXT NOT NULL,
	PRIMARY KEY (agent, skill)
) STRICT;
