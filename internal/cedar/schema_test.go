package cedar

import (
	"slices"
	"testing"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"

	"github.com/wardenhq/warden"
)

func TestSchema(t *testing.T) {
	text, err := Schema(testTools())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "schema.cedarschema", text)

	// The text must be a schema Cedar itself accepts, not just something that looks like one.
	var s schema.Schema
	if err := s.UnmarshalCedar([]byte(text)); err != nil {
		t.Fatalf("Cedar does not parse the schema: %v", err)
	}
	resolved, err := s.Resolve()
	if err != nil {
		t.Fatalf("Cedar does not resolve the schema: %v", err)
	}
	for _, et := range []types.EntityType{typeAgent, typeTool, typeResource} {
		if _, ok := resolved.Entities[et]; !ok {
			t.Errorf("schema has no entity type %s", et)
		}
	}
	var actions []string
	for uid := range resolved.Actions {
		actions = append(actions, string(uid.ID))
	}
	slices.Sort(actions)
	want := []string{"everything", "github", "github:issues.comment", "github:issues.list", "github:repo.delete", "github:user.get", "shell"}
	if !slices.Equal(actions, want) {
		t.Errorf("schema actions = %q; want %q", actions, want)
	}
}

func TestSchemaOfNoTools(t *testing.T) {
	text, err := Schema(nil)
	if err != nil {
		t.Fatal(err)
	}
	var s schema.Schema
	if err := s.UnmarshalCedar([]byte(text)); err != nil {
		t.Fatalf("Cedar does not parse the schema of no tools: %v", err)
	}
}

func TestRouteAction(t *testing.T) {
	for route, want := range map[string]string{
		"GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}": "issues.list",
		"POST /x->create":               "create",
		"  DELETE  /a/b  ->  a/b_c-d  ": "a/b_c-d",
	} {
		got, err := routeAction(route)
		if err != nil || got != want {
			t.Errorf("routeAction(%q) = %q, %v; want %q", route, got, err, want)
		}
	}
	for _, route := range []string{"", "GET /x", "-> a", "GET -> a", "GET /x -> ", "GET /x -> a:b", "GET /x -> a b c", "GET /x y -> a"} {
		if _, err := routeAction(route); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("routeAction(%q) = %v; want an invalid error", route, err)
		}
	}
}
