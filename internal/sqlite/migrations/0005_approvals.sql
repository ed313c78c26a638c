-- Approvals: requests for a person's approval of one call, bound to it by a digest (binding).
-- The columns other than body copy fields of the warden.Approval it holds, for lookups. One call
-- has at most one open (pending or approved) request, whichever replica asks.
CREATE TABLE approvals (
	id         TEXT NOT NULL PRIMARY KEY,
	binding    TEXT NOT NULL,
	status     TEXT NOT NULL,
	agent_id   TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	body       TEXT NOT NULL -- the warden.Approval as JSON
) STRICT;

CREATE UNIQUE INDEX approvals_open_binding ON approvals (binding) WHERE status IN ('pending', 'approved');
CREATE INDEX approvals_binding ON approvals (binding, created_at);
CREATE INDEX approvals_status ON approvals (status, expires_at);
CREATE INDEX approvals_agent ON approvals (agent_id, status);

-- The actions of a tool that always need approval (JSON array), and the email of the person
-- holding an admin token, which separation of duties compares with an agent's owner.
ALTER TABLE tools ADD COLUMN approval TEXT NOT NULL DEFAULT '[]';
ALTER TABLE admin_tokens ADD COLUMN email TEXT NOT NULL DEFAULT '';
