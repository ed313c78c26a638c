package apitype

import (
	"time"

	"github.com/wardenhq/warden"
)

// MaxShadowReportEvents bounds the policy.shadow_diff events a shadow report reads; a longer
// period is reported as truncated.
const MaxShadowReportEvents = 100_000

// MaxShadowExamples is how many event ids a shadow report gives of each group.
const MaxShadowExamples = 3

// PolicyShadowReport summarises shadow mode (GET /v1/policies/shadow/report): the differences
// recorded in the audit log since Since, by tool, action and change of effect, and what this
// replica compared.
type PolicyShadowReport struct {
	// Shadow is the candidate in force, without its files; nil when there is none.
	Shadow *warden.PolicyShadow `json:"shadow,omitempty"`
	// ShadowError says why no replica compares calls with the candidate: it does not compile
	// against the tools registered now (a tool it names was removed). "" when it does.
	ShadowError string    `json:"shadow_error,omitempty"`
	Since       time.Time `json:"since"`
	// Diffs counts the policy.shadow_diff events since Since, every replica's.
	Diffs int `json:"diffs"`
	// Dropped counts the differences replicas could not record, from their
	// policy.shadow_dropped events since Since.
	Dropped   int64               `json:"dropped"`
	Truncated bool                `json:"truncated,omitempty"` // more than MaxShadowReportEvents differences: the latest were not read
	Groups    []PolicyShadowGroup `json:"groups"`
	// Replica is what the replica that answered compared, counted in its memory: calls of
	// other replicas, and calls before its last start, are not in it.
	Replica PolicyShadowReplica `json:"replica"`
}

// PolicyShadowGroup is the differences of one tool and action with one change of effect.
type PolicyShadowGroup struct {
	Tool          string   `json:"tool"`
	Action        string   `json:"action"`
	Live          string   `json:"live"`   // the live effect
	Shadow        string   `json:"shadow"` // the candidate's
	ShadowVersion int64    `json:"shadow_version"`
	Count         int      `json:"count"`
	Examples      []string `json:"examples"` // event ids, the first MaxShadowExamples
}

// PolicyShadowReplica is one replica's counts of the candidate it last compared calls with.
type PolicyShadowReplica struct {
	ShadowVersion int64     `json:"shadow_version"` // 0: no call compared since it started
	Since         time.Time `json:"since,omitzero"`
	Compared      int64     `json:"compared"`
	Diffs         int64     `json:"diffs"`
	Dropped       int64     `json:"dropped"`
}
