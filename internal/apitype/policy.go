package apitype

import (
	"time"

	"github.com/wardenhq/warden"
)

// PolicyApply is a request to replace the people-written policy files.
type PolicyApply struct {
	Files   map[string]string `json:"files"`
	Comment string            `json:"comment,omitempty"`
	// IfVersion, when set, applies only if the latest version is still this one.
	IfVersion int64 `json:"if_version,omitempty"`
}

// RollbackRequest names the version to roll back to.
type RollbackRequest struct {
	Version int64  `json:"version"`
	Reason  string `json:"reason,omitempty"`
}

// PolicyCase is one request of `warden policy test` with the decision it expects.
type PolicyCase struct {
	Name       string            `json:"name,omitempty" yaml:"name"`
	Agent      string            `json:"agent" yaml:"agent"`
	Owner      string            `json:"owner,omitempty" yaml:"owner"`   // for an agent the server does not know
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels"` // likewise
	Tool       string            `json:"tool" yaml:"tool"`
	Action     string            `json:"action" yaml:"action"`
	Resource   string            `json:"resource,omitempty" yaml:"resource"`
	Arguments  map[string]any    `json:"arguments,omitempty" yaml:"arguments"`
	OnBehalfOf string            `json:"on_behalf_of,omitempty" yaml:"on_behalf_of"`
	// Session is what the case's session had read before the call (context.session,
	// context.taint); nil: a fresh session. The action's flow labels (context.labels) are the
	// tool's, as the gateway resolves them.
	Session *CaseSession `json:"session,omitempty" yaml:"session"`
	Expect  string       `json:"expect" yaml:"expect"` // allow, deny or approval_required
}

// CaseSession is the flow facts of a policy case's session.
type CaseSession struct {
	ID string `json:"id,omitempty" yaml:"id"`
	// UntrustedFrom names the calls whose untrusted output the session read, as "TOOL" or
	// "TOOL:ACTION"; any makes untrusted_read true.
	UntrustedFrom []string `json:"untrusted_from,omitempty" yaml:"untrusted_from"`
	PrivateRead   bool     `json:"private_read,omitempty" yaml:"private_read"`
	// Tainted names the arguments whose values came from that output (context.taint.args); they
	// need a source in UntrustedFrom.
	Tainted []string `json:"tainted,omitempty" yaml:"tainted"`
}

// PolicyTest runs cases against Files (or, when Files is empty, the policies in force).
type PolicyTest struct {
	Files map[string]string `json:"files,omitempty"`
	Cases []PolicyCase      `json:"cases"`
}

// PolicySchema is the Cedar schema, in Cedar's human-readable schema syntax, of the policies that
// may be written over the registered tools: what `policy apply` validates against.
type PolicySchema struct {
	Schema string `json:"schema"`
}

// PolicyCaseResult is the outcome of one case.
type PolicyCaseResult struct {
	Name        string      `json:"name"`
	Pass        bool        `json:"pass"`
	Expect      string      `json:"expect"`
	Got         string      `json:"got"`
	Explanation Explanation `json:"explanation"`
}

// Policy is one compiled Cedar policy, as decisions and explanations name it.
type Policy struct {
	// ID is the policy's @id("...") annotation, or "<file>#<n>" for the n-th policy (from 0) of
	// a file without one. Decisions and audit events name policies by it.
	ID       string `json:"id"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Effect   string `json:"effect"` // permit or forbid
	Approval bool   `json:"approval,omitempty"`
	// ApprovalWaived marks a permit annotated @approval("waived"): what it allows needs no
	// person's approval on account of the tool's risk (see cedar.Engine.Decide).
	ApprovalWaived bool `json:"approval_waived,omitempty"`
	// Source is the policy in Cedar's canonical formatting, as the engine evaluates it; comments
	// and layout of the original file are not kept.
	Source string `json:"source"`
}

// Explanation is a decision together with how it was reached, for `warden policy explain`.
type Explanation struct {
	Decision warden.Decision `json:"decision"`
	// Principal, Action and Resource are the Cedar entities the request became, such as
	// Agent::"triage-bot"; empty when the request could not be translated.
	Principal string `json:"principal,omitempty"`
	Action    string `json:"action,omitempty"`
	Resource  string `json:"resource,omitempty"`
	// Considered are the policies whose scope may match the request, in evaluation order.
	Considered []PolicyResult `json:"considered"`
	// Skipped counts the policies the index ruled out: their principal or action scope cannot
	// match this request, so evaluating them would not change the decision.
	Skipped int `json:"skipped"`
	// Flow is the flow facts the decision used: the action's labels and where each came from,
	// what the session had read, which arguments were tainted and by which call's output.
	Flow *warden.FlowFacts `json:"flow,omitempty"`
	// Sets are the named sets the considered policies read, with the number of values of each
	// in the policy set decided by.
	Sets map[string]int `json:"sets,omitempty"`
}

// PolicyResult is what one policy made of a request.
type PolicyResult struct {
	Policy
	Matched bool   `json:"matched"`         // scope and conditions held
	Error   string `json:"error,omitempty"` // evaluation failed: a permit does not apply; a forbid or @approval("required") permit denies
}

// BudgetSpec declares one budget: the scope and a spec such as "rate 20/hour".
type BudgetSpec struct {
	Agent  string `json:"agent"`
	Tool   string `json:"tool,omitempty"`
	Action string `json:"action,omitempty"`
	Spec   string `json:"spec"`
}

// BudgetStatus is one budget's use against its limit.
type BudgetStatus struct {
	*warden.Budget
	Description string    `json:"description"`
	Used        float64   `json:"used"`
	Remaining   float64   `json:"remaining"`
	ResetsAt    time.Time `json:"resets_at,omitzero"`
	RetryAfter  float64   `json:"retry_after_seconds,omitempty"`
}
