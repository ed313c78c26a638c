package warden

import "context"

// Store is everything warden keeps. SQLite is the embedded default; PostgreSQL serves several
// replicas. internal/storetest holds the contract every implementation passes.
type Store interface {
	AgentStore
	AdminTokenStore
	KeyStore
	RevocationStore
	AuditStore
	AuditCheckpointStore
	AuditCursorStore
	ToolStore
	SecretStore
	PolicyStore
	PolicyShadowStore
	BudgetStore
	KillStore
	ApprovalStore
	SkillStore
	ToolManifestStore
	PackageLockStore
	FlowStore
	OAuthStore
	PersonStore
	DetectStore
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}
