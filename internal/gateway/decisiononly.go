package gateway

import "github.com/wardenhq/warden"

// DecisionOnlyMessage is why /mcp and /http refuse a decision-only tool.
func DecisionOnlyMessage(tool string) string {
	return "tool " + tool + " is decision-only: warden never reaches it; ask POST /v1/authorize and act on the decision"
}

// entryRefusal says why a call may not go on through its entry point: a decision-only tool has
// no upstream, so only the decision API decides its calls — an allow at /mcp or /http would be
// an allow of nothing, recorded as if something ran.
func entryRefusal(t *warden.Tool, entry string) (reason, message string) {
	if t.Kind == warden.ToolDecisionOnly && entry != EntryAuthorize {
		return warden.ReasonDecisionOnly, DecisionOnlyMessage(t.Name)
	}
	return "", ""
}
