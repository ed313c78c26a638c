package cedar

import (
	cedar "github.com/cedar-policy/cedar-go"

	"github.com/wardenhq/warden"
)

// MayPermit reports whether some permit's principal and action scope admit the agent to the
// tool's action, whatever the resource and the conditions, and no forbid without conditions on
// any resource refuses it outright. Listings (an MCP tools/list) use it to show an agent what it
// may call or ask approval for: conditions on arguments are judged when the call is made, so a
// tool is not hidden because a condition needs arguments a listing has not got — but one that
// every call of the agent is forbidden is not listed to be denied.
func (e *Engine) MayPermit(agent *warden.Agent, tool *warden.Tool, action string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if e == nil || agent == nil || tool == nil {
		return false
	}
	req, ents, err := e.translate(&warden.Request{Agent: agent, Tool: tool, Action: action, Arguments: map[string]any{}}, false)
	if err != nil {
		return false
	}
	candidates := e.candidatesFor(req, tool.Name)
	scopes := policyIterator(func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, i := range candidates {
			if p := e.policies[i]; p.scope != nil && !yield(cedar.PolicyID(p.ID), p.scope) {
				return
			}
		}
	})
	decision, _ := cedar.Authorize(scopes, ents, req)
	return decision == cedar.Allow
}
