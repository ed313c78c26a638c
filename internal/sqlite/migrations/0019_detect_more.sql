-- A detection hold may cover one resource of a tool's action (docs/detect.md): the approve step
-- of a first-seen egress host holds that host's connections, not all the agent's egress. SQLite
-- cannot change a primary key in place, so the table is rebuilt; the holds in force keep
-- covering every resource ('').

CREATE TABLE detect_holds_new (
	agent      TEXT NOT NULL,
	tool       TEXT NOT NULL,
	action     TEXT NOT NULL,
	resource   TEXT NOT NULL,
	finding    TEXT NOT NULL,
	until      INTEGER NOT NULL,
	PRIMARY KEY (agent, tool, action, resource)
) STRICT;

INSERT INTO detect_holds_new (agent, tool, action, resource, finding, until)
	SELECT agent, tool, action, '', finding, until FROM detect_holds;
DROP TABLE detect_holds;
ALTER TABLE detect_holds_new RENAME TO detect_holds;
