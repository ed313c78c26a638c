package warden

import (
	"context"
	"time"
)

// Secret is an upstream credential warden brokers: it injects the value on the way upstream so
// that no agent ever holds it. The value is stored sealed under the master key and no API
// returns it.
type Secret struct {
	Name      string    `json:"name"`
	Sealed    []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SecretStore keeps sealed secrets.
type SecretStore interface {
	// PutSecret creates the secret or replaces its value, keeping CreatedAt.
	PutSecret(ctx context.Context, s *Secret) error
	Secret(ctx context.Context, name string) (*Secret, error)
	// Secrets lists every secret, ordered by name.
	Secrets(ctx context.Context) ([]*Secret, error)
	DeleteSecret(ctx context.Context, name string) error
}
