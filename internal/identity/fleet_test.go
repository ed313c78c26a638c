package identity_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/identity"
)

type recordingPublisher struct {
	mu      sync.Mutex
	changes []fleet.Change
}

func (p *recordingPublisher) Publish(_ context.Context, topic fleet.Topic, name string) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changes = append(p.changes, fleet.Change{Topic: topic, Name: name})
	return int64(len(p.changes)), nil
}

// A revocation and a key rotation are announced to the other replicas, which reload them at
// once (ReloadKeys): replica b refuses a token revoked on a, and accepts a's new key, without
// waiting for its refresh. A revocation of nothing announces nothing.
func TestRevocationsAndRotationsAreAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pub := &recordingPublisher{}
	e := newEnv(t, func(c *identity.Config) { c.Fleet = pub })
	b := e.replica()
	token := e.issue(identity.IssueRequest{}).Token
	if _, err := b.VerifyToken(ctx, token); err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Revoke(ctx, token, "")
	if err != nil || c == nil {
		t.Fatalf("Revoke = %v, %v", c, err)
	}
	if _, err := e.svc.Revoke(ctx, "not-a-token", ""); err != nil {
		t.Fatal(err)
	}
	k, err := e.svc.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []fleet.Change{{Topic: fleet.TopicRevocation, Name: c.ID}, {Topic: fleet.TopicKey, Name: k.ID}}
	if !slices.Equal(pub.changes, want) {
		t.Fatalf("announced %+v, want %+v", pub.changes, want)
	}
	if err := b.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifyToken(ctx, token); err == nil {
		t.Error("replica b still accepts the token revoked on a after reloading")
	}
	if _, err := b.VerifyToken(ctx, e.issue(identity.IssueRequest{}).Token); err != nil {
		t.Errorf("replica b refuses a token of a's new key after reloading: %v", err)
	}
}
