package apitype

import (
	"encoding/json"
	"fmt"
)

// ApplyRequest is the body of POST /v1/apply.
type ApplyRequest struct {
	Document Document `json:"document"`
	DryRun   bool     `json:"dry_run,omitempty"`
}

// Document is warden.yaml: agents, tools, grants and budgets declared in one place.
type Document struct {
	Agents  []AgentSpec  `json:"agents,omitempty" yaml:"agents"`
	Tools   []ToolSpec   `json:"tools,omitempty" yaml:"tools"`
	Grants  []GrantDecl  `json:"grants,omitempty" yaml:"grants"`
	Budgets []BudgetDecl `json:"budgets,omitempty" yaml:"budgets"`
	// Sets are named value sets, each a list of strings (Set::"<name>".values in policies). An
	// apply stores the sets it declares; a set it does not declare is left as it is.
	Sets map[string][]string `json:"sets,omitempty" yaml:"sets"`
}

// GrantDecl lets an agent take actions of a tool; it compiles to a Cedar permit.
type GrantDecl struct {
	Agent   string   `json:"agent" yaml:"agent"`
	Tool    string   `json:"tool" yaml:"tool"`
	Actions []string `json:"actions,omitempty" yaml:"actions"` // empty: every action of the tool
	When    string   `json:"when,omitempty" yaml:"when"`       // an optional Cedar condition
	// Approval is true (or "required") to make every call the grant allows wait for a person, or
	// "waived" to lift the approval a high or critical tool's risk would otherwise ask for.
	Approval GrantApproval `json:"approval,omitempty" yaml:"approval"`
}

// BudgetDecl declares one budget; exactly one of Rate, Quota, Concurrency and Sum is set.
type BudgetDecl struct {
	Agent       string `json:"agent" yaml:"agent"`
	Tool        string `json:"tool,omitempty" yaml:"tool"`
	Action      string `json:"action,omitempty" yaml:"action"`
	Rate        string `json:"rate,omitempty" yaml:"rate"`   // "20/hour"
	Quota       string `json:"quota,omitempty" yaml:"quota"` // "1000/day"
	Concurrency int    `json:"concurrency,omitempty" yaml:"concurrency"`
	Sum         string `json:"sum,omitempty" yaml:"sum"`     // the argument, e.g. "amount"
	Limit       string `json:"limit,omitempty" yaml:"limit"` // with sum: "500/day"
}

// GrantApproval says whether the calls a grant allows wait for a person's approval.
type GrantApproval string

// Values of GrantApproval. The zero value leaves it to the tool: a high or critical tool's calls
// wait for a person, others do not.
const (
	ApprovalRequired GrantApproval = "required" // every call waits: @approval("required")
	ApprovalWaived   GrantApproval = "waived"   // no call waits on account of risk: @approval("waived")
)

// parse accepts what warden.yaml may say: true (required), false (the default), "required" or
// "waived".
func (g *GrantApproval) parse(v any) error {
	switch v := v.(type) {
	case bool:
		*g = ""
		if v {
			*g = ApprovalRequired
		}
		return nil
	case string:
		switch GrantApproval(v) {
		case "", ApprovalRequired, ApprovalWaived:
			*g = GrantApproval(v)
			return nil
		}
	}
	return fmt.Errorf("approval must be true, false, required or waived, not %v", v)
}

// UnmarshalJSON reads true, false, "required" or "waived".
func (g *GrantApproval) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return g.parse(v)
}

// UnmarshalYAML reads true, false, required or waived. It has the signature YAML decoders
// accept without importing one: this package depends on the standard library only.
func (g *GrantApproval) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	return g.parse(v)
}

// Change is one line of a plan.
type Change struct {
	Kind   string `json:"kind"` // agent, tool, grant, budget
	Name   string `json:"name"`
	Op     string `json:"op"` // create, update, remove, unchanged
	Detail string `json:"detail,omitempty"`
}

// Plan is what an apply does (or, for a dry run, would do).
type Plan struct {
	DryRun  bool     `json:"dry_run"`
	Changes []Change `json:"changes"`
	// Credentials are the client credentials of the agents an apply created, shown once.
	Credentials   map[string]AgentCredentials `json:"credentials,omitempty"`
	PolicyVersion int64                       `json:"policy_version,omitempty"`
	// Manifests are the pins of the MCP servers the apply created or changed, listed then.
	Manifests []*ManifestPins `json:"manifests,omitempty"`
}

// AgentCredentials are an agent's client credentials.
type AgentCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}
