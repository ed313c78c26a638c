-- A detection hold may cover one resource of a tool's action (docs/detect.md): the approve step
-- of a first-seen egress host holds that host's connections, not all the agent's egress. The
-- holds in force keep covering every resource ('').

ALTER TABLE detect_holds ADD COLUMN resource TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE detect_holds DROP CONSTRAINT detect_holds_pkey;
ALTER TABLE detect_holds ADD PRIMARY KEY (agent, tool, action, resource);
