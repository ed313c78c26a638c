-- Agent Skills (issue 15): every version of a skill, named by its canonical digest, with its
-- canonical archive kept here so that any replica can serve it; and which agent may load which
-- skill.

CREATE TABLE skills (
	seq             BIGSERIAL PRIMARY KEY, -- the order versions were added
	name            TEXT COLLATE "C" NOT NULL,
	digest          TEXT COLLATE "C" NOT NULL,
	description     TEXT NOT NULL,
	license         TEXT NOT NULL,
	allowed_tools   TEXT NOT NULL, -- JSON array
	size            BIGINT NOT NULL,
	files           BIGINT NOT NULL,
	signer          TEXT NOT NULL,
	unsigned_reason TEXT NOT NULL,
	findings        TEXT NOT NULL, -- JSON array of scan findings, '' for none
	override_reason TEXT NOT NULL,
	added_by        TEXT NOT NULL,
	added_at        BIGINT,
	archive         BYTEA NOT NULL, -- the canonical .tar.gz
	UNIQUE (name, digest)
);

CREATE TABLE skill_grants (
	agent TEXT COLLATE "C" NOT NULL,
	skill TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (agent, skill)
);
