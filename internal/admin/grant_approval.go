package admin

import "github.com/wardenhq/warden/internal/apitype"

// GrantApproval says whether the calls a grant allows wait for a person's approval; the type,
// and how warden.yaml may spell it, are apitype's.
type GrantApproval = apitype.GrantApproval

// Values of GrantApproval. The zero value leaves it to the tool: a high or critical tool's calls
// wait for a person, others do not.
const (
	ApprovalRequired = apitype.ApprovalRequired // every call waits: @approval("required")
	ApprovalWaived   = apitype.ApprovalWaived   // no call waits on account of risk: @approval("waived")
)
