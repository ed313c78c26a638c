-- Detection (issue 18 §2, docs/detect.md): what each agent's baseline has learned, how far the
-- detector has read the audit log (saved with the baselines in one transaction, so a restart
-- neither skips nor counts an event twice), the one replica that runs the detector (a lease),
-- the approval holds a finding put on an agent's calls, and the acknowledgements of findings.

CREATE TABLE detect_baselines (
	agent      TEXT NOT NULL PRIMARY KEY,
	body       BLOB NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE detect_cursor (
	name       TEXT NOT NULL PRIMARY KEY,
	seq        INTEGER NOT NULL,
	holder     TEXT NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE detect_holds (
	agent      TEXT NOT NULL,
	tool       TEXT NOT NULL,
	action     TEXT NOT NULL,
	finding    TEXT NOT NULL,
	until      INTEGER NOT NULL,
	PRIMARY KEY (agent, tool, action)
) STRICT;

CREATE TABLE detect_acks (
	finding    TEXT NOT NULL PRIMARY KEY,
	by_name    TEXT NOT NULL,
	reason     TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
