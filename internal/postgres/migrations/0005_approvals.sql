-- Approvals: requests for a person's approval of one call, bound to it by a digest (binding).
-- The columns other than body copy fields of the warden.Approval it holds, for lookups. One call
-- has at most one open (pending or approved) request, whichever replica asks.
CREATE TABLE approvals (
	id         TEXT COLLATE "C" PRIMARY KEY,
	binding    TEXT COLLATE "C" NOT NULL,
	status     TEXT COLLATE "C" NOT NULL,
	agent_id   TEXT COLLATE "C" NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	body       TEXT NOT NULL -- the warden.Approval as JSON
);

CREATE UNIQUE INDEX approvals_open_binding ON approvals (binding) WHERE status IN ('pending', 'approved');
CREATE INDEX approvals_binding ON approvals (binding, created_at);
CREATE INDEX approvals_status ON approvals (status, expires_at);
CREATE INDEX approvals_agent ON approvals (agent_id, status);

-- The actions of a tool that always need approval (JSON array), and the email of the person
-- holding an admin token, which separation of duties compares with an agent's owner.
ALTER TABLE tools ADD COLUMN approval TEXT NOT NULL DEFAULT '[]';
ALTER TABLE admin_tokens ADD COLUMN email TEXT NOT NULL DEFAULT '';
