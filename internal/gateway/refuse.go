package gateway

import (
	"context"

	"github.com/wardenhq/warden"
)

// Refuse records and returns the refusal of a call that an entry point found unresolvable
// before policy (an MCP tool name its upstream never listed, say): the same tool.call audit
// event a refusal by Authorize writes, arguments redacted and digested alike, with effect deny
// and the given reason — or, as in Authorize, the kill state's reason when the agent may not
// act at all, so that a stopped agent is recorded as stopped whatever it sent. It is a refusal
// whatever the audit log does; a failed write is logged. The answer is never nil and never
// allowed.
func (g *Pipeline) Refuse(ctx context.Context, c *Caller, call *Call, reason, message string) *Permit {
	r := g.newRequest(ctx, c, call)
	r.resolve()
	r.p.Tool = r.tool()
	if r.killState() {
		r.refuse(warden.EffectDeny, reason, message)
	}
	r.observe()
	r.p.span.decided(r.p)
	return r.p
}
