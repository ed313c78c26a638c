-- Detection (issue 18 §2, docs/detect.md): what each agent's baseline has learned, how far the
-- detector has read the audit log (saved with the baselines in one transaction, so a restart
-- neither skips nor counts an event twice), the one replica that runs the detector (a lease),
-- the approval holds a finding put on an agent's calls, and the acknowledgements of findings.

CREATE TABLE detect_baselines (
	agent      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	body       BYTEA NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE detect_cursor (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	seq        BIGINT NOT NULL,
	holder     TEXT COLLATE "C" NOT NULL,
	expires_at BIGINT NOT NULL
);

CREATE TABLE detect_holds (
	agent      TEXT COLLATE "C" NOT NULL,
	tool       TEXT COLLATE "C" NOT NULL,
	action     TEXT COLLATE "C" NOT NULL,
	finding    TEXT COLLATE "C" NOT NULL,
	until      BIGINT NOT NULL,
	PRIMARY KEY (agent, tool, action)
);

CREATE TABLE detect_acks (
	finding    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	by_name    TEXT COLLATE "C" NOT NULL,
	reason     TEXT COLLATE "C" NOT NULL,
	created_at BIGINT NOT NULL
);
