package apitype

import "time"

// MaxSuggestEvents bounds the tool calls a suggestion reads from the audit log; a longer period
// is cut at this many calls, and the report says so (Truncated).
const MaxSuggestEvents = 100_000

// SuggestReport is the answer of GET /v1/agents/{name}/suggest: the smallest grants that cover
// what an agent did in a period, and the grants it holds that it did not use.
type SuggestReport struct {
	Agent string    `json:"agent"`
	Since time.Time `json:"since"`
	// Calls is how many of the agent's tool calls in the period went ahead (effect allow): what
	// the grants cover. Refused, held and unrecorded calls are not what it did.
	Calls     int  `json:"calls"`
	Truncated bool `json:"truncated,omitempty"` // more than MaxSuggestEvents calls: the latest were not read
	// Grants are the suggested grants, one per tool and set of resources, as warden.yaml declares them.
	Grants []SuggestedGrant `json:"grants"`
	// YAML is Grants as a warden.yaml `grants:` fragment; Cedar the same grants as a policy file.
	YAML  string `json:"yaml"`
	Cedar string `json:"cedar"`
	// Unused are the permits in force that name the agent as principal and decided none of its
	// calls in the period: grants proposed for removal.
	Unused []UnusedGrant `json:"unused"`
	// Skipped counts calls no grant can name (an action or tool name Cedar refuses).
	Skipped int `json:"skipped,omitempty"`
}

// SuggestedGrant is one suggested grant and what it covers.
type SuggestedGrant struct {
	GrantDecl
	// Resources are the resources the grant allows, exact names or patterns ending in "*"; ""
	// stands for a call that named no resource. Empty: every call of Actions named none.
	Resources []string `json:"resources,omitempty"`
	Calls     int      `json:"calls"` // the recorded calls it covers
}

// UnusedGrant is a permit in force for the agent that decided none of its calls in the period.
type UnusedGrant struct {
	Policy string `json:"policy"` // its id, as decisions name it
	File   string `json:"file"`
	Line   int    `json:"line"`
}
