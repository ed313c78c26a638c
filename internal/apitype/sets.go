package apitype

// ValueSet is a named value set: strings a policy reads as Set::"<name>".values. Sets are part
// of the policy set: Version is the policy version that holds this one.
type ValueSet struct {
	Name    string   `json:"name"`
	Values  []string `json:"values"`
	Version int64    `json:"version"`
}

// SetApply is the body of PUT /v1/sets/{name}: the set's values, replacing any it had.
type SetApply struct {
	Values  []string `json:"values"`
	Comment string   `json:"comment,omitempty"`
}
