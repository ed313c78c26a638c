package gateway

import (
	"context"

	"github.com/wardenhq/warden"
)

// Refuse records and returns the refusal of a call that an entry point found unresolvable
// before policy (an MCP tool name its upstream never listed, say): the same tool.call audit
// event a refusal by Authorize writes, arguments redacted and digested alike, with effect deny
// and the given reason. It is a refusal whatever the audit log does; a failed write is logged.
// The answer is never nil and never allowed.
func (g *Gateway) Refuse(ctx context.Context, c *Caller, call *Call, reason, message string) *Permit {
	p := &Permit{Decision: warden.Decision{ID: warden.NewID("dec_")}, Ctx: ctx, Trace: call.Trace.Child()}
	snap := g.Registry.current()
	e := snap.tools[call.Tool]
	if e != nil {
		p.Tool = e.tool
	}
	rd := g.eventRedactor(snap, e)
	args, _ := DecodeArguments(call.Arguments)
	ev := g.callEvent(c, call, rd, p, g.now(), args)
	p.Decision.Effect, p.Decision.Reason, p.Decision.Message = warden.EffectDeny, reason, message
	g.record(ctx, ev, p, rd)
	return p
}
