package admin

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

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

// UnmarshalYAML reads true, false, required or waived.
func (g *GrantApproval) UnmarshalYAML(n *yaml.Node) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	if err := g.parse(v); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}
