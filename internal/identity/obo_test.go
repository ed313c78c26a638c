package identity_test

import (
	"context"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

// TestPersonAndResource: a token of the authorization code flow names the agent as sub and the
// person as obo, has the resource as its only audience and verifies; a resource that is not
// warden's /mcp is refused at issue; a token naming a person both ways is refused at verify.
func TestPersonAndResource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	iss := e.issue(identity.IssueRequest{Person: "ann@example.com", Resource: testIssuer + "/mcp/notes"})
	c, err := e.svc.VerifyToken(context.Background(), iss.Token)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != e.agent.ID || c.Person != "ann@example.com" || c.OnBehalfOf() != "ann@example.com" || c.Actor != nil ||
		len(c.Audience) != 1 || c.Audience[0] != testIssuer+"/mcp/notes" {
		t.Fatalf("claims: %+v", c)
	}
	for _, bad := range []identity.IssueRequest{
		{Person: "ann@example.com", Resource: "https://elsewhere.example/mcp"},
		{Person: "ann@example.com", Resource: testIssuer + "/http/notes"},
		{Person: "ann@example.com", OnBehalfOf: "bob@example.com"},
	} {
		if _, err := e.svc.Issue(context.Background(), e.agent, bad); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("%+v: %v, want EInvalid", bad, err)
		}
	}
	both := e.claims()
	both["obo"] = "ann@example.com"
	both["sub"] = "bob@example.com"
	both["act"] = map[string]any{"sub": e.agent.ID}
	if _, err := e.svc.VerifyToken(context.Background(), e.mint(nil, both)); warden.ErrorCode(err) != warden.EUnauthenticated {
		t.Fatalf("a token with act and obo: %v, want refused", err)
	}
	foreign := e.claims()
	foreign["aud"] = "https://elsewhere.example/mcp"
	if _, err := e.svc.VerifyToken(context.Background(), e.mint(nil, foreign)); warden.ErrorCode(err) != warden.EUnauthenticated {
		t.Fatalf("a token for another server's resource: %v, want refused", err)
	}
}
