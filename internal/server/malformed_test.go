package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

// applyGrantJSON declares an agent, a tool and a grant, so that the policies in force hold a
// generated file (@apply/…) beside the people's: what POST /v1/policies keeps when it replaces
// the people's files, and where a body without files used to panic.
const applyGrantJSON = `{"document":{
	"agents":[{"name":"bot","owner":"alice@example.com","purpose":"malformed bodies"}],
	"tools":[{"name":"bank","http":"http://127.0.0.1:9","routes":["POST /transfer -> transfer"]}],
	"grants":[{"agent":"bot","tool":"bank","actions":["transfer"]}]}}`

func latestPolicyVersion(t *testing.T, in *instance) int64 {
	t.Helper()
	r := in.do(http.MethodGet, "/v1/policies/latest", map[string]string{"Authorization": "Bearer " + in.admin}, "")
	if r.status != http.StatusOK {
		t.Fatalf("latest policies: %d %s", r.status, r.body)
	}
	var ps warden.PolicySet
	if err := json.Unmarshal(r.body, &ps); err != nil {
		t.Fatal(err)
	}
	return ps.Version
}

// TestPolicyUploadWithoutFiles sends POST /v1/policies bodies that carry no files: each is a
// client's mistake, answered 400, and no new policy version is stored — in particular the
// people's policies are not wiped by a body that forgot them.
func TestPolicyUploadWithoutFiles(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	auth := map[string]string{"Authorization": "Bearer " + in.admin, "Content-Type": "application/json"}
	if r := in.do(http.MethodPost, "/v1/apply", auth, applyGrantJSON); r.status != http.StatusOK {
		t.Fatalf("apply: %d %s", r.status, r.body)
	}
	people := `{"files":{"people.cedar":"permit(principal == Agent::\"bot\", action, resource);"}}`
	if r := in.do(http.MethodPost, "/v1/policies", auth, people); r.status != http.StatusCreated {
		t.Fatalf("a valid upload: %d %s", r.status, r.body)
	}
	version := latestPolicyVersion(t, in)
	for _, body := range []string{`{}`, `null`, `{"files":null}`, `{"comment":"no files"}`, `{"if_version":2}`} {
		r := in.do(http.MethodPost, "/v1/policies", auth, body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"invalid"`) {
			t.Errorf("%s: %d %s; want 400 invalid", body, r.status, r.body)
		}
	}
	if v := latestPolicyVersion(t, in); v != version {
		t.Fatalf("refused uploads stored policy version %d (was %d)", v, version)
	}
	// An explicit empty set is a request to remove the people's files; the generated grants stay.
	if r := in.do(http.MethodPost, "/v1/policies", auth, `{"files":{}}`); r.status != http.StatusCreated ||
		!strings.Contains(string(r.body), "@apply/") || strings.Contains(string(r.body), "people.cedar") {
		t.Fatalf("an empty set: %d %s", r.status, r.body)
	}
}

// TestAdminRoutesMalformedBodies sends malformed bodies to every admin POST and PUT route: a
// client's mistake is a 4xx, never a 5xx (a panic the recoverer turned into 500 among them).
func TestAdminRoutesMalformedBodies(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	auth := map[string]string{"Authorization": "Bearer " + in.admin, "Content-Type": "application/json"}
	if r := in.do(http.MethodPost, "/v1/apply", auth, applyGrantJSON); r.status != http.StatusOK {
		t.Fatalf("apply: %d %s", r.status, r.body)
	}
	routes := []string{
		"POST /v1/agents",
		"POST /v1/agents/bot/suspend",
		"POST /v1/agents/bot/resume",
		"POST /v1/agents/bot/renew",
		"POST /v1/agents/bot/rotate-secret",
		"POST /v1/agents/bot/kill",
		"POST /v1/agents/bot/restore",
		"POST /v1/admin/tokens",
		"POST /v1/keys/rotate",
		"POST /v1/tools",
		"POST /v1/tools/bank/enable",
		"POST /v1/tools/bank/disable",
		"PUT /v1/secrets/bank-token",
		"POST /v1/policies",
		"POST /v1/policies/rollback",
		"POST /v1/policies/test",
		"POST /v1/policies/explain",
		"PUT /v1/policies/shadow",
		"POST /v1/policies/shadow",
		"POST /v1/policies/shadow/promote",
		"DELETE /v1/policies/shadow",
		"POST /v1/apply",
		"POST /v1/budgets",
		"POST /v1/lockdown",
		"POST /v1/lockdown/lift",
		"POST /v1/quarantine",
		"POST /v1/approvals/ap_none/approve",
		"POST /v1/approvals/ap_none/reject",
		"POST /v1/audit/checkpoint",
		"POST /v1/audit/verify",
	}
	nested := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	bodies := []string{
		``, `null`, `[]`, `""`, `0`, `-1`, `true`, `{}`, `{}{}`, `{"a":`, `{"a" 1}`, "\xff\xfe",
		`{"files":null}`, `{"files":{"a":null}}`, `{"files":[]}`, `{"files":"x"}`, `{"files":{"a.cedar":1}}`,
		`{"files":{"../x.cedar":"permit(principal,action,resource);"}}`, `{"files":{"x.cedar":"permit("}}`,
		`{"name":null}`, `{"name":1}`, `{"name":{}}`, `{"name":"` + strings.Repeat("n", 5000) + `"}`,
		`{"labels":null}`, `{"labels":{"a":null}}`, `{"labels":[]}`,
		`{"document":null}`, `{"document":[]}`, `{"document":{"agents":null,"tools":[null],"grants":[{}],"budgets":[{}]}}`,
		`{"document":{"agents":[null]}}`, `{"document":{"grants":[{"agent":"bot","tool":"bank","approval":null}]}}`,
		`{"cases":null}`, `{"cases":[null]}`, `{"cases":[{}]}`, `{"cases":[{"agent":"bot","tool":"bank","expect":"allow","arguments":null}]}`,
		`{"agent":"bot","tool":"bank","action":"transfer","arguments":{"x":1e400}}`,
		`{"version":-1}`, `{"version":1e400}`, `{"version":"1"}`, `{"version":99999}`,
		`{"reason":null}`, `{"reason":"` + strings.Repeat("r", 100000) + `"}`, `{"ttl":"-1h"}`, `{"ttl":"999999999999d"}`,
		`{"value":null}`, `{"value":1}`, `{"spec":"rate 0/hour","agent":"bot"}`, `{"spec":null}`,
		`{"min_risk":"extreme","reason":"x"}`, `{"digest":"sha256:zz","reason":"x"}`, `{"disable_tools":[null]}`,
		`{"checkpoint":"not a checkpoint"}`, `{"checkpoint":null}`, `{"role":"root","name":"x"}`,
		nested, `{"x":"` + strings.Repeat("A", 2<<20) + `"}`,
	}
	statuses := map[int]int{}
	for _, route := range routes {
		method, path, _ := strings.Cut(route, " ")
		for _, body := range bodies {
			r := in.do(method, path, auth, body)
			statuses[r.status]++
			if r.status >= 500 {
				shown := body
				if len(shown) > 80 {
					shown = shown[:80] + "…"
				}
				t.Errorf("%s %q: %d %s", route, shown, r.status, r.body)
			}
		}
	}
	t.Logf("answers by status: %v", statuses)
	if strings.Contains(in.log.String(), "panic in handler") {
		t.Error("a handler panicked")
	}
}
